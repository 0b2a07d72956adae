"""Does verification add latency to the caller? Two services side by side, VERIFY on against off (issue 27).

    .venv/bin/python -m bench.verify_latency [--rounds 6] [--requests 300] [--concurrency 1,8]

Both serve the sample corpus with the test model (MiniLM) in Milvus Lite; the fault LLM answers the
judge after ``--judge-delay`` seconds. The "on" side verifies every hit it can (``VERIFY_MAX_PER_MINUTE``
high, so the judge calls run beside the hits: the worst case), the "off" side none. Each round sends the
same hits to both, in alternating order: exact hits (a passage's own text) and semantic ones (a passage
with a few words added). Read-outs per side, the median over rounds: client-side p50 and p99 and the
Server-Timing ``total`` p50, and the judge calls the "on" side made.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.harness import Service, drive, machine_info, model_path, passages, save_result, service_env
from writing.devtools.fake_llm import FakeLLM


def workloads(corpus: list[str]) -> dict[str, list[str]]:
    return {"exact": corpus, "semantic": [f"{p}请照这个意思写一段" for p in corpus]}


async def one_round(services: dict[str, Service], prompts: list[str], concurrency: int, order: tuple[str, str]):
    out = {}
    for side in order:
        async with httpx.AsyncClient(base_url=services[side].url, timeout=60) as client:
            run = await drive(client, services[side], "hits", prompts, concurrency, expect="milvus")
        out[side] = {
            "p50_ms": run.p50_ms,
            "p99_ms": run.p99_ms,
            "total_p50_ms": run.stage_p50_ms.get("total"),
            "failures": run.failures,
            "wrong_source": run.wrong_source,
        }
    return out


async def main_async(args) -> dict:
    corpus = passages()
    mp = model_path()
    results: dict = {"machine": machine_info(), "args": vars(args), "rows": []}
    with FakeLLM() as llm, tempfile.TemporaryDirectory() as tmp:
        llm.state.judge_delay = args.judge_delay
        services = {}
        for side in ("on", "off"):
            extra = {"VERIFY": "true" if side == "on" else "false", "VERIFY_MAX_PER_MINUTE": "100000"}
            env = service_env(mp, str(Path(tmp) / f"{side}.db"), llm.base_url, cache=True, extra=extra)
            services[side] = Service(env, Path(tmp) / f"{side}.log")
            services[side].start()
            async with httpx.AsyncClient(base_url=services[side].url, timeout=120) as client:
                r = await client.post("/v1/corpus", json={"passages": [{"content": p, "biz_id": "b"} for p in corpus]})
                r.raise_for_status()
        try:
            for name, texts in workloads(corpus).items():
                for c in args.concurrency:
                    prompts = (texts * (args.requests // len(texts) + 1))[: args.requests]
                    rounds = []
                    for i in range(args.rounds):
                        order = ("on", "off") if i % 2 == 0 else ("off", "on")
                        calls0 = llm.state.judge_calls
                        row = await one_round(services, prompts, c, order)
                        row["judge_calls"] = llm.state.judge_calls - calls0
                        rounds.append(row)
                        print(f"{name} c={c} round {i}: {json.dumps(row)}", flush=True)
                    med = {
                        side: {k: statistics.median(r[side][k] for r in rounds if r[side][k] is not None)
                               for k in ("p50_ms", "p99_ms", "total_p50_ms")}
                        for side in ("on", "off")
                    }  # fmt: skip
                    med["judge_calls"] = sum(r["judge_calls"] for r in rounds)
                    med["failures"] = sum(
                        r[s]["failures"] + r[s]["wrong_source"] for r in rounds for s in ("on", "off")
                    )
                    results["rows"].append({"workload": name, "concurrency": c, **med})
                    print(f"== {name} c={c}: {json.dumps(med)}", flush=True)
        finally:
            for service in services.values():
                service.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8])
    parser.add_argument("--judge-delay", type=float, default=0.05)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    results = asyncio.run(main_async(args))
    results["wall_s"] = time.perf_counter() - t0
    print(f"saved {save_result(results, 'verify_latency')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
