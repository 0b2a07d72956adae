"""Dynamic batching of embedding requests, served fairly: a bounded queue in front of the model's threads.

Requests that arrive together share one forward pass (bounded batch size and tokens; a short wait for
company, only when there is concurrency, so a lone request is not delayed; renewed while requests keep
arriving; texts sorted by length). The event loop never runs the model: callers await a future that a
worker thread resolves; tokenization happens there too, and the same tokenizer pass tells whether a
prompt was longer than the model's window (``QueryVector.truncated``). A full queue raises
``EmbeddingQueueFull`` (an ``Overloaded``: 503 + Retry-After) at once; so does a call after ``close()``
(``EmbeddingBatcherClosed``), instead of waiting forever. An LRU keyed by the normalised prompt lets
repeats skip the model entirely; the vectors handed out are read-only, since callers and the LRU share
them. Implements ``writing.core.ports.QueryEncoder``.

**Fair model time.** Each prompt names its *flow* (the caller's key; the client address in open mode)
and costs its estimated tokens; the queue is a ``FairQueue`` (``fair_queue.py``): a key with a backlog
has its next prompts queued behind everybody else's next one, so its load raises its own latency, not
others'. With more than one worker (EMBEDDING_WORKERS), one flow holds at most ``workers - 1`` of them
at a time: a worker stays free for the others, so a quiet key never waits for a noisy key's forward pass.
A batch holds prompts of similar cost within EMBEDDING_BATCH_TOKENS, so a short prompt never rides in
a long one's pass.

**Admin work at low priority.** Other work on the model (passages for the corpus API, calibration
prompts) goes through the same queue with ``run_blocking``, as one flow (``ADMIN_FLOW``) with a low
weight (EMBEDDING_ADMIN_WEIGHT), each task a batch alone: callers cut it into small tasks
(``CorpusWriter`` does, by tokens) that run between the prompts' batches; it shares the queue's bound.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from writing.adapters.embedding.encoder import Embedded
from writing.adapters.embedding.fair_queue import FairQueue, QueueFull
from writing.adapters.embedding.os_thread import name_os_thread
from writing.core.models import QueryVector
from writing.errors import Overloaded
from writing.text import estimate_tokens, normalise_text

logger = logging.getLogger(__name__)

_WAIT_CAP = 4  # a batch waits for company at most this many max_waits after its first request
_IDLE_POLL = 0.5  # seconds an idle worker waits before it looks whether the batcher was closed
ADMIN_FLOW = "admin"  # the flow of run_blocking's work (imports, re-embeds, calibration)


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
    """Other work for a worker thread (``run_blocking``), a batch alone."""

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
    tasks: int = 0  # run_blocking's tasks run


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
    """Async facade over an ``Embedder``: ``await embed_query(text, flow)`` -> ``QueryVector`` (a unit vector)."""

    def __init__(
        self,
        embedder: QueryModel,
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 2.0,
        queue_size: int = 256,
        cache_size: int = 4096,
        workers: int = 1,
        batch_tokens: int = 1024,
        window: int = 512,
        admin_weight: float = 0.25,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.embedder = embedder
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.batch_tokens = batch_tokens
        self.window = window
        self.admin_weight = admin_weight
        self._cache = _LRU(cache_size)
        self.stats = BatcherStats()
        self._stats_lock = threading.Lock()
        # the queue, and who is being served: one condition guards both (puts, takes, completions)
        self._cond = threading.Condition()
        self._queue: FairQueue[_Job | _Task] = FairQueue(queue_size)
        self._serving: dict[str, int] = {}  # flow -> workers running its work now
        self._flow_cap = max(1, workers - 1)  # workers one flow may hold at once: one stays for the others
        self._last_arrival = 0.0  # when the latest put came: a batch waiting for company waits max_wait past it
        self._idle = 0  # workers waiting for work (only they are woken by a put, or a full batch's waiter)
        self._closed = False  # set by close(); nothing is queued after it
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
        return len(self._queue)

    @property
    def workers(self) -> int:
        return len(self._threads)

    @property
    def running(self) -> bool:
        """Whether a worker thread is alive (False once ``close`` has returned)."""
        return any(t.is_alive() for t in self._threads)

    async def embed_query(self, text: str, flow: str = "") -> QueryVector:
        """The prompt's vector; ``flow`` is who pays for the model time (the caller's key)."""
        key = normalise_text(text)
        cached = self._cache.get(key)
        if cached is not None:
            self.stats.cache_hits += 1
            return cached
        self.stats.cache_misses += 1
        loop = asyncio.get_running_loop()
        job = _Job(text=key, future=loop.create_future(), loop=loop)
        self._enqueue(job, f"q:{flow}", estimate_tokens(key, self.window), 1.0)
        vector = await job.future
        self._cache.put(key, vector)
        return vector

    def run_blocking(self, fn, cost: int = 1):
        """Run ``fn()`` on a worker thread as admin work (low priority, ``cost`` tokens) and return its
        result. For a thread other than the event loop's (e.g. the corpus API's store thread): it waits.
        A full queue raises EmbeddingQueueFull at once, as for a prompt."""
        task = _Task(fn=fn, future=concurrent.futures.Future())
        self._enqueue(task, ADMIN_FLOW, cost, self.admin_weight)
        return task.future.result()

    def _enqueue(self, item: _Job | _Task, flow: str, cost: int, weight: float) -> None:
        """Into the bounded queue, or EmbeddingQueueFull / EmbeddingBatcherClosed at once (never blocks)."""
        with self._cond:
            if self._closed:
                raise EmbeddingBatcherClosed("the embedding batcher is closed")
            try:
                self._queue.put(item, flow, cost, weight)
            except QueueFull:
                self.stats.rejected += 1
                raise EmbeddingQueueFull("embedding queue is full") from None
            self._last_arrival = time.perf_counter()
            # wake a worker only when one waits for work, or when a worker waiting for company now has a
            # full batch: a worker waiting for company reads the arrivals when its wait ends (a wake-up per
            # request cost the loop a futex call each, and the worker a turn for nothing)
            if self._idle or len(self._queue) >= self.max_batch_size:
                self._cond.notify_all()  # all: notify() might wake the worker waiting for company, not the idle one

    def close(self) -> None:
        """Finish what is queued, then stop the worker threads. Later calls to embed_query raise."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        deadline = time.monotonic() + 30
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._fail_leftovers()

    # -- worker threads ------------------------------------------------------------------------
    def _next_batch(self, last_batch: int) -> list[tuple[str, _Job | _Task]] | None:
        """The next batch this worker may run (waits for one); None once closed with nothing left."""
        with self._cond:
            while True:
                if not self._wait_for_work():
                    return None
                self._wait_for_company(last_batch)
                busy = {f for f, n in self._serving.items() if n >= self._flow_cap}
                batch = self._queue.take(self.max_batch_size, self.batch_tokens, busy, {ADMIN_FLOW})
                if batch:  # else another worker took it meanwhile: wait again
                    for flow, _ in batch:
                        self._serving[flow] = self._serving.get(flow, 0) + 1
                    return batch

    def _wait_for_work(self) -> bool:
        """Until something this worker may take is queued (True), or the batcher is closed and empty."""
        while True:
            busy = {f for f, n in self._serving.items() if n >= self._flow_cap}
            if self._queue.ready(busy):
                return True
            if self._closed and not len(self._queue):
                return False
            self._idle += 1
            try:
                self._cond.wait(_IDLE_POLL)
            finally:
                self._idle -= 1

    def _wait_for_company(self, last_batch: int) -> None:
        """Wait for company only under concurrency: when more than one item is queued or this worker's last
        batch had company. A lone request on a quiet service goes straight to the model; under load,
        requests pile up during each forward pass anyway. While requests keep arriving (each within
        max_wait of the one before), the wait is renewed, up to _WAIT_CAP max_waits in all: a wave resumed
        by the previous batch trickles in as the event loop parses it."""
        if self.max_wait <= 0 or (last_batch <= 1 and len(self._queue) <= 1):
            return
        now = time.perf_counter()
        cap, deadline = now + self.max_wait * _WAIT_CAP, now + self.max_wait
        while len(self._queue) < self.max_batch_size and not self._closed:
            deadline = max(deadline, self._last_arrival + self.max_wait)  # renewed by each arrival
            remaining = min(deadline, cap) - time.perf_counter()
            if remaining <= 0:
                return
            self._cond.wait(remaining)

    def _done(self, batch: list[tuple[str, _Job | _Task]]) -> None:
        with self._cond:
            for flow, _ in batch:
                left = self._serving[flow] - 1
                if left:
                    self._serving[flow] = left
                else:
                    del self._serving[flow]
            self._cond.notify_all()  # a worker may wait for one of these flows to be free

    def _run(self) -> None:
        worker = threading.current_thread().name.removeprefix("embedding-batcher")
        name_os_thread(f"embed-batcher{worker}")  # before its first pass: the OpenMP team it starts inherits it
        last_batch = 0  # size of this worker's previous batch
        while True:
            batch = self._next_batch(last_batch)
            if batch is None:
                return
            try:
                items = [item for _, item in batch]
                if isinstance(items[0], _Task):
                    self.stats.tasks += 1
                    _run_task(items[0])
                    continue
                last_batch = len(items)
                jobs = [j for j in items if isinstance(j, _Job) and not j.future.cancelled()]
                if jobs:
                    try:
                        self._process(jobs)
                    except Exception as exc:
                        logger.exception("embedding worker error")
                        _notify(jobs, _set_exception, exc)
            finally:
                self._done(batch)

    def _fail_leftovers(self) -> None:
        """Jobs still queued when the workers stopped would wait forever: fail them."""
        with self._cond:
            leftovers = self._queue.drain()
        closed = EmbeddingBatcherClosed("the embedding batcher is closed")
        for job in leftovers:
            if isinstance(job, _Task):
                job.future.set_exception(closed)
            else:
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
        _resolve(jobs, by_text)


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


def _resolve(jobs: list[_Job], by_text: dict[str, QueryVector]) -> None:
    """A batch's results handed to each caller's loop in one call (one wake-up of the loop, one callback
    setting every future), not one per request."""
    per_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, QueryVector]]] = {}
    for j in jobs:
        per_loop.setdefault(j.loop, []).append((j.future, by_text[j.text]))
    for loop, results in per_loop.items():
        with contextlib.suppress(RuntimeError):  # the caller's event loop is closed: nobody is waiting
            loop.call_soon_threadsafe(_set_results, results)


def _set_results(results: list[tuple[asyncio.Future, QueryVector]]) -> None:
    for fut, value in results:
        if not fut.done():
            fut.set_result(value)


def _set_exception(fut: asyncio.Future, exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
