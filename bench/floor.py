"""The floor the service is measured against, and the stores it serves: shared by the bench scripts.

- ``measure_model_floor``: the bare model (``Embedder.embed``) in this process, ms per forward pass;
- ``prepare_store``: the sample corpus in a fresh Milvus Lite file (the code path of ingest.py), with
  bare top-1 searches timed on it;
- ``prepare_hit_store``: the same plus ``SHORT``, short prompts stored as passages so that each hits.

A Milvus Lite file belongs to one process at a time and pymilvus keeps the Lite server running until
the process exits, so both store functions release the server before the service opens the file.
"""

from __future__ import annotations

import statistics
import time

from bench.harness import SAMPLE_CORPUS, passages

BATCH_SIZES = (1, 8, 16, 32)

# short prompts, as real ones are (<= 30 characters); each is stored as a passage so that it hits
SHORT = [
    "写一段描写秋天的文字",
    "介绍一下西湖的美景",
    "写一首关于大海的诗",
    "请写一封感谢老师的信",
    "描写一下春天的早晨",
    "写一段关于友谊的话",
    "介绍一下长城的历史",
    "写一篇关于母爱的短文",
    "描写夏夜的星空",
    "写一段端午节的习俗介绍",
    "请介绍一下熊猫",
    "写一段鼓励学生的话",
    "描写一场冬天的大雪",
    "写一段毕业典礼致辞的开头",
    "介绍一下中秋节的由来",
    "写一段描写故乡的文字",
    "写几句关于读书的感悟",
    "描写雨后的彩虹",
    "介绍一下黄山的景色",
    "写一段新年祝福语",
]


def measure_model_floor(embedder, texts: list[str], runs: int, sizes=BATCH_SIZES, warm: bool = True) -> dict:
    """Median ms per forward pass at each batch size, over rotating slices of the passages."""
    if warm:
        embedder.embed(texts[:32])  # warm-up: lazy init, allocator
    for t in texts[:3]:
        embedder.embed([t])
    out = {}
    for bs in sizes:
        n_runs = max(runs, 2) if bs > 1 else max(runs * 4, 10)
        times = []
        for r in range(n_runs):
            start = (r * bs) % len(texts)
            batch = (texts[start:] + texts[:start])[:bs]
            t0 = time.perf_counter()
            embedder.embed(batch)
            times.append((time.perf_counter() - t0) * 1000)
        med = statistics.median(times)
        out[bs] = {"ms_per_batch": med, "texts_per_s": bs / med * 1000, "runs": n_runs, "min_ms": min(times)}
    return out


def prepare_store(db_path: str, embedder, search_runs: int) -> dict:
    """Ingest the sample corpus into a fresh Milvus Lite file and time bare top-1 searches on it."""
    from milvus_lite.server_manager import server_manager_instance

    from writing.cli.ingest import ingest
    from writing.core.corpus import CorpusWriter
    from writing.settings import load_settings
    from writing.wiring import build_store

    store = build_store(load_settings(embedding_model=embedder.info.model, milvus_lite_path=db_path))
    store.open(embedder.dim)
    try:
        t0 = time.perf_counter()
        summary = ingest(SAMPLE_CORPUS, CorpusWriter(embedder, store), progress=False)
        ingest_s = time.perf_counter() - t0
        count = store.count()
        vectors = embedder.embed_queries(passages())
        for v in vectors[:5]:  # warm-up (the first search loads segments)
            store.search(v, 1)
        times, exact = [], 0
        for i in range(search_runs):
            v = vectors[i % len(vectors)]
            t0 = time.perf_counter()
            matches = store.search(v, 1)
            times.append((time.perf_counter() - t0) * 1000)
            exact += bool(matches and matches[0].similarity >= 0.99)
    finally:
        store.close()
        server_manager_instance.release_server(db_path)  # unlocks the file for the service
    return {
        "inserted": summary.inserted,
        "count": count,
        "ingest_s": ingest_s,
        "search_ms_median": statistics.median(times),
        "search_ms_min": min(times),
        "search_runs": search_runs,
        "search_top1_exact": exact,
        "dim": embedder.dim,
    }


def prepare_hit_store(db_path: str, model: str, embedder, texts: list[str]) -> float:
    """The corpus (sample passages + the short prompts) in a Lite file, as ingest.py would store it with
    the service's settings; returns the median ms of a bare top-1 search."""
    from milvus_lite.server_manager import server_manager_instance

    from writing.cli.ingest import ingest
    from writing.core.corpus import CorpusWriter
    from writing.core.models import Passage
    from writing.settings import load_settings
    from writing.wiring import build_store

    store = build_store(load_settings(embedding_model=model, milvus_lite_path=db_path))
    store.open(embedder.dim)
    try:
        writer = CorpusWriter(embedder, store)
        ingest(SAMPLE_CORPUS, writer, progress=False)
        writer.add([Passage(t, f"short-{i}") for i, t in enumerate(SHORT)])
        vectors = embedder.embed_queries(texts)
        for v in vectors[:5]:
            store.search(v, 3)
        times = []
        for i in range(60):
            t0 = time.perf_counter()
            store.search(vectors[i % len(vectors)], 3)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        store.close()
        server_manager_instance.release_server(db_path)
    return statistics.median(times)
