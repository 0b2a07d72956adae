"""Stopping a server started in its own process group (start_new_session=True), children included.

Used by the tests and the benchmarks for the Milvus standalone (whose wrapper spawns the real
binary) and for the service started as a subprocess.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time


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
