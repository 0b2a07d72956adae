"""The service's CPU per hit, two trees interleaved: both served at once, measured round by round in turn.

    .venv/bin/python -m bench.cpu_ab TREE_A TREE_B [--semantic] [--rounds 8] [--hits 1536]

``bench.hit_path --tree`` measures one tree per run, minutes apart; on a machine whose speed drifts by a
quarter between minutes, that pairs noise with the change. Here both trees' services run side by side
(``python app.py``, the same corpus copied per service, the fake LLM), and each round drives ``--hits``
hits at concurrency 16 at one, then the other. Exact hits by default (``EXACT_TIER=true``: no model, no
search); ``--semantic`` for semantic hits of the short prompts. Per round: hits/s and CPU µs per hit of
the event loop, of the other threads (the search, gRPC; the model's ``embed-*`` threads are left out),
and the service's own with the store's process; then the medians, and B's over A's.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench.floor import SHORT, prepare_hit_store
from bench.harness import Service, cycle, drive, model_path, passages, service_env
from bench.hit_path import per_hit
from bench.loadgen import LeanClient
from writing.devtools.fake_llm import FakeLLM

CONCURRENCY = 16
WARM_UP = 64  # requests before each round's (not counted)
ROLES = ("loop", "other", "own")


async def one_round(service: Service, start: int, hits: int):
    async with LeanClient(service.url, timeout=120) as client:
        await drive(client, service, "warm-up", cycle(SHORT, WARM_UP), CONCURRENCY, "milvus")
        return await drive(client, service, "hits", cycle(SHORT, hits, start), CONCURRENCY, "milvus")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("trees", nargs=2, type=Path)
    p.add_argument("--semantic", action="store_true")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--hits", type=int, default=1536)
    args = p.parse_args(argv)
    if args.trees[0].resolve() == args.trees[1].resolve():
        p.error("give two different trees (e.g. git worktree add /tmp/before REV)")

    from writing.adapters.embedding.encoder import Embedder

    model = model_path()
    rows: dict[Path, list[dict[str, float]]] = {t: [] for t in args.trees}
    with tempfile.TemporaryDirectory(prefix="cpu-ab-") as tmp:
        db = str(Path(tmp) / "bench.db")
        prepare_hit_store(db, model, Embedder(model, quantize="bf16"), passages()[:40])
        with FakeLLM() as fake:
            services = []
            try:
                for k, tree in enumerate(args.trees):
                    own_db = str(Path(tmp) / f"bench{k}.db")  # a Lite file has one owning process
                    shutil.copy(db, own_db)
                    extra = {"PYTHONPATH": str(tree)} | ({} if args.semantic else {"EXACT_TIER": "true"})
                    env = service_env(model, own_db, fake.base_url, cache=False, extra=extra)
                    service = Service(env, Path(tmp) / f"service{k}.log", cwd=tree, production=True)
                    service.start()
                    services.append(service)
                for i in range(args.rounds):
                    for tree, service in zip(args.trees, services, strict=True):
                        run = asyncio.run(one_round(service, i, args.hits))
                        cpu = per_hit(run.cpu_ms_per_req)
                        row = {"rps": run.rps, "failures": run.failures + run.wrong_source}
                        row |= {role: cpu[role] * 1000 for role in ROLES}
                        rows[tree].append(row)
                        print(
                            f"round {i} {tree}: {run.rps:.0f}/s, µs per hit: "
                            + ", ".join(f"{r} {row[r]:.1f}" for r in ROLES)
                            + f", failures {row['failures']}"
                        )
            finally:
                for service in services:
                    service.stop()
    med = {t: {k: statistics.median(r[k] for r in rs) for k in ("rps", *ROLES)} for t, rs in rows.items()}
    a, b = args.trees
    print("| medians | " + " | ".join(str(t) for t in args.trees) + " | B / A |")
    print("|---|---:|---:|---:|")
    for k in ("rps", *ROLES, "loop+other"):
        va = med[a][k] if k != "loop+other" else med[a]["loop"] + med[a]["other"]
        vb = med[b][k] if k != "loop+other" else med[b]["loop"] + med[b]["other"]
        print(f"| {k} | {va:.1f} | {vb:.1f} | {vb / va:.3f} |")
    return 0 if all(r["failures"] == 0 for rs in rows.values() for r in rs) else 1


if __name__ == "__main__":
    sys.exit(main())
