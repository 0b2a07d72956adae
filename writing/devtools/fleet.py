"""A local fleet in one command: N replicas of the service behind nginx, Prometheus scraping each (issue 28).

    python -m writing.devtools.cluster up [--replicas 3] [--base-dir .fleet] [--no-prometheus]
    python -m writing.devtools.cluster status     # each replica's /readyz and nginx's /healthz
    python -m writing.devtools.cluster down       # stops the fleet that `up` runs in another terminal

What a production deployment runs, on one machine, so that tests and benches can check what only a fleet
shows: a replica killed or drained while requests flow, a rolling restart, retries that must never repeat
a POST, X-Forwarded-For from the edge only, every replica scraped. ``Fleet`` is the Python API they use;
the configuration text comes from writing/devtools/fleet_config.py. Replicas are ``python app.py`` on fixed
loopback ports (each in its own process group, logs in the base folder) sharing one Milvus server (started
here unless ``milvus_uri`` names one); nginx and Prometheus run in the foreground in their own process
groups with their configuration and state in the base folder (scripts/install-fleet.sh installs them).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from writing.devtools.fleet_config import NginxPaths, count_retries, nginx_conf, prometheus_yml
from writing.devtools.processes import MilvusServer, free_port, port_open, stop_process_group

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]  # the repository: app.py sits beside the writing package
DRAIN_GRACE = 30.0  # seconds a drained replica gets to finish its requests before SIGKILL
# a Milvus standalone answered 10 to 60 s after it started here; a start that hangs (etcd "leader changed")
# never does, and MilvusServer kills it and tries again: its default 180 s per try dominated start-up
MILVUS_ATTEMPT_TIMEOUT = 90.0
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy


def http_get(url: str, timeout: float = 3.0) -> tuple[int, bytes]:
    """GET ``url``: (status, body); (0, b"") when nothing answered."""
    try:
        with _OPENER.open(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def child_pids(pid: int) -> set[int]:
    """Live (not zombie) children of ``pid``: an nginx master's workers."""
    kids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
            if int(ppid) == pid and state != "Z":
                kids.add(int(stat.parent.name))
    return kids


def _nginx_exe() -> str:
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if exe is None:
        raise RuntimeError("nginx is not installed: run scripts/install-fleet.sh")
    return exe


@dataclass
class FleetConfig:
    base_dir: Path  # logs, nginx/prometheus configuration and state, Milvus data when started here
    env: dict[str, str]  # for every replica (EMBEDDING_MODEL, API_KEYS, ADMIN_API_KEYS, LLM_BASE_URL, ...)
    scrape_key: str  # Prometheus scrapes /metrics with it: a key of METRICS_API_KEYS (or ADMIN_API_KEYS)
    replicas: int = 3
    milvus_uri: str | None = None  # None: start a Milvus server (data under base_dir), stopped by stop()
    prometheus: bool = True
    nginx_port: int = 0  # 0: a free port


class Fleet:
    """Replicas, nginx and Prometheus; ``with Fleet(config) as fleet: fleet.url``."""

    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        self.base_dir = config.base_dir.resolve()
        ports: list[int] = []
        while len(ports) < config.replicas + 1:  # the replicas' ports, then nginx's: all distinct
            port = free_port()
            if port not in ports:
                ports.append(port)
        self.ports = ports[:-1]
        self.nginx_port = config.nginx_port or ports[-1]
        self.url = f"http://127.0.0.1:{self.nginx_port}"
        self.replica_urls = [f"http://127.0.0.1:{p}" for p in self.ports]
        self.prometheus_url: str | None = None
        self.milvus_uri = config.milvus_uri
        self.startup_seconds: float | None = None
        self.nginx_paths = NginxPaths(self.base_dir / "nginx")
        self._procs: list[subprocess.Popen | None] = [None] * config.replicas
        self._drained: set[int] = set()
        self._milvus: MilvusServer | None = None
        self._nginx: subprocess.Popen | None = None
        self._prometheus: subprocess.Popen | None = None

    # -- whole fleet ---------------------------------------------------------------------------------
    def start(self, timeout: float = 300) -> None:
        """Milvus (unless given), the replicas (in parallel) until each /readyz answers 200, nginx, then
        Prometheus. On any failure what started is stopped and the error names the log to read."""
        began = time.monotonic()
        deadline = began + timeout
        self.base_dir.mkdir(parents=True, exist_ok=True)
        try:
            if self.milvus_uri is None:
                self._start_milvus(timeout)
            for i in range(len(self.ports)):
                self._spawn(i)
            self._wait_ready(list(range(len(self.ports))), deadline)
            self._start_nginx()
            if self.config.prometheus:
                self._start_prometheus()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        log.info("fleet up in %.1f s: %s, replicas %s", self.startup_seconds, self.url, self.replica_urls)

    def stop(self) -> None:
        """Stop everything that runs: idempotent, and also after a partial start."""
        for attr, grace in (("_prometheus", 10.0), ("_nginx", 10.0)):
            proc = getattr(self, attr)
            if proc is not None:
                stop_process_group(proc, grace=grace)
                setattr(self, attr, None)
        self.prometheus_url = None
        self._drained.clear()
        running = [(i, p) for i, p in enumerate(self._procs) if p is not None]
        for _, proc in running:  # all at once: they shut down in parallel
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for i, proc in running:
            stop_process_group(proc, grace=30)
            self._procs[i] = None
        if self._milvus is not None:
            self._milvus.stop()
            self._milvus = None
            self.milvus_uri = None

    def __enter__(self) -> Fleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- replicas ------------------------------------------------------------------------------------
    def replica_log(self, i: int) -> Path:
        return self.base_dir / f"replica-{i}.log"

    def kill(self, i: int) -> None:
        """SIGKILL replica ``i``'s process group: no drain, requests in flight on it fail."""
        proc = self._procs[i]
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        self._procs[i] = None

    def start_replica(self, i: int, timeout: float = 180) -> None:
        """(Re)start replica ``i`` on the same port and wait until its /readyz answers 200."""
        proc = self._procs[i]
        if proc is not None:
            stop_process_group(proc, grace=DRAIN_GRACE)
            self._procs[i] = None
        deadline = time.monotonic() + timeout
        self._spawn(i)
        try:
            self._wait_ready([i], deadline)
        except BaseException:
            self.kill(i)
            raise

    def drain(self, i: int, grace: float = DRAIN_GRACE) -> None:
        """Mark replica ``i`` down in nginx and reload (new workers send it nothing; the old ones finish
        what they have), then SIGTERM it: uvicorn finishes its requests in flight and exits; after
        ``grace`` seconds it is killed."""
        began = time.monotonic()
        self._drained.add(i)
        self._reload(wait_old=grace)
        reloaded = time.monotonic() - began
        proc = self._procs[i]
        if proc is not None:
            stop_process_group(proc, grace=grace)
            self._procs[i] = None
        log.info(
            "replica %d drained: nginx reloaded in %.1f s, stopped in %.1f s", i, reloaded, time.monotonic() - began
        )

    def undrain(self, i: int) -> None:
        """Put replica ``i`` back into nginx's rotation."""
        self._drained.discard(i)
        self._reload(wait_old=0)

    def rolling_restart(self, ready_timeout: float = 180) -> list[float]:
        """Drain, restart and undrain each replica in turn; the seconds each one took."""
        took = []
        for i in range(len(self.ports)):
            began = time.monotonic()
            self.drain(i)
            self.start_replica(i, timeout=ready_timeout)
            self.undrain(i)
            took.append(time.monotonic() - began)
            log.info("replica %d restarted in %.1f s", i, took[-1])
        return took

    def _spawn(self, i: int) -> None:
        port = self.ports[i]
        deadline = time.monotonic() + 10
        while port_open(port):  # a replica that was just stopped may hold it a moment longer
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {port} of replica {i} is taken")
            time.sleep(0.2)
        env = {
            **os.environ,
            **self.config.env,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "WORKERS": "1",
            "FORWARDED_ALLOW_IPS": "127.0.0.1",
            "MILVUS_URI": self.milvus_uri or "",
        }
        with open(self.replica_log(i), "ab") as out:  # the child keeps its own copy of the descriptor
            self._procs[i] = subprocess.Popen(
                [sys.executable, "app.py"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_ready(self, indexes: list[int], deadline: float) -> None:
        pending, last = list(indexes), {}
        while pending:
            for i in list(pending):
                proc = self._procs[i]
                if proc is None or proc.poll() is not None:
                    code = None if proc is None else proc.returncode
                    raise RuntimeError(f"replica {i} exited ({code}); see {self.replica_log(i)}")
                status, body = http_get(f"{self.replica_urls[i]}/readyz")
                last[i] = f"{status} {body[:300].decode(errors='replace')}"
                if status == 200:
                    pending.remove(i)
            if not pending:
                return
            if time.monotonic() > deadline:
                i = pending[0]
                raise TimeoutError(f"replica {i} not ready (/readyz: {last[i]}); see {self.replica_log(i)}")
            time.sleep(0.5)

    # -- Milvus, nginx, Prometheus ------------------------------------------------------------------
    def _start_milvus(self, timeout: float) -> None:
        if port_open(MilvusServer.PORT):
            raise RuntimeError(f"port {MilvusServer.PORT} is taken (another Milvus?): pass milvus_uri instead")
        (self.base_dir / "milvus").mkdir(exist_ok=True)
        began = time.monotonic()
        self._milvus = MilvusServer(self.base_dir / "milvus", self.base_dir / "milvus.log")
        self._milvus.start(timeout=min(timeout, MILVUS_ATTEMPT_TIMEOUT))
        self.milvus_uri = self._milvus.uri
        log.info("milvus server ready in %.1f s at %s", time.monotonic() - began, self.milvus_uri)

    def _nginx_cmd(self, *args: str) -> list[str]:
        p = self.nginx_paths
        return [_nginx_exe(), "-p", str(p.prefix), "-e", str(p.error_log), "-c", str(p.conf), *args]

    def _write_nginx_conf(self) -> None:
        paths = self.nginx_paths
        paths.make_dirs()
        text = nginx_conf(self.ports, self._drained, self.nginx_port, paths, run_as_root=os.geteuid() == 0)
        paths.conf.write_text(text, encoding="utf-8")
        test = subprocess.run(self._nginx_cmd("-t"), capture_output=True, text=True, timeout=30)
        if test.returncode != 0:
            raise RuntimeError(f"nginx -t rejected {paths.conf}:\n{test.stdout}{test.stderr}")

    def _start_nginx(self) -> None:
        self._write_nginx_conf()
        with open(self.nginx_paths.prefix / "nginx.out", "ab") as out:
            self._nginx = subprocess.Popen(
                self._nginx_cmd("-g", "daemon off;"), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 15
        while not (port_open(self.nginx_port) and child_pids(self._nginx.pid)):
            if self._nginx.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start; see {self.nginx_paths.error_log}")
            time.sleep(0.1)

    def _reload(self, wait_old: float, timeout: float = 15) -> None:
        """Write the configuration, ``nginx -s reload``, and wait until new workers serve it; with
        ``wait_old`` also up to that many seconds for the old workers to finish their requests and exit."""
        if self._nginx is None:
            raise RuntimeError("nginx is not running")
        master = self._nginx.pid
        old = child_pids(master)
        self._write_nginx_conf()
        subprocess.run(self._nginx_cmd("-s", "reload"), check=True, capture_output=True, timeout=30)
        began = time.monotonic()
        while time.monotonic() - began < wait_old + timeout:
            kids = child_pids(master)
            if kids - old and (not kids & old or time.monotonic() - began > wait_old):
                if kids & old and wait_old:
                    log.warning("nginx: old workers %s still finishing requests", sorted(kids & old))
                return
            time.sleep(0.05)
        raise RuntimeError(f"nginx did not reload in {timeout:.0f} s; see {self.nginx_paths.error_log}")

    def _start_prometheus(self) -> None:
        exe = shutil.which("prometheus")
        if exe is None:
            log.info("prometheus is not installed (scripts/install-fleet.sh): the fleet runs without it")
            return
        folder = self.base_dir / "prometheus"
        folder.mkdir(exist_ok=True)
        credentials = folder / "scrape_key"
        credentials.unlink(missing_ok=True)
        fd = os.open(credentials, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.config.scrape_key)
        config = folder / "prometheus.yml"
        rules = ROOT / "deploy" / "prometheus" / "rules.yml"  # the deployments' rules (docs/deploy.md)
        text = prometheus_yml(self.ports, credentials, rules_file=rules if rules.is_file() else None)
        config.write_text(text, encoding="utf-8")
        port = free_port()
        cmd = [
            exe,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        log_path = folder / "prometheus.log"
        with open(log_path, "ab") as out:
            self._prometheus = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
        while http_get(f"{url}/-/ready")[0] != 200:
            if self._prometheus.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not start; see {log_path}")
            time.sleep(0.2)
        self.prometheus_url = url

    def prometheus_targets(self) -> list[dict]:
        """Prometheus's active targets (``health``, ``scrapeUrl``, ``labels``, ``lastError``...)."""
        if self.prometheus_url is None:
            return []
        status, body = http_get(f"{self.prometheus_url}/api/v1/targets?state=active")
        if status != 200:
            raise RuntimeError(f"prometheus /api/v1/targets answered {status}")
        return json.loads(body)["data"]["activeTargets"]

    def access_log_retries(self) -> int:
        """Requests nginx passed to more than one replica, from its access log."""
        path = self.nginx_paths.access_log
        if not path.exists():
            return 0
        with open(path, encoding="utf-8", errors="replace") as f:
            return count_retries(f)
