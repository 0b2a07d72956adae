"""Stored answers' ids, times and eviction order: the pure parts of ``writing.adapters.milvus.answers``."""

from __future__ import annotations

import secrets
import threading
import time

ID_RANDOM_BITS = 10


class AnswerIds:
    """Answer ids that sort by time (the console and the API list answers in id order): microseconds
    since the epoch above 10 random bits, below 2**61 until 2041; strictly increasing within a process
    (a bulk insert in one microsecond), apart across processes by the random bits."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            candidate = (time.time_ns() // 1000) << ID_RANDOM_BITS | secrets.randbits(ID_RANDOM_BITS)
            self._last = max(candidate, self._last + 1)
            return self._last


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ago_ms(seconds: float) -> int:
    return now_ms() - int(seconds * 1000)


def evictions(rows: list[tuple[int, int, str]], max_entries: int, max_per_tenant: int) -> list[int]:
    """Which answers go (pure logic): ``rows`` are (last used, id, tenant). Beyond ``max_per_tenant`` in a
    tenant its least recently used go; then, beyond ``max_entries`` in all, the least recently used of
    what is left. 0 = no such cap."""
    rows = sorted(rows)
    gone: set[int] = set()
    if max_per_tenant > 0:
        by_tenant: dict[str, list[int]] = {}
        for _, rid, tenant in rows:
            by_tenant.setdefault(tenant, []).append(rid)
        for ids in by_tenant.values():
            gone.update(ids[: max(0, len(ids) - max_per_tenant)])
    if max_entries > 0:
        left = [rid for _, rid, _ in rows if rid not in gone]
        gone.update(left[: max(0, len(left) - max_entries)])
    return [rid for _, rid, _ in rows if rid in gone]
