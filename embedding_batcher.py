"""Dynamic batching of embedding requests: a bounded queue in front of one worker thread.

Requests that arrive together share one forward pass (bounded batch size, a short wait for company,
texts sorted by length so padding stays small). The event loop never runs the model: callers await a
future that the worker thread resolves. A full queue raises ``EmbeddingQueueFull`` at once, which the
HTTP layer turns into 503 + Retry-After. An LRU keyed by the normalised prompt lets repeats skip the
model entirely.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from embedding import Embedder
from textutil import normalise_text

logger = logging.getLogger(__name__)


class EmbeddingQueueFull(RuntimeError):
    """The embedding queue is at capacity; the caller should retry later."""


@dataclass
class _Job:
    text: str
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class BatcherStats:
    batches: int = 0
    embedded: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    rejected: int = 0
    largest_batch: int = 0


class _LRU:
    def __init__(self, size: int) -> None:
        self.size = size
        self._d: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> np.ndarray | None:
        if self.size <= 0:
            return None
        with self._lock:
            v = self._d.get(key)
            if v is not None:
                self._d.move_to_end(key)
            return v

    def put(self, key: str, value: np.ndarray) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)


class EmbeddingBatcher:
    """Async facade over an ``Embedder``: ``await embed_query(text)`` -> unit vector (dim,)."""

    def __init__(
        self,
        embedder: Embedder,
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 2.0,
        queue_size: int = 256,
        cache_size: int = 4096,
    ) -> None:
        self.embedder = embedder
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=queue_size)
        self._cache = _LRU(cache_size)
        self.stats = BatcherStats()
        self._thread = threading.Thread(target=self._run, name="embedding-batcher", daemon=True)
        self._stopped = False
        self._thread.start()

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    async def embed_query(self, text: str) -> np.ndarray:
        key = normalise_text(text)
        cached = self._cache.get(key)
        if cached is not None:
            self.stats.cache_hits += 1
            return cached
        self.stats.cache_misses += 1
        loop = asyncio.get_running_loop()
        job = _Job(text=key, future=loop.create_future(), loop=loop)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.stats.rejected += 1
            raise EmbeddingQueueFull("embedding queue is full") from None
        vector = await job.future
        self._cache.put(key, vector)
        return vector

    def close(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            self._queue.put(None, timeout=1)
        except queue.Full:
            pass
        self._thread.join(timeout=30)

    # -- worker thread -------------------------------------------------------------------------
    def _collect(self, first: _Job) -> list[_Job]:
        jobs = [first]
        deadline = time.perf_counter() + self.max_wait
        while len(jobs) < self.max_batch_size:
            try:
                remaining = deadline - time.perf_counter()
                job = self._queue.get_nowait() if remaining <= 0 else self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if job is None:  # shutdown: finish this batch, then stop
                self._stopped = True
                break
            jobs.append(job)
        return jobs

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [j for j in self._collect(first) if not j.future.cancelled()]
            if jobs:
                self._process(jobs)
            if self._stopped and self._queue.empty():
                return

    def _process(self, jobs: list[_Job]) -> None:
        # identical texts in one batch are embedded once; the batch is sorted by length
        unique = sorted({j.text for j in jobs}, key=len)
        try:
            vectors = self.embedder.embed_queries(unique)
        except Exception as exc:  # noqa: BLE001 - every waiting caller must hear about it
            logger.exception("embedding batch of %d failed", len(unique))
            for j in jobs:
                j.loop.call_soon_threadsafe(_set_exception, j.future, exc)
            return
        by_text = dict(zip(unique, vectors))
        self.stats.batches += 1
        self.stats.embedded += len(unique)
        self.stats.largest_batch = max(self.stats.largest_batch, len(unique))
        for j in jobs:
            j.loop.call_soon_threadsafe(_set_result, j.future, by_text[j.text])


def _set_result(fut: asyncio.Future, value: np.ndarray) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future, exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
