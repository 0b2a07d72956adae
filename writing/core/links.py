"""Links to the components that can go away, one per failure domain.

A ``Link`` opens a component once, and after a failure reopens it at most once per retry interval, so a
component that is down costs one failed attempt per interval rather than one per request. Every store
call goes through its own domain's link (``Link.call``): in a worker thread, reconnecting first when
needed, and a failure marks *that* link failed and nothing else.

The domains (``StoreLinks``): the curated corpus, the stored answers, the records (audit log, feedback
reports, labelled pairs) and the run-time settings. Each has its own connection (the adapters give each
its own client: ``writing.wiring``), so a failing audit write can never turn an exact curated hit into a
store-error miss, and one domain's reconnection never drops another's client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from writing.errors import VectorStoreError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Link:
    def __init__(
        self,
        name: str,
        open_sync: Callable[[], None],
        *,
        retry_interval: float,
        reset: Callable[[], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self._open_sync = open_sync
        self._reset = reset
        self._on_error = on_error
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

    def failed(self, exc: Exception | None = None) -> None:
        """A call failed: reconnect (with a fresh connection) on a later request. Only this link."""
        self.ready = False
        self._next_try = time.monotonic() + self.retry_interval
        if exc is not None:
            logger.warning("%s call failed: %s", self.name, exc)
            if self._on_error is not None:
                self._on_error(self.name)
        if self._reset is not None:
            self._reset()

    async def call(self, op: Callable[[], T]) -> T:
        """Run a blocking store operation (e.g. ``lambda: store.stats()``) in a worker thread, connecting
        first when needed; VectorStoreError (503) when the component is down or the call fails."""
        if not await self.ensure():
            raise VectorStoreError(f"the {self.name} is unavailable")
        try:
            return await asyncio.to_thread(op)
        except VectorStoreError as exc:
            self.failed(exc)
            raise


class Disabled:
    """The link of a component that is switched off (the answer cache with ``ANSWER_CACHE=false``)."""

    ready = False

    def __init__(self, name: str, why: str) -> None:
        self.name = name
        self.why = why

    async def open(self) -> None:
        return None

    async def ensure(self) -> bool:
        return False

    def failed(self, exc: Exception | None = None) -> None:
        return None

    async def call(self, op: Callable[[], T]) -> T:
        raise VectorStoreError(f"the {self.name} is off ({self.why})")


@dataclass
class StoreLinks:
    """One link per failure domain."""

    corpus: Link
    answers: Link | Disabled
    records: Link  # audit log, feedback reports, labelled pairs
    settings: Link  # run-time settings (thresholds)

    def all(self) -> list[Link | Disabled]:
        return [self.corpus, self.answers, self.records, self.settings]
