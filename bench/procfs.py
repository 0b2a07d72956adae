"""CPU time from /proc (Linux), for the benchmarks: per process group, per thread role, and the machine's.

Per-thread figures come from the scheduler (``schedstat``: nanoseconds on a CPU) and per-process ones from
the process's CPU clock (``clock_gettime``, nanoseconds, exited threads included): /proc's stat counts
whole clock ticks (10 ms), and a run of a few hundred hits spends only tens of them in the event loop,
too few for a per-hit figure. Stat's ticks remain the fallback.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(raw: str) -> tuple[str, int, float]:
    """A /proc stat line: the command name, the process group and the CPU seconds (user + system)."""
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is state (field 3); pgrp is field 5, utime 14, stime 15 -> indexes 2, 11, 12
    return comm, int(fields[2]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def process_cpu(pid: int) -> float:
    """A process's CPU seconds, all its threads' (exited ones too), from its CPU clock; else stat's ticks."""
    try:  # the kernel's clock id for a process's CPU time: MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
        return time.clock_gettime(((~pid) << 3) | 2)
    except OSError:
        return _stat(Path(f"/proc/{pid}/stat").read_text())[2]


def _thread_cpu_s(task_dir: str, ticks: float) -> float:
    """A thread's CPU seconds from the scheduler (``schedstat``), else ``ticks``."""
    try:
        return int(Path(f"{task_dir}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return ticks


def group_cpu(pgid: int) -> dict[str, float]:
    """CPU seconds of every live process in a process group, by command name."""
    out: dict[str, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm, pgrp, _ = _stat(raw)
        if pgrp == pgid:
            with contextlib.suppress(OSError):  # it may have exited since
                out[comm] = out.get(comm, 0.0) + process_cpu(int(entry))
    return out


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of one process's live threads, by role: ``loop`` (the main thread: uvicorn's event loop,
    where the service's own per-request work runs), ``model`` (threads the service names ``embed-*``:
    the embedding batcher and the OpenMP team it starts; a tree that names none counts them as
    ``other``) and ``other`` (the search's and the store's threads, the default executor)."""
    out = {"loop": 0.0, "model": 0.0, "other": 0.0}
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            task_dir = f"/proc/{pid}/task/{tid}"
            try:
                comm, _, ticks = _stat(Path(f"{task_dir}/stat").read_text())
            except OSError:
                continue
            role = "loop" if tid == str(pid) else "model" if comm.startswith("embed-") else "other"
            out[role] += _thread_cpu_s(task_dir, ticks)
    return out


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all processes, all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def foreign_cores(seconds: float = 2.0) -> float:
    """Cores kept busy by other processes over a short window, while this one sleeps."""
    b0, s0, t0 = machine_busy_s(), self_cpu(), time.perf_counter()
    time.sleep(seconds)
    return max(0.0, (machine_busy_s() - b0) - (self_cpu() - s0)) / (time.perf_counter() - t0)
