"""Throughput and latency of the service, measured against the floor on the same machine.

    .venv/bin/python -m bench.bench [--requests N] [--llm-latency 1.0] [--quick]
    .venv/bin/python -m bench.bench --hit-path -- [bench.hit_path options]

What it does, all on 127.0.0.1:

1. builds a temporary Milvus Lite file holding data/sample_corpus.jsonl (same code path as ingest.py)
   and measures a bare top-1 search on it (``MilvusStore.search``), then releases the file (a Milvus
   Lite file can only be opened by one process at a time);
2. measures the bare model in this process while nothing else runs: ``Embedder.embed`` of the same
   passages at batch sizes 1, 8, 16, 32 (median of several passes; 1 and 16 only with --quick);
3. starts a fake OpenAI-compatible LLM (writing/devtools/fake_llm.py) that answers after ``--llm-latency`` s;
4. starts the service (``uvicorn app:app``) as a subprocess with EMBEDDING_CACHE_SIZE=0, so every
   request runs the model, and drives it with httpx from here:
   - paired rounds for targets (a) and (b): the bare model at batch 1 (the service idle), hits at
     concurrency 1, the bare model at batch 16, hits at concurrency 16; one ratio per round against
     the floor timed seconds before, the median is reported (this machine's speed drifts by 10-30%
     from minute to minute, which a single floor measurement would turn into a wrong ratio);
   - a sweep: hits (prompts = stored passages) and misses (unrelated prompts with a unique suffix)
     at concurrency 1, 8, 16, 32; then one wave of 16 concurrent misses (target (c));
5. restarts it with the LRU on (the default EMBEDDING_CACHE_SIZE) and repeats one prompt: the
   repeat fast path;
6. prints Markdown tables and the service/floor ratios, and writes JSON to bench/results/.

Targets: (a) hits @16 req/s >= 0.8 x bare texts/s at batch 16; (b) hits @1 p50 <= 1.3 x (bare forward
pass at batch 1 + bare search); (c) 16 concurrent misses against a 1 s LLM finish in < 1.5 s;
(d) no failures. Before starting, the script waits (``--wait-idle``) until other processes leave the
machine alone, and it reports for every run how many cores other processes used meanwhile.

CPU seconds per request are read from /proc for the service's process group (the uvicorn process
and the Milvus Lite server it spawns) and from getrusage for this process (the load generator and
the fake LLM), which tells where the cycles go: the machine has few cores and everything shares them.

The machinery (service, load, CPU accounting, the floor) is shared with the other scripts: bench/harness.py
and bench/floor.py; this script holds the runs, the targets and the report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from bench.floor import BATCH_SIZES, measure_model_floor, prepare_store
from bench.harness import (
    RESULTS,
    MissPrompts,
    Run,
    Service,
    cycle,
    drive,
    machine_info,
    model_path,
    passages,
    save_result,
    service_env,
    versions,
    wait_for_idle,
)

CONCURRENCY = (1, 8, 16, 32)


# -- the load runs ------------------------------------------------------------------------------------
async def run_paired(client, service: Service, embedder, args, texts: list[str], log) -> list[dict]:
    """Targets (a) and (b), robust to a machine whose speed drifts: rounds of [bare model at batch 1
    (service idle), hits at concurrency 1, bare model at batch 16, hits at concurrency 16], a ratio
    per round against the floor measured seconds before it."""
    rounds = []
    for i in range(args.rounds):
        f1 = measure_model_floor(embedder, texts, args.floor_runs, sizes=(1,), warm=False)[1]
        r1 = await drive(client, service, f"paired-{i}", cycle(texts, args.paired_requests, offset=7 * i), 1, "milvus")
        f16 = measure_model_floor(embedder, texts, args.floor_runs, sizes=(16,), warm=False)[16]
        r16 = await drive(
            client, service, f"paired-{i}", cycle(texts, args.paired_requests * 3, offset=11 * i), 16, "milvus"
        )
        rounds.append({"floor_b1": f1, "hit_c1": asdict(r1), "floor_b16": f16, "hit_c16": asdict(r16)})
        log(
            f"round {i}: c=1 p50 {fmt(r1.p50_ms)} ms vs bare b1 {f1['ms_per_batch']:.1f} ms; "
            f"c=16 {r16.rps:.1f} req/s vs bare b16 {f16['texts_per_s']:.1f} texts/s; "
            f"other procs {max(r1.foreign_cores, r16.foreign_cores):.2f} cores"
        )
    return rounds


async def run_fresh(service: Service, embedder, args, texts: list[str], misses: MissPrompts, log):
    import httpx

    runs: list[Run] = []
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=1.0)  # < uvicorn's 5 s
    async with httpx.AsyncClient(base_url=service.url, timeout=120, limits=limits) as client:
        # warm-up: first forward passes, first searches, connection pool, first LLM call
        await drive(client, service, "warm-up", cycle(texts, 16), 8, "milvus")
        await drive(client, service, "warm-up", misses.take(2), 2, "llm")
        paired = await run_paired(client, service, embedder, args, texts, log)
        for c in args.hit_levels:
            run = await drive(client, service, "hit", cycle(texts, args.requests, offset=c), c, "milvus")
            log(run)
            runs.append(run)
        for c in args.miss_levels:
            run = await drive(client, service, "miss", misses.take(c * args.miss_rounds), c, "llm")
            log(run)
            runs.append(run)
        # target (c): one wave of 16 concurrent misses against the slow LLM
        await asyncio.sleep(0.5)
        wave = await drive(client, service, "miss-wave", misses.take(16), 16, "llm")
        log(wave)
        runs.append(wave)
    miss_wave = {
        "wall_s": wave.wall_s, "failures": wave.failures, "llm_latency_s": args.llm_latency,
        "foreign_cores": wave.foreign_cores,
    }  # fmt: skip
    return runs, miss_wave, paired


async def run_repeat(service: Service, args, texts: list[str], log) -> list[Run]:
    import httpx

    runs = []
    async with httpx.AsyncClient(base_url=service.url, timeout=120) as client:
        prompt = texts[5]
        await drive(client, service, "warm-up", [prompt] * 10, 1, "milvus")
        for c in (1, 16):
            run = await drive(client, service, "repeat (LRU on)", [prompt] * args.requests, c, "milvus")
            log(run)
            runs.append(run)
    return runs


# -- report -------------------------------------------------------------------------------------------
def fmt(v, nd: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def markdown(result: dict) -> str:
    m, floor, store = result["machine"], result["floor"], result["store"]
    lines = [
        f"## Benchmark {result['timestamp']}",
        "",
        f"- machine: {m['nproc']} CPUs ({m['affinity']} usable), {m['cpu']}, {m['mem_gib']} GiB; "
        f"load average at start {', '.join(f'{x:.2f}' for x in m['loadavg_at_start'])}; "
        f"Python {m['python']}, torch {m['torch']} ({m['torch_threads']} threads)",
        f"- model: {result['model']} (dim {store['dim']}, device cpu, fp32)",
        f"- store: Milvus Lite (milvus-lite {result['versions'].get('milvus-lite')}, pymilvus "
        f"{result['versions'].get('pymilvus')}), {store['count']} passages, COSINE AUTOINDEX, Bounded",
        f"- extra service environment: {result['service_env_extra']}" if result["service_env_extra"] else None,
        f"- LLM: fake OpenAI server answering after {result['args']['llm_latency']} s; "
        f"{result['args']['requests']} requests per hit run; service up in "
        f"{fmt(result['service_ready_s'].get('fresh'))} s",
        f"- other processes on the machine: {result['foreign_cores_at_start']:.2f} cores busy at start; "
        f"up to {max((r['foreign_cores'] for r in result['runs']), default=0):.2f} during a run "
        "(column 'other procs'; anything above ~0.1 disturbs the numbers)",
        "",
        "### Floor (bare, same process, service not running)",
        "",
        "| batch | ms / forward pass (median) | texts/s |",
        "|---:|---:|---:|",
    ]
    lines = [line for line in lines if line is not None]
    for bs, row in floor["model"].items():
        lines.append(f"| {bs} | {fmt(row['ms_per_batch'])} | {fmt(row['texts_per_s'])} |")
    lines += [
        "",
        f"Bare Milvus Lite top-1 search: median {fmt(store['search_ms_median'], 2)} ms "
        f"(min {fmt(store['search_ms_min'], 2)}, {store['search_runs']} searches).",
    ]
    if floor.get("model_after"):
        after = floor["model_after"]
        lines.append(
            "Model floor re-measured after the load runs: "
            + ", ".join(f"batch {bs}: {fmt(r['ms_per_batch'])} ms" for bs, r in after.items())
            + "."
        )
    lines += [
        "",
        "### Service (fresh prompts: EMBEDDING_CACHE_SIZE=0; repeat: LRU on)",
        "",
        "| workload | conc. | requests | failures | wrong source | req/s | p50 ms | p99 ms "
        "| embed p50 | search p50 | llm p50 | other p50 | CPU ms/req: service / milvus / bench | other procs (cores) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in result["runs"]:
        cpu = r["cpu_ms_per_req"]
        srv = sum(v for k, v in cpu.items() if k.startswith("service:") and "milvus" not in k)
        mil = sum(v for k, v in cpu.items() if k.startswith("service:") and "milvus" in k)
        st = r["stage_p50_ms"]
        lines.append(
            f"| {r['workload']} | {r['concurrency']} | {r['requests']} | {r['failures']} | {r['wrong_source']} "
            f"| {fmt(r['rps'])} | {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | {fmt(st.get('embed'))} "
            f"| {fmt(st.get('search'))} | {fmt(st.get('llm'))} | {fmt(r['other_p50_ms'])} "
            f"| {fmt(srv)} / {fmt(mil)} / {fmt(cpu.get('bench+fake-llm'))} | {fmt(r['foreign_cores'], 2)} |"
        )
    paired = result.get("paired") or []
    if paired:
        search = store["search_ms_median"]
        lines += [
            "",
            "### Paired rounds for targets (a) and (b): the bare model timed seconds before each load run",
            "",
            "| round | bare b1 ms | hits @1 p50 ms | (b) ratio | bare b16 texts/s | hits @16 req/s | (a) ratio "
            "| hits @16 p50 ms | other procs (cores) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for i, p in enumerate(paired):
            h1, h16 = p["hit_c1"], p["hit_c16"]
            lines.append(
                f"| {i} | {fmt(p['floor_b1']['ms_per_batch'])} | {fmt(h1['p50_ms'])} "
                f"| {h1['p50_ms'] / (p['floor_b1']['ms_per_batch'] + search):.2f} "
                f"| {fmt(p['floor_b16']['texts_per_s'])} | {fmt(h16['rps'])} "
                f"| {h16['rps'] / p['floor_b16']['texts_per_s']:.2f} | {fmt(h16['p50_ms'])} "
                f"| {max(h1['foreign_cores'], h16['foreign_cores']):.2f} |"
            )
    errors = [(name, e) for name, errs in (result.get("service_errors") or {}).items() for e in errs]
    if errors:
        lines += ["", "### Errors in the service log (first of each)", ""]
        lines += [f"- {name}: `{e[:300]}`" for name, e in errors[:8]]
    lines += [
        "",
        "### Targets",
        "",
        "| target | measured | goal | met | other procs meanwhile (cores) |",
        "|---|---:|---:|:---:|---:|",
    ]
    for t in result["targets"]:
        noise = t.get("other_procs")
        flag = " (disturbed)" if noise is not None and noise > 0.1 else ""
        lines.append(
            f"| {t['name']} | {t['measured']} | {t['goal']} | {'yes' if t['met'] else '**no**'}{flag} "
            f"| {fmt(noise, 2)} |"
        )
    return "\n".join(lines)


def compute_targets(result: dict) -> list[dict]:
    runs = result["runs"]
    search = result["store"]["search_ms_median"]

    def find(workload: str, c: int) -> dict | None:
        return next((r for r in runs if r["workload"] == workload and r["concurrency"] == c), None)

    targets = []
    paired = result.get("paired") or []
    if paired:
        ra = [p["hit_c16"]["rps"] / p["floor_b16"]["texts_per_s"] for p in paired]
        rb = [p["hit_c1"]["p50_ms"] / (p["floor_b1"]["ms_per_batch"] + search) for p in paired]
        a, b = statistics.median(ra), statistics.median(rb)
        noise_a = max(p["hit_c16"]["foreign_cores"] for p in paired)
        noise_b = max(p["hit_c1"]["foreign_cores"] for p in paired)
        targets.append({
            "name": "(a) hits @16: service req/s / bare model texts/s @ batch 16 (median of paired rounds)",
            "measured": f"{a:.2f} (rounds: {', '.join(f'{x:.2f}' for x in ra)})",
            "value": a, "goal": ">= 0.8", "met": a >= 0.8, "other_procs": noise_a,
        })  # fmt: skip
        targets.append({
            "name": "(b) hits @1: p50 / (bare forward pass @ batch 1 + bare search) (median of paired rounds)",
            "measured": f"{b:.2f} (rounds: {', '.join(f'{x:.2f}' for x in rb)})",
            "value": b, "goal": "<= 1.3", "met": b <= 1.3, "other_procs": noise_b,
        })  # fmt: skip
    wave = result["miss_wave"]
    goal = 1.5 * wave["llm_latency_s"]
    targets.append({
        "name": f"(c) 16 concurrent misses, LLM latency {wave['llm_latency_s']} s: wall time",
        "measured": f"{wave['wall_s']:.2f} s", "value": wave["wall_s"],
        "goal": f"< {goal:.2f} s", "met": wave["wall_s"] < goal and wave["failures"] == 0,
        "other_procs": wave.get("foreign_cores"),
    })  # fmt: skip
    failures = sum(r["failures"] for r in runs) + sum(p[k]["failures"] for p in paired for k in ("hit_c1", "hit_c16"))
    targets.append({
        "name": "(d) failures, all runs", "measured": str(failures), "value": failures, "goal": "0", "met": failures == 0,
    })  # fmt: skip
    rep = find("repeat (LRU on)", 1)
    if rep and rep["p50_ms"] is not None:
        targets.append({
            "name": "repeat fast path @1: p50 (info; floor = bare search)",
            "measured": f"{rep['p50_ms']:.1f} ms (search floor {search:.1f} ms)", "value": rep["p50_ms"],
            "goal": "-", "met": True,
        })  # fmt: skip
    return targets


# -- main -----------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=None, help="requests per hit run (default 300; quick 24)")
    parser.add_argument("--llm-latency", type=float, default=1.0, help="seconds the fake LLM takes (default 1.0)")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--no-json", action="store_true", help="do not write bench/results/<timestamp>.json")
    parser.add_argument(
        "--rounds", type=int, default=None, help="paired rounds for targets (a), (b) (default 3; quick 1)"
    )
    parser.add_argument(
        "--wait-idle", type=float, default=120, help="seconds to wait for an idle machine (default 120)"
    )
    parser.add_argument(
        "--hit-path", action="store_true",
        help="only the hit path against the bare model (python -m bench.hit_path; pass its options after --)",
    )  # fmt: skip
    parser.add_argument(
        "--service-env", action="append", default=[], metavar="KEY=VALUE",
        help="extra environment for the service (repeatable), e.g. EMBEDDING_THREADS=1",
    )  # fmt: skip
    args, rest = parser.parse_known_args(argv)
    if args.hit_path:
        from bench import hit_path  # imported here: hit_path does not import this module

        return hit_path.main([a for a in rest if a != "--"])
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")

    started = time.perf_counter()
    args.requests = args.requests or (24 if args.quick else 300)
    args.hit_levels = (1, 16) if args.quick else CONCURRENCY
    args.miss_levels = (1, 16) if args.quick else CONCURRENCY
    args.miss_rounds = 1 if args.quick else 2
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.paired_requests = 16 if args.quick else 60
    floor_runs = args.floor_runs = 2 if args.quick else 7
    search_runs = 20 if args.quick else 100

    def log(msg) -> None:
        if isinstance(msg, Run):
            msg = (
                f"{msg.workload:>16} c={msg.concurrency:<3} n={msg.requests:<4} {msg.rps:7.1f} req/s "
                f"p50={fmt(msg.p50_ms)} p99={fmt(msg.p99_ms)} ms failures={msg.failures} "
                f"stages={ {k: round(v, 1) for k, v in msg.stage_p50_ms.items()} }"
            )
        print(f"[bench {time.perf_counter() - started:5.1f}s] {msg}", file=sys.stderr, flush=True)

    from writing.adapters.embedding.encoder import Embedder
    from writing.devtools.fake_llm import FakeLLM

    mp = model_path()
    result: dict = {
        "timestamp": dt.datetime.now().strftime("%Y-%m-%dT%H:%M:%S"),
        "args": {"requests": args.requests, "llm_latency": args.llm_latency, "quick": args.quick},
        "machine": machine_info(),
        "model": mp,
        "versions": versions(),
        "service_ready_s": {},
    }
    result["service_env_extra"] = dict(kv.split("=", 1) for kv in args.service_env)
    result["foreign_cores_at_start"] = wait_for_idle(args.wait_idle, log)
    texts = passages()
    misses = MissPrompts()
    result["service_errors"] = {}
    stamp = result["timestamp"].replace(":", "") + ("-quick" if args.quick else "")

    def keep_log(service: Service, name: str) -> None:
        result["service_errors"][name] = service.errors()
        if not args.no_json:
            RESULTS.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                shutil.copyfile(service.log_path, RESULTS / f"{stamp}-service-{name}.log")

    with tempfile.TemporaryDirectory(prefix="writing-bench-") as tmp:
        db_path = str(Path(tmp) / "bench.db")
        embedder = Embedder(mp)
        log("ingesting the sample corpus and timing bare searches")
        result["store"] = prepare_store(db_path, embedder, search_runs)
        log(f"store: {result['store']}")

        log("timing the bare model")
        # torch + transformers leave ~500k GC-tracked objects: a full collection takes ~300 ms and, in
        # the middle of a run, would show up as load-generator latency. Freeze them out of the GC.
        gc.collect()
        gc.freeze()
        sizes = (1, 16) if args.quick else BATCH_SIZES
        result["floor"] = {"model": measure_model_floor(embedder, texts, floor_runs, sizes=sizes)}
        for bs, row in result["floor"]["model"].items():
            log(f"floor batch {bs}: {row['ms_per_batch']:.1f} ms, {row['texts_per_s']:.1f} texts/s")

        with FakeLLM() as fake:
            fake.state.delay = args.llm_latency
            service = Service(
                service_env(mp, db_path, fake.base_url, cache=False, extra=result["service_env_extra"]),
                Path(tmp) / "service-fresh.log",
            )
            try:
                log("starting the service (EMBEDDING_CACHE_SIZE=0)")
                service.start()
                result["service_ready_s"]["fresh"] = service.ready_s
                runs, result["miss_wave"], result["paired"] = asyncio.run(
                    run_fresh(service, embedder, args, texts, misses, log)
                )
            finally:
                service.stop()
                keep_log(service, "fresh")
            service = Service(
                service_env(mp, db_path, fake.base_url, cache=True, extra=result["service_env_extra"]),
                Path(tmp) / "service-lru.log",
            )
            try:
                log("starting the service (LRU on)")
                service.start()
                result["service_ready_s"]["lru"] = service.ready_s
                runs += asyncio.run(run_repeat(service, args, texts, log))
            finally:
                service.stop()
                keep_log(service, "lru")
            result["llm_calls"] = fake.state.calls

        if not args.quick:
            log("re-timing the bare model (drift check)")
            after = measure_model_floor(embedder, texts, max(floor_runs // 2, 3), sizes=(1, 16))
            result["floor"]["model_after"] = after

    result["runs"] = [asdict(r) for r in runs]
    result["targets"] = compute_targets(result)
    text = markdown(result)
    print(text)
    if not args.no_json:
        print(f"\nJSON: {save_result(result, stamp)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
