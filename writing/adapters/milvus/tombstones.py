"""Tombstones: ids deleted a moment ago, filtered out of searches while replicas may still serve them.

A delete in Milvus becomes visible to Bounded-consistency searches only after a while; until then this
process's searches exclude the deleted ids themselves (for ``TOMBSTONE_SECONDS``). Thread-safe.
"""

from __future__ import annotations

import threading
import time

TOMBSTONE_SECONDS = 120.0  # deleted ids are filtered out of searches while replicas may lag


class Tombstones:
    def __init__(self) -> None:
        self._since: dict[int, float] = {}
        self._lock = threading.Lock()

    def add(self, ids: list[int]) -> None:
        now = time.monotonic()
        with self._lock:
            self._since.update({i: now for i in ids})

    def search_filter(self) -> str:
        """A Milvus filter leaving out the ids deleted less than ``TOMBSTONE_SECONDS`` ago ("" when there are none)."""
        now = time.monotonic()
        with self._lock:
            for i in [i for i, t in self._since.items() if now - t > TOMBSTONE_SECONDS]:
                del self._since[i]
            ids = list(self._since)
        return f"id not in [{', '.join(map(str, ids))}]" if ids else ""
