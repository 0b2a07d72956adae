"""The command line of the local fleet (writing/devtools/fleet.py): ``python -m writing.devtools.cluster up``.

``up`` runs a fleet in the foreground until Ctrl-C, SIGTERM or SIGHUP, with what scripts/run.sh runs one replica
with: the Gemma llama.cpp stand-in (unless LLM_BASE_URL is set), the m3e-small stand-in embedding model
and its calibrated thresholds (unless EMBEDDING_MODEL is set), the sample corpus. Caller and admin keys
and FEEDBACK_SECRET are generated unless set, and written to ``<base>/keys.env`` (mode 600). ``down``
stops the fleet that ``up`` runs in another terminal (``<base>/fleet.pid``); ``status`` asks each replica's
/readyz and nginx's /healthz (``<base>/fleet.json``). scripts/cluster.sh installs what it needs first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from writing.devtools.fleet import ROOT, Fleet, FleetConfig, http_get
from writing.devtools.processes import free_port

log = logging.getLogger(__name__)

# scripts/run.sh's defaults for the m3e-small stand-in (docs/calibration/m3e-small/README.md says why)
STANDIN_DEFAULTS = {"EMBEDDING_POOLING": "mean", "SIMILARITY_THRESHOLD": "0.80", "ANSWER_CACHE_THRESHOLD": "0.91"}
KEYS = ("API_KEYS", "ADMIN_API_KEYS", "METRICS_API_KEYS", "FEEDBACK_SECRET")


def replica_env(environ: dict[str, str]) -> dict[str, str]:
    """What every replica gets beyond the environment: the stand-in embedding model and its thresholds
    when EMBEDDING_MODEL is unset, and keys and FEEDBACK_SECRET (the same on every replica) when unset."""
    env = {k: environ.get(k) or secrets.token_urlsafe(24) for k in KEYS}
    if not environ.get("EMBEDDING_MODEL"):
        from writing.devtools.standin_models import M3E_SMALL

        env["EMBEDDING_MODEL"] = str(M3E_SMALL.path())
        env.update({k: environ.get(k) or v for k, v in STANDIN_DEFAULTS.items()})
    return env


def write_private(path: Path, text: str) -> None:
    """Write ``path`` readable by its owner only (mode 600 from the start, not after)."""
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(text)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _running_pid(base: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        pid = int((base / "fleet.pid").read_text())
        return pid if _alive(pid) else None
    return None


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, `down`, the terminal closing


def _interrupt(signum: int, frame: object) -> None:
    for sig in STOP_SIGNALS:  # stopping is not interrupted by a second signal
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


def stop_on_signals() -> None:
    """Ctrl-C, SIGTERM (``down``) and SIGHUP (the terminal closing) stop the fleet: its processes are
    stopped, not orphaned (Python's default for SIGTERM and SIGHUP would end this process at once, leaving
    the replicas, nginx and Milvus running), and a second signal does not interrupt the stopping. A signal
    this process was started ignoring stays ignored: under ``nohup`` the fleet outlives its terminal."""
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, _interrupt)


def up(args: argparse.Namespace) -> int:
    base: Path = args.base_dir.resolve()
    base.mkdir(parents=True, exist_ok=True)
    if (pid := _running_pid(base)) is not None:
        print(f"a fleet already runs from {base} (pid {pid}): `down` first", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    env = replica_env(dict(os.environ))
    stop_on_signals()
    llm = None
    try:
        (base / "fleet.pid").write_text(str(os.getpid()))
        if not os.environ.get("LLM_BASE_URL"):
            from writing.devtools import local_llm

            port = free_port()
            print(f"==> starting the local LLM (llama.cpp, Gemma 3 270M) on 127.0.0.1:{port}", file=sys.stderr)
            llm = local_llm.start(port, log_path=base / "llm.log")
            env["LLM_BASE_URL"] = f"http://127.0.0.1:{port}/v1"
            env["LLM_MAX_TOKENS"] = os.environ.get("LLM_MAX_TOKENS") or "256"  # as scripts/run.sh
        write_private(base / "keys.env", "".join(f"{k}={env[k]}\n" for k in KEYS))
        config = FleetConfig(
            base, env, env["METRICS_API_KEYS"].split(",")[0], replicas=args.replicas, prometheus=not args.no_prometheus
        )
        with Fleet(config) as fleet:
            print("==> loading the sample corpus (idempotent)", file=sys.stderr)
            corpus_env = {**os.environ, **env, "MILVUS_URI": fleet.milvus_uri or ""}
            subprocess.run(
                [sys.executable, "ingest.py", "data/sample_corpus.jsonl", "--no-progress"],
                cwd=ROOT,
                env=corpus_env,
                check=True,
            )
            state = {"url": fleet.url, "replica_urls": fleet.replica_urls, "prometheus_url": fleet.prometheus_url}
            (base / "fleet.json").write_text(json.dumps(state, indent=2))
            print(f"fleet up in {fleet.startup_seconds:.0f} s (base {base})")
            print(f"  nginx       {fleet.url}")
            for i, url in enumerate(fleet.replica_urls):
                print(f"  replica {i}   {url}   log {fleet.replica_log(i)}")
            print(f"  prometheus  {fleet.prometheus_url or '(not running)'}")
            print(f"  milvus      {fleet.milvus_uri}")
            print(f"  caller key  {env['API_KEYS']}\n  admin key   {env['ADMIN_API_KEYS']}  (also in {base}/keys.env)")
            print(f"  metrics key {env['METRICS_API_KEYS']}  (Prometheus's: /metrics only)")
            print("Ctrl-C (or `python -m writing.devtools.cluster down`) stops it", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):  # after a hangup the terminal is gone
            print("==> stopped", file=sys.stderr)
    finally:
        if llm is not None:
            llm.terminate()
            try:
                llm.wait(10)
            except subprocess.TimeoutExpired:
                llm.kill()
                llm.wait(10)
        for name in ("fleet.pid", "fleet.json"):
            (base / name).unlink(missing_ok=True)
    return 0


def down(args: argparse.Namespace) -> int:
    base: Path = args.base_dir.resolve()
    pid = _running_pid(base)
    if pid is None:
        print(f"no fleet runs from {base}", file=sys.stderr)
        return 1
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + args.timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            print(f"the fleet (pid {pid}) is still stopping after {args.timeout:.0f} s", file=sys.stderr)
            return 1
        time.sleep(0.5)
    print("fleet stopped")
    return 0


def status(args: argparse.Namespace) -> int:
    base: Path = args.base_dir.resolve()
    try:
        state = json.loads((base / "fleet.json").read_text())
    except (OSError, ValueError):
        print(f"no fleet runs from {base}", file=sys.stderr)
        return 1
    rows = [("nginx", f"{state['url']}/healthz")]
    rows += [(f"replica {i}", f"{url}/readyz") for i, url in enumerate(state["replica_urls"])]
    if state.get("prometheus_url"):
        rows.append(("prometheus", f"{state['prometheus_url']}/-/ready"))
    healthy = True
    print(f"{'what':<12} {'code':>4}  {'status':<12} url")
    for name, url in rows:
        code, body = http_get(url)
        text = ""
        with contextlib.suppress(ValueError, AttributeError):
            text = json.loads(body).get("status", "")
        print(f"{name:<12} {code or '-':>4}  {text or ('down' if not code else ''):<12} {url}")
        healthy = healthy and code == 200
    return 0 if healthy else 1


def main(argv: list[str] | None = None) -> int:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--base-dir", type=Path, default=ROOT / ".fleet", help="state and logs (default .fleet/)")
    parser = argparse.ArgumentParser(
        prog="python -m writing.devtools.cluster", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("up", parents=[common], help="run a fleet in the foreground until Ctrl-C")
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--no-prometheus", action="store_true")
    p.set_defaults(run=up)
    p = sub.add_parser("down", parents=[common], help="stop the fleet that `up` runs")
    p.add_argument("--timeout", type=float, default=180.0)
    p.set_defaults(run=down)
    sub.add_parser("status", parents=[common], help="each replica's /readyz, nginx's /healthz").set_defaults(run=status)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
