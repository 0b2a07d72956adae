"""The embedding worker's name as the OS sees it: ``top -H``, ``ps -L`` and ``/proc/<pid>/task/*/comm``
show ``embed-batcher`` instead of a row of ``python`` threads, and the threads it starts afterwards
(torch's OpenMP team) inherit the name, so the model's CPU can be told from the event loop's
(``bench/hit_path.py`` splits the service's CPU per hit by it). ``os_thread_named`` names the thread
that loads the model for the load only: the threads started meanwhile (its OpenMP team, the
tokenizer's pool) keep the name, the loading thread gets its own back."""

from __future__ import annotations

import contextlib
import ctypes
import sys
import threading
from collections.abc import Iterator

PR_SET_NAME = 15
MAX_NAME_BYTES = 15  # the kernel keeps 16 bytes, the last a NUL


def name_os_thread(name: str) -> None:
    """Name the calling thread for the OS (Linux; elsewhere nothing happens)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode("ascii", "replace")[:MAX_NAME_BYTES], 0, 0, 0)


def os_thread_name() -> str | None:
    """The calling thread's name as the OS has it (None where it cannot be read)."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm", encoding="ascii", errors="replace") as f:
            return f.read().rstrip("\n")
    except OSError:
        return None


@contextlib.contextmanager
def os_thread_named(name: str) -> Iterator[None]:
    """The calling thread named ``name`` while the block runs: the threads it starts meanwhile keep that
    name (a new thread inherits its creator's), and the calling thread gets its own name back after."""
    before = os_thread_name()
    name_os_thread(name)
    try:
        yield
    finally:
        if before is not None:
            name_os_thread(before)
