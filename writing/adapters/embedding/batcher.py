"""Dynamic batching of embedding requests: a bounded queue in front of the model's worker threads.

Requests that arrive together share one forward pass (bounded batch size; a short wait for company,
only when there is concurrency, so a lone request is not delayed; renewed while requests keep
arriving; texts sorted by length). With more than one worker (``workers``, EMBEDDING_WORKERS), the
workers take batches from the same queue, so one batch's forward pass overlaps the next batch's
arrival (the encoder shares its CPU threads among the passes running: ``ThreadShares``); measured on
2 cores it was no faster than one worker. The event loop never runs the model: callers await a
future that a worker thread resolves; tokenization happens there too, and the same tokenizer pass
tells whether a prompt was longer than the model's window (``QueryVector.truncated``). A full queue
raises ``EmbeddingQueueFull`` (an ``Overloaded``: 503 + Retry-After) at once; so does a call after
``close()`` (``EmbeddingBatcherClosed``), instead of waiting forever. An LRU keyed by the normalised
prompt lets repeats skip the model entirely; the vectors handed out are read-only, since callers and
the LRU share them. Implements ``writing.core.ports.QueryEncoder``.

Other work on the model (embedding passages for the corpus API) goes through the same queue with
``run_blocking``: it shares the queue's bound (a full queue refuses it with the same 503) and runs on
a worker thread, between batches, so corpus writes never take more than one worker from the prompts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from writing.adapters.embedding.encoder import Embedded
from writing.core.models import QueryVector
from writing.errors import Overloaded
from writing.text import normalise_text

logger = logging.getLogger(__name__)

_WAIT_CAP = 4  # a batch waits for company at most this many max_waits after its first request
_IDLE_POLL = 0.5  # seconds an idle worker waits before it looks whether the batcher was closed


class EmbeddingQueueFull(Overloaded):
    """The embedding queue is at capacity; the caller should retry later."""

    public_message = "the embedding queue is full; retry shortly"
    reason = "embedding_queue_full"


class EmbeddingBatcherClosed(EmbeddingQueueFull):
    """The batcher was closed (shutting down): no worker will answer. A 503 like a full queue."""


class QueryModel(Protocol):
    """What the batcher needs of the embedding model (``Embedder``; wrappers in tests)."""

    @property
    def dim(self) -> int: ...

    def embed_queries_checked(self, texts: list[str]) -> Embedded: ...


@dataclass
class _Job:
    text: str
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class _Task:
    """Other work for the worker thread (``run_blocking``), run between batches."""

    fn: Any  # Callable[[], T]
    future: concurrent.futures.Future


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
        self._d: OrderedDict[str, QueryVector] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> QueryVector | None:
        if self.size <= 0:
            return None
        with self._lock:
            v = self._d.get(key)
            if v is not None:
                self._d.move_to_end(key)
            return v

    def put(self, key: str, value: QueryVector) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)


class EmbeddingBatcher:
    """Async facade over an ``Embedder``: ``await embed_query(text)`` -> ``QueryVector`` (a unit vector)."""

    def __init__(
        self,
        embedder: QueryModel,
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 2.0,
        queue_size: int = 256,
        cache_size: int = 4096,
        workers: int = 1,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.embedder = embedder
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self._queue: queue.Queue[_Job | _Task | None] = queue.Queue(maxsize=queue_size)
        self._cache = _LRU(cache_size)
        self.stats = BatcherStats()
        self._stats_lock = threading.Lock()
        self._stopped = False
        self._closed = False  # set by close(); no job is enqueued after it (guarded by _put_lock)
        self._put_lock = threading.Lock()
        self._threads = [
            threading.Thread(
                target=self._run, name="embedding-batcher" if i == 0 else f"embedding-batcher-{i + 1}", daemon=True
            )
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def dim(self) -> int:
        return self.embedder.dim

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    @property
    def workers(self) -> int:
        return len(self._threads)

    @property
    def running(self) -> bool:
        """Whether a worker thread is alive (False once ``close`` has returned)."""
        return any(t.is_alive() for t in self._threads)

    async def embed_query(self, text: str) -> QueryVector:
        key = normalise_text(text)
        cached = self._cache.get(key)
        if cached is not None:
            self.stats.cache_hits += 1
            return cached
        self.stats.cache_misses += 1
        loop = asyncio.get_running_loop()
        job = _Job(text=key, future=loop.create_future(), loop=loop)
        self._enqueue(job)
        vector = await job.future
        self._cache.put(key, vector)
        return vector

    def run_blocking(self, fn):
        """Run ``fn()`` on the worker thread, behind the prompts already queued, and return its result.

        For a thread other than the event loop's (e.g. the corpus API's store thread): it waits. A full
        queue raises EmbeddingQueueFull at once, as for a prompt."""
        task = _Task(fn=fn, future=concurrent.futures.Future())
        self._enqueue(task)
        return task.future.result()

    def _enqueue(self, item: _Job | _Task) -> None:
        """Into the bounded queue, or EmbeddingQueueFull / EmbeddingBatcherClosed at once (never blocks)."""
        with self._put_lock:
            if self._closed:
                raise EmbeddingBatcherClosed("the embedding batcher is closed")
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                self.stats.rejected += 1
                raise EmbeddingQueueFull("embedding queue is full") from None

    def close(self) -> None:
        """Finish what is queued, then stop the worker threads. Later calls to embed_query raise."""
        with self._put_lock:
            if self._closed:
                return
            self._closed = True
            self._stopped = True
        # wakes the workers blocked on an empty queue; when the queue is full they are busy, and each
        # stops once the queue is empty (_stopped; an idle worker looks every _IDLE_POLL seconds)
        for _ in self._threads:
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)
        deadline = time.monotonic() + 30
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    # -- worker thread -------------------------------------------------------------------------
    def _collect(self, first: _Job, last_batch: int) -> tuple[list[_Job], _Task | None]:
        """A batch of prompts, and the task that ended the collecting early (run after the batch)."""
        jobs = [first]
        # Wait for company only under concurrency: when something else is queued already or this
        # worker's last batch had company. A lone request on a quiet service goes straight to the model
        # instead of paying max_wait; under load, requests pile up during each forward pass anyway.
        # While requests keep arriving (each within max_wait of the one before), the batch keeps
        # growing, up to _WAIT_CAP max_waits in all: a wave of requests resumed by the previous batch
        # trickles in as the event loop parses them, and a batch cut 2 ms after its first arrival
        # would leave the rest of the wave to a second, small forward pass.
        concurrent = last_batch > 1 or not self._queue.empty()
        now = time.perf_counter()
        wait = self.max_wait if concurrent else 0.0
        deadline, cap = now + wait, now + wait * _WAIT_CAP
        while len(jobs) < self.max_batch_size:
            try:
                remaining = min(deadline, cap) - time.perf_counter()
                job = self._queue.get_nowait() if remaining <= 0 else self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if job is None:  # shutdown: finish this batch, then stop
                self._stopped = True
                break
            if isinstance(job, _Task):
                return jobs, job
            jobs.append(job)
            deadline = time.perf_counter() + wait
        return jobs, None

    def _run(self) -> None:
        last_batch = 0  # size of this worker's previous batch
        try:
            while True:
                try:
                    first = self._queue.get(timeout=_IDLE_POLL)
                except queue.Empty:
                    if self._stopped:
                        return
                    continue
                if first is None:
                    return
                if isinstance(first, _Task):
                    _run_task(first)
                    continue
                collected, task = self._collect(first, last_batch)
                last_batch = len(collected)
                jobs = [j for j in collected if not j.future.cancelled()]
                if jobs:
                    try:
                        self._process(jobs)
                    except Exception as exc:
                        logger.exception("embedding worker error")
                        _notify(jobs, _set_exception, exc)
                if task is not None:
                    _run_task(task)
                if self._stopped and self._queue.empty():
                    return
        finally:
            self._fail_leftovers()

    def _fail_leftovers(self) -> None:
        """Jobs still queued when the worker stops would wait forever: fail them."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            closed = EmbeddingBatcherClosed("the embedding batcher is closed")
            if isinstance(job, _Task):
                job.future.set_exception(closed)
            elif job is not None:
                _notify([job], _set_exception, closed)

    def _process(self, jobs: list[_Job]) -> None:
        # identical texts in one batch are embedded once; the batch is sorted by length
        unique = sorted({j.text for j in jobs}, key=len)
        try:
            embedded = self.embedder.embed_queries_checked(unique)
        except Exception as exc:
            if len(unique) > 1:  # one bad text must not fail its batch-mates: embed them one by one
                logger.warning("embedding batch of %d failed (%s); retrying its texts one by one", len(unique), exc)
                by_text: dict[str, list[_Job]] = {}
                for j in jobs:
                    by_text.setdefault(j.text, []).append(j)
                for group in by_text.values():
                    self._process(group)
                return
            logger.exception("embedding of a text failed")
            _notify(jobs, _set_exception, exc)
            return
        by_text = {}
        for text, row, truncated in zip(unique, embedded.vectors, embedded.truncated, strict=True):
            # own copy per text: a cached row must not keep its whole batch alive; read-only because
            # the same array goes to every caller with this text and into the LRU
            vec = np.array(row, dtype=np.float32)
            vec.flags.writeable = False
            by_text[text] = QueryVector(vec, truncated)
        with self._stats_lock:
            self.stats.batches += 1
            self.stats.embedded += len(unique)
            self.stats.largest_batch = max(self.stats.largest_batch, len(unique))
        for j in jobs:
            _notify([j], _set_result, by_text[j.text])


def _run_task(task: _Task) -> None:
    if not task.future.set_running_or_notify_cancel():
        return
    try:
        task.future.set_result(task.fn())
    except Exception as exc:  # noqa: BLE001 - whatever it is, the caller's thread re-raises it
        task.future.set_exception(exc)


def _notify(jobs: list[_Job], setter, value) -> None:
    """Resolve futures from the worker thread; a caller whose loop is gone is skipped."""
    for j in jobs:
        with contextlib.suppress(RuntimeError):  # the caller's event loop is closed: nobody is waiting
            j.loop.call_soon_threadsafe(setter, j.future, value)


def _set_result(fut: asyncio.Future, value: QueryVector) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future, exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
