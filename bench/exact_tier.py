"""The exact tier on against off, side by side in one run, and what its index costs.

    .venv/bin/python -m bench.exact_tier [--requests 600] [--concurrency 8] [--rounds 3] [--entries 100000]

- **Traffic**: two services (ANSWER_CACHE=true, the defaults otherwise, the embedding LRU included),
  EXACT_TIER=true and false, each over its own Lite file with the sample corpus, one fake LLM answering
  at once. The same mix for both: ``--repeat-share`` of the requests repeat a prompt word for word (a
  passage's text, or a prompt whose answer was stored while warming up), the rest are fresh (a miss and
  a write-back). Per service: hits/s (over the run's wall time), requests/s, hit and miss p50 (client),
  a hit's Server-Timing ``total`` p50. Rounds alternate the services; medians are reported.
- **Memory**: an ``ExactIndex`` filled with ``--entries`` answers, passages and retrieval keys (each kind
  apart), with tracemalloc; the texts are reported apart (``sys.getsizeof``).
- **Reloads**: on a Lite answer store of ``--reload-rows`` answers, the first fill's read and a periodic
  reload's id scan, timed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench.harness import (
    SAMPLE_CORPUS,
    MissPrompts,
    Service,
    load_jsonl,
    machine_info,
    model_path,
    parse_server_timing,
    passages,
    pct,
    save_result,
    service_env,
    unrelated_prompts,
    versions,
    wait_for_idle,
)
from bench.loadgen import LeanClient
from writing.devtools.fake_llm import FakeLLM


# -- traffic ---------------------------------------------------------------------------------------------
async def warm(service: Service, client, stored: list[str]) -> None:
    import httpx

    records = [{"content": r["content"], "biz_id": r["biz_id"]} for r in load_jsonl(SAMPLE_CORPUS)]
    httpx.post(f"{service.url}/v1/corpus", json={"passages": records}, timeout=300).raise_for_status()
    for text in passages():
        await client.get("/generate", params={"prompt": text})  # warms the service
    for prompt in stored:  # each answered once by the LLM and stored: later a repeat
        await client.get("/generate", params={"prompt": prompt})
    await asyncio.sleep(0.5)


async def run_mix(client, prompts: list[str], concurrency: int) -> dict:
    samples: list[tuple[float, str, dict]] = []
    pending = iter(prompts)

    async def worker() -> None:
        for prompt in pending:
            t0 = time.perf_counter()
            r = await client.get("/generate", params={"prompt": prompt})
            ms = (time.perf_counter() - t0) * 1000
            assert r.status_code == 200, r.status_code
            samples.append((ms, r.headers.get("x-cache", ""), parse_server_timing(r.headers.get("server-timing"))))

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    hits = [s for s in samples if s[1] == "HIT"]
    misses = [s for s in samples if s[1] != "HIT"]
    return {
        "requests": len(samples),
        "hits": len(hits),
        "wall_s": wall,
        "hits_per_s": len(hits) / wall,
        "requests_per_s": len(samples) / wall,
        "hit_p50_ms": pct([s[0] for s in hits], 50),
        "hit_total_p50_ms": pct([s[2].get("total", 0.0) for s in hits], 50),
        "miss_p50_ms": pct([s[0] for s in misses], 50),
        "all_p50_ms": pct([s[0] for s in samples], 50),
    }


def mix(repeats: list[str], fresh: MissPrompts, n: int, share: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = [rng.choice(repeats) if rng.random() < share else "" for _ in range(n)]
    new = iter(fresh.take(sum(1 for p in out if not p)))
    return [p or next(new) for p in out]


async def traffic(args, log, tmp: Path) -> dict:
    model = model_path()
    corpus = passages()
    stored = [f"{p}（存）" for p in unrelated_prompts()[:36]]
    repeats = corpus[:36] + stored
    rounds: dict[str, list[dict]] = {"on": [], "off": []}
    with FakeLLM() as llm:
        services = {}
        for side in ("on", "off"):
            env = service_env(model, str(tmp / f"{side}.db"), llm.base_url, cache=True, extra={})
            env.update(ANSWER_CACHE="true", EXACT_TIER="true" if side == "on" else "false")
            services[side] = Service(env, tmp / f"{side}.log")
            services[side].start()
            log(f"service exact={side} ready in {services[side].ready_s:.1f}s")
        try:
            for service in services.values():
                async with LeanClient(service.url) as client:
                    await warm(service, client, stored)
            fresh = MissPrompts()
            for i in range(args.rounds):
                for side in ("on", "off") if i % 2 == 0 else ("off", "on"):
                    prompts = mix(repeats, fresh, args.requests, args.repeat_share, seed=i)
                    async with LeanClient(services[side].url) as client:
                        row = await run_mix(client, prompts, args.concurrency)
                    rounds[side].append(row)
                    log(f"round {i} exact={side}: {summary(row)}")
        finally:
            for service in services.values():
                service.stop()
    keys = rounds["on"][0].keys()
    med = lambda rows, k: statistics.median(v) if (v := [r[k] for r in rows if r[k] is not None]) else None  # noqa: E731
    return {side: {k: med(rows, k) for k in keys} for side, rows in rounds.items()} | {"rounds": rounds}


def summary(row: dict) -> str:
    n = {k: "-" if v is None else f"{v:.2f}" for k, v in row.items()}
    return (
        f"{n['hits_per_s']} hits/s, {n['requests_per_s']} req/s, hit p50 {n['hit_p50_ms']} ms "
        f"(Server-Timing total {n['hit_total_p50_ms']}), miss p50 {n['miss_p50_ms']} ms"
    )


# -- memory ----------------------------------------------------------------------------------------------
def index_memory(entries: int, answer_chars: int) -> dict:
    """Bytes per 100,000 entries of each kind, the texts apart (they are the index's largest part)."""
    from writing.core.exact import ExactAnswer, ExactIndex, ExactRow
    from writing.text import content_hash

    texts_of = passages()
    corpus = "".join(texts_of)
    out: dict = {"entries": entries, "answer_chars": answer_chars}
    for kind in ("answers", "passages", "retrieval_keys"):
        gc.collect()
        tracemalloc.start()
        index = ExactIndex()
        texts = 0
        for start in range(0, entries, 5000):
            rows: list = []
            for i in range(start, min(entries, start + 5000)):
                h = content_hash(f"prompt {i}")
                if kind == "answers":
                    off = (i * 7) % (len(corpus) - answer_chars)
                    text = corpus[off : off + answer_chars] + str(i)
                    texts += sys.getsizeof(text)
                    rows.append(ExactAnswer(i, h, "tenant-" + "a", "model-" + "x", "c" * 63 + "1", (), 120, 0, text))
                elif kind == "passages":
                    text = texts_of[i % len(texts_of)] + str(i)
                    texts += sys.getsizeof(text)
                    rows.append(ExactRow(i, h[:40], i, f"biz-{i}", text))
                else:
                    rows.append(ExactRow(i, h[:40], i % 1000))
            index.entries("answers" if kind == "answers" else "corpus").add(rows)
        gc.collect()
        used, per = tracemalloc.get_traced_memory()[0], 100_000 / entries / 2**20
        tracemalloc.stop()
        out[kind] = {"mib_per_100k": used * per, "texts_mib_per_100k": texts * per}
        out[kind]["index_mib_per_100k"] = (used - texts) * per
    return out


# -- reloads ---------------------------------------------------------------------------------------------
def reload_cost(rows: int, tmp: Path) -> dict:
    import numpy as np
    from milvus_lite.server_manager import server_manager_instance

    from writing.adapters.milvus.answers import MilvusAnswerStore
    from writing.adapters.milvus.connection import MilvusConnection
    from writing.core.models import AnswerKey

    path = str(tmp / "reload.db")
    conn = MilvusConnection(uri="", lite_path=path, token="", db_name="", timeout=60)
    store = MilvusAnswerStore(conn, "bench_answers_v3", threshold=0.9, ttl_seconds=0)
    store.open(384)
    rng, key = np.random.default_rng(0), AnswerKey("default", "fake-llm", "c" * 64, 512)
    try:
        for start in range(0, rows, 1000):
            texts = [(f"提示词{i}", "一段回答" * 60) for i in range(start, min(rows, start + 1000))]
            vectors = rng.normal(size=(len(texts), 384)).astype(np.float32)
            store.put_many(vectors, texts, key=key, stops=(), completion_tokens=100)
        t0 = time.perf_counter()
        filled = sum(len(b) for b in store.exact_rows())
        t1 = time.perf_counter()
        ids = sum(len(b) for b in store.exact_ids())
        t2 = time.perf_counter()
    finally:
        conn.close()
        server_manager_instance.release_server(path)
    return {"rows": rows, "fill_read_s": t1 - t0, "filled": filled, "id_scan_s": t2 - t1, "ids": ids}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=600, help="requests per service and round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat-share", type=float, default=0.3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--entries", type=int, default=100_000, help="index entries per kind for the memory")
    parser.add_argument("--answer-chars", type=int, default=300, help="characters of a stored answer")
    parser.add_argument("--reload-rows", type=int, default=20_000)
    parser.add_argument("--wait-idle", type=float, default=60)
    parser.add_argument("--no-json", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    def log(msg) -> None:
        print(f"[exact-tier {time.perf_counter() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    result: dict = {
        "timestamp": dt.datetime.now().strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": machine_info(),
        "versions": versions(),
        "args": vars(args),
    }
    result["memory"] = index_memory(args.entries, args.answer_chars)
    log(f"memory per 100,000: {result['memory']}")
    result["foreign_cores_at_start"] = wait_for_idle(args.wait_idle, log)
    with tempfile.TemporaryDirectory(prefix="writing-exact-") as tmp:
        result["traffic"] = asyncio.run(traffic(args, log, Path(tmp)))
        if args.reload_rows:
            result["reload"] = reload_cost(args.reload_rows, Path(tmp))
            log(f"reload: {result['reload']}")
    log(f"exact on (median): {summary(result['traffic']['on'])}; off: {summary(result['traffic']['off'])}")
    if not args.no_json:
        log(f"saved {save_result(result, 'exact_tier')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
