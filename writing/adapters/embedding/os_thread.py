"""The embedding worker's name as the OS sees it: ``top -H``, ``ps -L`` and ``/proc/<pid>/task/*/comm``
show ``embed-batcher`` instead of a row of ``python`` threads, and the threads it starts afterwards
(torch's OpenMP team) inherit the name, so the model's CPU can be told from the event loop's
(``bench/hit_path.py`` splits the service's CPU per hit by it)."""

from __future__ import annotations

import contextlib
import ctypes
import sys

PR_SET_NAME = 15
MAX_NAME_BYTES = 15  # the kernel keeps 16 bytes, the last a NUL


def name_os_thread(name: str) -> None:
    """Name the calling thread for the OS (Linux; elsewhere nothing happens)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode("ascii", "replace")[:MAX_NAME_BYTES], 0, 0, 0)
