"""One replica against three behind nginx, on one Milvus server, and the fleet under faults (issue 28).

    .venv/bin/python -m bench.fleet [--rounds 2] [--duration 15] [--callers 8] [--no-faults]

Each round starts a fleet of 1, then of 3 replicas (``writing.devtools.fleet.Fleet``: a Milvus standalone
started here, nginx, no Prometheus; the test model; a fake LLM sleeping ``--llm-delay`` s; the sample
corpus), and drives it through nginx with ``--callers`` plain callers (``bench.fleet_load``, closed loop):
``hits`` (sample passages) and ``mixed`` (a hit, then a miss that calls the LLM and stores nothing), each
``--duration`` s after a warm-up. Throughput and p50/p99 per workload and fleet size, medians over rounds.
Then, unless ``--no-faults``, on a 3-replica fleet: ``kill -9`` of one replica under load and its restart,
and a rolling restart of all three (``bench.fleet_load.faults_under_load``): requests, failures, retries.
On a 2-core machine three replicas share the same two cores: no gain is expected; the point is what the
proxy and the fleet cost, and that nothing fails. Markdown on stdout, JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.fairness import cpu_flags
from bench.fleet_load import FleetLoad, faults_under_load
from bench.harness import load_jsonl, machine_info, model_path, pct, save_result, versions, wait_for_idle

CALLER, ADMIN = "bench-fleet-caller", "bench-fleet-admin"
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample_corpus.jsonl"


def fleet_env(llm_url: str) -> dict[str, str]:
    return {
        "EMBEDDING_MODEL": model_path(),
        "MILVUS_COLLECTION": "bench_fleet",
        "LLM_BASE_URL": llm_url,
        "LOG_LEVEL": "WARNING",
        "API_KEYS": f"{CALLER}:bench",
        "ADMIN_API_KEYS": ADMIN,
        "FEEDBACK_SECRET": secrets.token_urlsafe(32),
    }


def ingest(milvus_uri: str) -> None:
    from writing.adapters.embedding.encoder import Embedder
    from writing.cli.ingest import ingest as run_ingest
    from writing.core.corpus import CorpusWriter
    from writing.settings import load_settings
    from writing.wiring import build_store

    settings = load_settings(embedding_model=model_path(), milvus_uri=milvus_uri, milvus_collection="bench_fleet")
    store = build_store(settings)
    embedder = Embedder(model_path())
    store.open(embedder.dim)
    try:
        run_ingest(SAMPLE, CorpusWriter(embedder, store), progress=False)
    finally:
        store.close()


def measure(url: str, hits: list[str], *, misses: bool, callers: int, duration: float, warm: float) -> dict:
    with FleetLoad(url, CALLER, hits, sdk=0, plain=callers, stream=0, misses=misses) as load:
        time.sleep(warm)
        t0 = time.monotonic()
        time.sleep(duration)
        t1 = time.monotonic()
        done = [o for o in load.since(t0) if o.started + o.seconds <= t1]
    ok = [o.seconds for o in done if o.ok]
    return {
        "requests": len(done),
        "failed": sum(1 for o in done if not o.ok),
        "per_s": round(len(ok) / duration, 1),
        "p50_ms": round(pct(ok, 50) * 1000, 2) if ok else None,
        "p99_ms": round(pct(ok, 99) * 1000, 2) if ok else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per workload")
    parser.add_argument("--warm", type=float, default=3.0)
    parser.add_argument("--callers", type=int, default=8, help="concurrent plain callers")
    parser.add_argument("--llm-delay", type=float, default=0.05, help="seconds the fake LLM sleeps per answer")
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--wait-idle", type=float, default=60)
    parser.add_argument("--no-json", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[fleet {time.perf_counter() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    from writing.devtools.fake_llm import FakeLLM
    from writing.devtools.fleet import Fleet, FleetConfig
    from writing.devtools.processes import MilvusServer

    hits = [p["content"] for p in load_jsonl(SAMPLE)]
    result: dict = {
        "timestamp": dt.datetime.now().strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine_info(),
        "cpu_flags": cpu_flags(), "versions": versions(), "args": vars(args), "rounds": [],
    }  # fmt: skip
    result["foreign_cores_at_start"] = wait_for_idle(args.wait_idle, log)
    with tempfile.TemporaryDirectory(prefix="writing-fleet-") as tmp, FakeLLM() as llm:
        llm.state.delay = args.llm_delay
        milvus = MilvusServer(Path(tmp) / "milvus", Path(tmp) / "milvus.log")
        milvus.start()
        try:
            ingest(milvus.uri)
            for r in range(args.rounds):
                row: dict = {}
                for n in (1, 3) if r % 2 == 0 else (3, 1):
                    config = FleetConfig(
                        base_dir=Path(tmp) / f"fleet-{r}-{n}", env=fleet_env(llm.base_url), scrape_key=ADMIN,
                        replicas=n, milvus_uri=milvus.uri, prometheus=False,
                    )  # fmt: skip
                    with Fleet(config) as fleet:
                        log(f"round {r + 1}: {n} replica(s) up in {fleet.startup_seconds:.1f} s")
                        for workload, misses in (("hits", False), ("mixed", True)):
                            row[f"{n}:{workload}"] = m = measure(
                                fleet.url, hits, misses=misses, callers=args.callers, duration=args.duration,
                                warm=args.warm,
                            )  # fmt: skip
                            log(f"  {workload}: {m}")
                result["rounds"].append(row)
            if not args.no_faults:
                config = FleetConfig(
                    base_dir=Path(tmp) / "fleet-faults", env=fleet_env(llm.base_url), scrape_key=ADMIN,
                    milvus_uri=milvus.uri, prometheus=False,
                )  # fmt: skip
                llm.state.delay = 0.3  # requests stay in flight long enough to be cut by the kill
                with Fleet(config) as fleet:
                    report = faults_under_load(fleet, CALLER, hits, sdk=4, plain=4, stream=2)
                result["faults"] = {
                    "killed": {k: vars(t) | {"latencies": len(t.latencies)} for k, t in report.killed.items()},
                    "rolled": {k: vars(t) | {"latencies": len(t.latencies)} for k, t in report.rolled.items()},
                    "restart_seconds": report.restart_seconds,
                    "proxy_retries": report.proxy_retries,
                }
                result["fault_lines"] = report.lines()
        finally:
            milvus.stop()
    print(markdown(result))
    if not args.no_json:
        log(f"saved {save_result(result, 'fleet-' + result['timestamp'].replace(':', ''))}")
    return 0


def median(rows: list[dict], key: str, field: str):
    values = [row[key][field] for row in rows if row.get(key) and row[key][field] is not None]
    return round(statistics.median(values), 2) if values else None


def markdown(result: dict) -> str:
    m, rows = result["machine"], result["rounds"]
    out = [
        f"- {m['cpu']}, {m['affinity']} cores; flags: {', '.join(result['cpu_flags'])}; {len(rows)} rounds, "
        f"{result['args']['callers']} callers, {result['args']['duration']:.0f} s per workload, fake LLM "
        f"{result['args']['llm_delay']} s",
        "",
        "| workload | replicas | requests/s | p50 ms | p99 ms | failed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for workload in ("hits", "mixed"):
        for n in (1, 3):
            key = f"{n}:{workload}"
            failed = sum(row[key]["failed"] for row in rows)
            out.append(
                f"| {workload} | {n} | {median(rows, key, 'per_s')} | {median(rows, key, 'p50_ms')} | "
                f"{median(rows, key, 'p99_ms')} | {failed} |"
            )
        one, three = median(rows, f"1:{workload}", "per_s"), median(rows, f"3:{workload}", "per_s")
        if one and three:
            out.append(f"| {workload}: 3 / 1 | | {three / one:.2f}x | | | |")
    if "fault_lines" in result:
        out += ["", "Faults (3 replicas, 4 SDK + 4 plain + 2 streaming callers, fake LLM 0.3 s):", ""]
        out += [f"    {line}" for line in result["fault_lines"]]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
