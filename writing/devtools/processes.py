"""Servers that tests and benchmarks start on 127.0.0.1: free ports, process groups, Milvus standalone.

``stop_process_group`` stops a server started in its own process group (start_new_session=True),
children included: the Milvus standalone (whose wrapper spawns the real binary) and the service
started as a subprocess. ``MilvusServer`` runs the PyPI ``milvus`` standalone on loopback only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_process_group(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM the whole group, wait up to ``grace`` seconds for every member, then SIGKILL the rest."""
    pgid = proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and group_alive(pgid):
        proc.poll()  # reap the leader, or the group never looks empty
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


# Milvus standalone advertises "the first unicastable address" of the machine for its internal
# components unless told otherwise; pin every one to loopback so nothing leaves 127.0.0.1.
MILVUS_COMPONENTS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")


def milvus_server_command(exe: str, data_dir: str, *extra: str) -> list[str]:
    """``milvus-server`` (PyPI package ``milvus``) on loopback only, its data under ``data_dir``."""
    cmd = [exe, "--data", str(data_dir), *extra]
    for component in MILVUS_COMPONENTS:
        cmd += ["--extra-config", f"{component}.ip=127.0.0.1"]
    return cmd


class MilvusServer:
    """A real Milvus standalone (PyPI package ``milvus``) that a test can stop and start again."""

    PORT = 19530

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.uri = f"http://127.0.0.1:{self.PORT}"

    def start(self, timeout: float = 180, attempts: int = 3) -> None:
        """Start and wait until it answers; a start that hangs (seen: etcd leader changes) is killed
        and tried again, so no half-started server is ever left behind."""
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(timeout)
            except (RuntimeError, TimeoutError):
                self.stop()
                if attempt == attempts:
                    raise

    def _start_once(self, timeout: float) -> None:
        exe = shutil.which("milvus-server") or str(Path(sys.executable).parent / "milvus-server")
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                milvus_server_command(exe, str(self.data_dir)),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"milvus-server exited ({self.proc.returncode}); see {self.log_path}")
            if port_open(self.PORT) and self._answers():
                return
            time.sleep(1)
        raise TimeoutError(f"milvus-server not ready in {timeout}s; see {self.log_path}")

    def _answers(self) -> bool:
        from pymilvus import MilvusClient

        try:
            c = MilvusClient(self.uri, timeout=3)
            c.list_databases(timeout=3)
            c.close()
            return True
        except Exception:  # noqa: BLE001 - not up yet, whatever the reason
            return False

    def stop(self) -> None:
        """Stop the wrapper and the milvus binary it spawned (same process group), and wait for both."""
        if self.proc is None:
            return
        # a server that served traffic can take a minute to exit cleanly; its data is for tests only
        stop_process_group(self.proc, grace=15)
        self.proc = None
        deadline = time.monotonic() + 30
        while port_open(self.PORT) and time.monotonic() < deadline:
            time.sleep(0.5)
