"""Keeping a connection to a component that can go away (the vector store, the answer store).

``Link`` opens a component once, and after a failure reopens it at most once per retry interval, so a
component that is down costs one failed attempt per interval rather than one per request. The answer
store has its own link: a failing answer cache never takes curated retrieval down with it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from writing.errors import VectorStoreError

logger = logging.getLogger(__name__)


class Link:
    def __init__(
        self,
        name: str,
        open_sync: Callable[[], None],
        *,
        retry_interval: float,
        reset: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._open_sync = open_sync
        self._reset = reset
        self.retry_interval = retry_interval
        self.ready = False
        self._next_try = 0.0
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Open now; a configuration error (DimensionMismatch, StoreLocked) propagates."""
        await asyncio.to_thread(self._open_sync)
        self.ready = True

    async def ensure(self) -> bool:
        """Ready, or (re)opened now; at most one attempt per retry interval, never queued behind one."""
        if self.ready:
            return True
        if self._lock.locked():  # a reconnection is under way: don't queue behind it
            return False
        async with self._lock:
            if self.ready:
                return True
            now = time.monotonic()
            if now < self._next_try:
                return False
            self._next_try = now + self.retry_interval
            try:
                await self.open()
            except VectorStoreError as exc:
                logger.warning("%s still unavailable: %s", self.name, exc)
                return False
            logger.info("%s connected", self.name)
            return True

    def failed(self) -> None:
        """A call failed: reconnect (with a fresh connection) on a later request."""
        self.ready = False
        self._next_try = time.monotonic() + self.retry_interval
        if self._reset is not None:
            self._reset()
