"""The event loop's CPU per exact hit against the server's own floor, side by side.

    .venv/bin/python -m bench.server_floor [--semantic] [--rounds 6] [--hits 3000] [--perf] [--strace]

Two processes run at once: the service (``python app.py``, exact hits: ``EXACT_TIER=true``, no model and
no search), and the same server (``writing.api.server.serve``: uvicorn, uvloop, httptools, the bounded
protocol with its one write per answer) serving a bare ASGI app that answers every request with the bytes
the service sent for one exact hit (its status, headers and body, recorded first). Each round drives
``--hits`` requests at concurrency 16 at one, then the other. Per round: requests/s and the loop thread's
CPU µs per request of each; then the medians, and what the service's loop spends above the floor: the
app's own work (middleware, the lane, the decision, the headers, metrics). ``--semantic``: semantic hits
of the short prompts instead (the model and a search per batch; the model's threads are not the loop's).

``--perf``: one more round of each under ``perf record`` (cpu-clock, the loop thread only), its CPU split
by where it ran: the kernel (system calls, interrupts, page faults), the Python interpreter, uvloop,
httptools, libc, libcrypto (the feedback token's HMAC). py-spy's samples cannot tell these apart: a thread
that the kernel preempts during a write looks busy on the write's line. ``--strace``: one more round of
each under ``strace -c`` (the loop thread only), its system calls per request. The traced rounds of the
two last about as long: the floor's has as many more requests as it serves more per second.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.cpu_ab import WARM_UP, one_round
from bench.floor import SHORT, prepare_hit_store
from bench.harness import ROOT, Service, model_path, passages, service_env
from writing.devtools.fake_llm import FakeLLM

SERVER_HEADERS = {b"date", b"server"}  # the server adds its own: the replay leaves the recorded ones out
GROUPS = (  # perf's shared objects, by what they are (the first match names a sample's group)
    ("kernel", ("[kernel",)),  # system calls, interrupts, page faults ([vdso] runs in user mode: libc's)
    ("python", ("libpython", "python3")),
    ("uvloop", ("loop.cpython",)),
    ("httptools", ("parser.cpython", "url_parser.cpython")),
    ("libc", ("libc.so", "libc-", "ld-linux", "[vdso]")),
    ("libcrypto", ("libcrypto", "_hashlib")),
)


def replay_app(answer: dict):
    """A bare ASGI app: every HTTP request gets ``answer`` (as ``record`` saved it), sent as two messages."""
    start = {
        "type": "http.response.start",
        "status": answer["status"],
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer["headers"]],
    }
    body = {"type": "http.response.body", "body": base64.b64decode(answer["body"])}

    async def app(scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send(start)
        await send(body)

    return app


def record(url: str, prompt: str) -> dict:
    """One answer of the service, as ``replay_app`` sends it again."""
    import httpx

    r = httpx.get(url + "/generate", params={"prompt": prompt}, timeout=60)
    r.raise_for_status()
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in r.headers.raw if k.lower() not in SERVER_HEADERS]
    return {"status": r.status_code, "headers": headers, "body": base64.b64encode(r.content).decode("ascii")}


class Floor(Service):
    """The service's server with ``replay_app`` in place of the service (``--serve``), in its own process."""

    def __init__(self, answer: Path, log_path: Path) -> None:
        super().__init__(dict(os.environ), log_path)
        self.answer = answer

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.server_floor", "--serve", str(self.answer), "--port", str(self.port)]


def serve_replay(answer: Path, port: int) -> None:
    from writing.api.server import serve
    from writing.settings import Settings

    settings = Settings(host="127.0.0.1", port=port, log_level="WARNING")
    serve(replay_app(json.loads(answer.read_text())), settings)


def perf_split(report: str) -> dict[str, float]:
    """``perf report --sort dso --stdio`` as shares by group (``GROUPS``, then ``other``), summing to 1."""
    out: dict[str, float] = {}
    for line in report.splitlines():
        parts = line.split()
        if len(parts) < 2 or line.lstrip().startswith("#") or not parts[0].endswith("%"):
            continue
        try:
            share = float(parts[0].rstrip("%")) / 100
        except ValueError:
            continue
        dso = " ".join(parts[1:])
        group = next((name for name, marks in GROUPS if any(m in dso for m in marks)), "other")
        out[group] = out.get(group, 0.0) + share
    total = sum(out.values())
    return {k: v / total for k, v in out.items()} if total else {}


def traced_round(service: Service, hits: int, tracer: list[str], log: Path) -> None:
    """One round with ``tracer`` (a command that attaches to the service's loop thread) running through it;
    the tracer is stopped as Ctrl-C would, so that it writes what it gathered. A tracer that could not
    attach (``perf_event_paranoid``, Yama's ``ptrace_scope``) fails the bench with what it said."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(tracer, stdout=out, stderr=subprocess.STDOUT)
    time.sleep(1)  # it attaches
    if proc.poll() is not None:
        raise RuntimeError(f"{tracer[0]} exited ({proc.returncode}): {log.read_text(errors='replace')[-2000:]}")
    try:
        asyncio.run(one_round(service, 0, hits))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)


def perf_round(service: Service, hits: int, data: Path) -> dict[str, float]:
    """One round under ``perf record`` of the service's loop thread: its CPU by group."""
    pid = str(service.proc.pid)
    record = ["perf", "record", "-q", "-e", "cpu-clock", "-F", "1999", "-t", pid, "-o", str(data)]
    traced_round(service, hits, record, data.with_suffix(".log"))
    report = subprocess.run(
        ["perf", "report", "-i", str(data), "--sort", "dso", "--stdio"], capture_output=True, text=True, timeout=300
    )
    split = perf_split(report.stdout)
    if not split:
        raise RuntimeError(f"perf recorded nothing: {report.stderr[-2000:]}")
    return split


def strace_counts(summary: str, requests: int) -> dict[str, float]:
    """``strace -c``'s summary as calls per request, by system call, most first (its total left out)."""
    out: dict[str, float] = {}
    for line in summary.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[3].isdigit() and parts[-1] != "total":
            out[parts[-1]] = int(parts[3]) / requests
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def strace_round(service: Service, hits: int, out: Path) -> dict[str, float]:
    """One round under ``strace -c`` of the service's loop thread: its system calls per request."""
    traced_round(service, hits, ["strace", "-c", "-o", str(out), "-p", str(service.proc.pid)], out.with_suffix(".log"))
    counts = strace_counts(out.read_text(), hits + WARM_UP)
    if not counts:
        raise RuntimeError(f"strace counted nothing: {out.with_suffix('.log').read_text(errors='replace')[-2000:]}")
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--semantic", action="store_true", help="semantic hits instead of exact ones")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--hits", type=int, default=3000)
    p.add_argument("--perf", action="store_true", help="one more round of each under perf record")
    p.add_argument("--strace", action="store_true", help="one more round of each under strace -c")
    p.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # the floor's own process
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve_replay(args.serve, args.port)
        return 0
    for tool, package in (("perf", "linux-perf"), ("strace", "strace")):
        if getattr(args, tool) and shutil.which(tool) is None:
            p.error(f"--{tool} needs {tool} (Debian: {package})")

    from writing.adapters.embedding.encoder import Embedder

    model = model_path()
    names = ("service", "floor")
    rows: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    splits: dict[str, dict[str, float]] = {}
    calls: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="server-floor-") as tmp:
        db = str(Path(tmp) / "bench.db")
        prepare_hit_store(db, model, Embedder(model, quantize="bf16"), passages()[:40])
        with FakeLLM() as fake:
            env = service_env(
                model, db, fake.base_url, cache=False, extra={} if args.semantic else {"EXACT_TIER": "true"}
            )
            service = Service(env, Path(tmp) / "service.log", cwd=ROOT, production=True)
            floor: Floor | None = None
            try:
                service.start()
                answer = Path(tmp) / "answer.json"
                answer.write_text(json.dumps(record(service.url, SHORT[0])))
                floor = Floor(answer, Path(tmp) / "floor.log")
                floor.start()
                for i in range(args.rounds):
                    for name, proc in zip(names, (service, floor), strict=True):
                        run = asyncio.run(one_round(proc, i, args.hits))
                        row = {"rps": run.rps, "loop": run.cpu_ms_per_req["thread:loop"] * 1000}
                        row["failures"] = run.failures + run.wrong_source
                        rows[name].append(row)
                        print(f"round {i} {name}: {run.rps:.0f}/s, loop {row['loop']:.1f} µs per request")
                # the traced rounds last about as long for each: the floor's has as many more requests as it
                # serves more per second (a short round gives perf few samples)
                speed = statistics.median(r["rps"] for r in rows["floor"]) / statistics.median(
                    r["rps"] for r in rows["service"]
                )
                traced = {"service": args.hits, "floor": round(args.hits * max(1.0, speed))}
                for name, proc in zip(names, (service, floor), strict=True):
                    if args.perf:
                        splits[name] = perf_round(proc, traced[name], Path(tmp) / f"{name}.perf")
                    if args.strace:
                        calls[name] = strace_round(proc, traced[name], Path(tmp) / f"{name}.strace")
            finally:
                for proc in (floor, service):
                    if proc is not None:
                        proc.stop()
    med = {n: {k: statistics.median(r[k] for r in rows[n]) for k in ("rps", "loop")} for n in names}
    print("| medians | service | floor | service / floor |")
    print("|---|---:|---:|---:|")
    for k in ("rps", "loop"):
        print(f"| {k} | {med['service'][k]:.1f} | {med['floor'][k]:.1f} | {med['service'][k] / med['floor'][k]:.2f} |")
    above = med["service"]["loop"] - med["floor"]["loop"]
    print(f"the app's own: {above:.1f} µs per hit, {above / med['service']['loop']:.3f} of the service's loop")
    for name, split in splits.items():
        print(f"perf, {name}'s loop thread: " + ", ".join(f"{k} {v:.1%}" for k, v in sorted(split.items())))
    for name, counts in calls.items():
        print(f"strace, {name}'s loop thread, per request: " + ", ".join(f"{k} {v:.2f}" for k, v in counts.items()))
    return 0 if all(r["failures"] == 0 for rs in rows.values() for r in rs) else 1


if __name__ == "__main__":
    sys.exit(main())
