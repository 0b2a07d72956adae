"""The retrieval-first decision, in one place.

    embed the prompt -> top-1 in the curated corpus (>= SIMILARITY_THRESHOLD: HIT, curated)
                     -> top-1 in the answer cache, same tenant, not expired
                        (>= ANSWER_CACHE_THRESHOLD: HIT, generated)
                     -> the LLM (MISS); a normal finish may be written back to the answer cache

Retrieval is skipped (BYPASS) for ``Cache-Control: no-cache``, for conversations with earlier turns,
for prompts longer than the embedding model's window, and in shadow mode (where the decision is still
computed and recorded, but never served). Identical misses in flight at the same time share one LLM
call. The embedding model (and its tokenizer, which also tells whether a prompt fits the window) runs
in the batcher's thread and index calls in worker threads, so the event loop is never blocked.

The service depends on the protocols of ``writing.core.ports`` only; ``writing.wiring`` plugs in the
real adapters, the unit tests in-memory fakes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from typing import TypeVar

from writing.core.models import (
    BYPASS,
    CURATED,
    GENERATED,
    HIT,
    MISS,
    SOURCE_LLM,
    SOURCE_MILVUS,
    Answer,
    AnswerRequest,
    Completion,
    Decision,
    Delta,
    SamplingParams,
)
from writing.core.ports import LLM, AnswerIndex, CorpusIndex, QueryEncoder
from writing.errors import InvalidRequest, LLMError, VectorStoreError
from writing.observability.metrics import Metrics
from writing.text import normalise_text

logger = logging.getLogger(__name__)

T = TypeVar("T")


class WritingService:
    def __init__(
        self,
        *,
        encoder: QueryEncoder,
        store: CorpusIndex,
        llm: LLM,
        threshold: float,
        max_prompt_chars: int,
        threshold_range: tuple[float, float] = (0.0, 1.0),
        answer_cache: AnswerIndex | None = None,
        shadow_mode: bool = False,
        retrieve_long_prompts: bool = False,
        fail_without_store: bool = False,
        metrics: Metrics | None = None,
        store_retry_interval: float = 5.0,
    ) -> None:
        self.encoder = encoder
        self.store = store
        self.llm = llm
        self.threshold = threshold
        self.threshold_range = threshold_range
        self.max_prompt_chars = max_prompt_chars
        self.answer_cache = answer_cache
        self.shadow_mode = shadow_mode
        self.retrieve_long_prompts = retrieve_long_prompts
        self.fail_without_store = fail_without_store
        self.metrics = metrics or Metrics()
        self.store_retry_interval = store_retry_interval
        self._store_ready = False
        self._store_next_try = 0.0
        self._store_lock = asyncio.Lock()
        self._flights: dict[str, asyncio.Task] = {}
        self._background: set[asyncio.Task] = set()

    # -- lifecycle ---------------------------------------------------------------------------
    def _open_store_sync(self) -> None:
        dim = self.encoder.dim
        self.store.open(dim)
        if self.answer_cache is not None:
            try:
                self.answer_cache.open(dim)
                self.answer_cache.purge_expired()
            except Exception as exc:
                raise VectorStoreError(f"cannot open the answer cache: {exc}") from exc

    async def open_store(self) -> None:
        """Connect the vector store; a DimensionMismatch propagates (it is a configuration error)."""
        await asyncio.to_thread(self._open_store_sync)
        self._store_ready = True

    async def ensure_store(self) -> bool:
        """(Re)connect when the store was unreachable, at most once per retry interval."""
        if self._store_ready:
            return True
        if self._store_lock.locked():  # a reconnection is under way: don't queue behind it
            return False
        async with self._store_lock:
            if self._store_ready:
                return True
            now = time.monotonic()
            if now < self._store_next_try:
                return False
            self._store_next_try = now + self.store_retry_interval
            try:
                await self.open_store()
            except VectorStoreError as exc:
                logger.warning("vector store still unavailable: %s", exc)
                return False
            logger.info("vector store connected: %s", self.store.kind)
            return True

    async def run_store_op(self, op: Callable[[], T]) -> T:
        """Run a blocking operation on the store (e.g. ``lambda: store.stats()``) for the corpus API: in a
        thread, reconnecting first when needed; a failure marks the store for reconnection and raises
        VectorStoreError (503)."""
        if not await self.ensure_store():
            raise VectorStoreError("the vector store is unavailable")
        try:
            return await asyncio.to_thread(op)
        except VectorStoreError as exc:
            self._mark_store_down()
            logger.warning("vector store operation failed: %s", exc)
            raise

    def _mark_store_down(self) -> None:
        self.metrics.vector_store_errors.inc()
        self._store_ready = False  # reconnect (with a fresh connection) on a later request
        self._store_next_try = time.monotonic() + self.store_retry_interval
        self.store.reset()

    def _store_failed(self, exc: Exception) -> None:
        self._mark_store_down()
        if self.fail_without_store:
            raise exc
        logger.warning("vector store failed, answering from the LLM: %s", exc)

    async def close(self) -> None:
        for task in list(self._background) + list(self._flights.values()):
            task.cancel()

    # -- input ---------------------------------------------------------------------------------
    def check_prompt(self, prompt: str | None) -> str:
        if prompt is None or not isinstance(prompt, str) or not prompt.strip():
            raise InvalidRequest("prompt must be a non-empty, non-blank string")
        if len(prompt) > self.max_prompt_chars:
            raise InvalidRequest(f"prompt is {len(prompt)} characters long; the limit is {self.max_prompt_chars}")
        return prompt

    def check_threshold(self, threshold: float | None) -> float | None:
        if threshold is None:
            return None
        low, high = self.threshold_range
        if not low <= threshold <= high:
            raise InvalidRequest(f"similarity threshold {threshold} is outside the allowed range [{low}, {high}]")
        return threshold

    # -- the decision ---------------------------------------------------------------------------
    async def decide(self, req: AnswerRequest) -> Decision:
        """Retrieval only: what would answer this request, without calling the LLM."""
        self.check_prompt(req.prompt)
        threshold = self.threshold if req.threshold is None else self.check_threshold(req.threshold)
        decision = Decision()
        reason = req.bypass_reason or (None if req.lookup else "no_cache")
        if reason is not None:
            return self._finish(decision, BYPASS, reason)

        t0 = time.perf_counter()
        query = await self.encoder.embed_query(req.prompt)
        t1 = time.perf_counter()
        decision.timings.embed_ms = (t1 - t0) * 1000
        if query.truncated and not self.retrieve_long_prompts:
            # the vector describes only the prompt's beginning: a hit on it would be a guess
            return self._finish(decision, BYPASS, "prompt_longer_than_embedding_window")
        decision.vector = query.vector
        if not await self.ensure_store():
            if self.fail_without_store:
                raise VectorStoreError("the vector store is unavailable")
            decision.store_error = True
            return self._finish(decision, MISS)
        try:
            matches = await asyncio.to_thread(self.store.search, decision.vector, 1)
        except VectorStoreError as exc:
            self._store_failed(exc)
            decision.store_error = True
            return self._finish(decision, MISS)
        finally:
            decision.timings.search_ms = (time.perf_counter() - t1) * 1000
        if matches:
            top = matches[0]
            decision.similarity = top.similarity
            self.metrics.similarity.observe(top.similarity)
            if top.similarity >= threshold:
                decision.match, decision.match_source = top, CURATED
                if self.shadow_mode:
                    return self._shadow(decision, "would_hit")
                return self._finish(decision, HIT)
        if self.shadow_mode:
            return self._shadow(decision, "would_miss")
        if self.answer_cache is not None:
            t2 = time.perf_counter()
            try:
                cached = await asyncio.to_thread(self.answer_cache.lookup, decision.vector, req.tenant)
            except VectorStoreError as exc:
                self._store_failed(exc)
                cached = None
            decision.timings.answer_cache_ms = (time.perf_counter() - t2) * 1000
            if cached is not None and cached.similarity >= self.answer_cache.threshold:
                decision.match, decision.match_source = cached, GENERATED
                return self._finish(decision, HIT)
        return self._finish(decision, MISS)

    def _shadow(self, decision: Decision, would: str) -> Decision:
        decision.shadow = would
        self.metrics.shadow.labels(would).inc()
        logger.info(
            "shadow decision=%s match_id=%s similarity=%s",
            would,
            decision.match.id if decision.match else "none",
            "none" if decision.similarity is None else f"{decision.similarity:.4f}",
        )
        decision.match = decision.match_source = None
        return self._finish(decision, BYPASS, "shadow_mode")

    def _finish(self, decision: Decision, status: str, reason: str | None = None) -> Decision:
        decision.status, decision.bypass_reason = status, reason
        if status == HIT:
            outcome = "hit_curated" if decision.match_source == CURATED else "hit_answers"
        elif status == BYPASS:
            outcome = "bypass"
            self.metrics.bypass_reasons.labels(reason or "unknown").inc()
        else:
            outcome = "miss"
        self.metrics.outcomes.labels(outcome).inc()
        self.metrics.observe_stage("embed", decision.timings.embed_ms)
        self.metrics.observe_stage("search", decision.timings.search_ms)
        self.metrics.observe_stage("answer_cache", decision.timings.answer_cache_ms)
        return decision

    def _log(self, decision: Decision, answer_source: str) -> None:
        t = decision.timings
        logger.info(
            "decision=%s source=%s match_source=%s match_id=%s similarity=%s bypass=%s store_error=%s timing=%r",
            decision.status,
            answer_source,
            decision.match_source or "-",
            decision.match.id if decision.match else "-",
            "-" if decision.similarity is None else f"{decision.similarity:.4f}",
            decision.bypass_reason or "-",
            decision.store_error,
            t.header(),
        )

    # -- answers ----------------------------------------------------------------------------------
    async def answer(self, req: AnswerRequest) -> Answer:
        """A whole answer: a stored text, or one LLM call shared by identical requests in flight."""
        decision = await self.decide(req)
        if decision.hit:
            self._log(decision, SOURCE_MILVUS)
            return Answer(content=decision.match.content, source=SOURCE_MILVUS, decision=decision)
        t0 = time.perf_counter()
        completion = await self._complete_shared(req, decision)
        decision.timings.llm_ms = (time.perf_counter() - t0) * 1000
        self.metrics.observe_stage("llm", decision.timings.llm_ms)
        self._log(decision, SOURCE_LLM)
        logger.debug("prompt=%r answer=%r", req.prompt, completion.text)
        return Answer(
            content=completion.text,
            source=SOURCE_LLM,
            decision=decision,
            model=completion.model,
            finish_reason=completion.finish_reason,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
        )

    def _flight_key(self, req: AnswerRequest) -> str:
        messages = [dict(m, content=normalise_text(str(m.get("content", "")))) for m in req.llm_messages()]
        params = asdict(req.params) if req.params else None
        blob = json.dumps([req.tenant, messages, params, req.store], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    async def _complete_shared(self, req: AnswerRequest, decision: Decision) -> Completion:
        key = self._flight_key(req)
        task = self._flights.get(key)
        if task is not None:
            self.metrics.llm_calls_shared.inc()
        else:
            # the call runs as its own task: a caller that goes away does not cancel it for the others
            task = asyncio.create_task(self._complete_and_store(req, decision))
            self._flights[key] = task
            task.add_done_callback(lambda t, k=key: self._flight_done(k, t))
        return await asyncio.shield(task)

    def _flight_done(self, key: str, task: asyncio.Task) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning when every waiter left

    async def _complete_and_store(self, req: AnswerRequest, decision: Decision) -> Completion:
        try:
            completion = await self.llm.complete(req.llm_messages(), req.params)
        except LLMError as exc:
            self.metrics.llm_errors.labels(exc.code).inc()
            raise
        await self._write_back(req, decision, completion.text, completion.finish_reason, completion.model)
        return completion

    def _may_store(self, req: AnswerRequest, decision: Decision) -> bool:
        return (
            self.answer_cache is not None
            and req.store
            and decision.bypass_reason in (None, "no_cache")
            and not decision.store_error
        )

    async def _write_back(
        self, req: AnswerRequest, decision: Decision, text: str, finish_reason: str | None, model: str
    ) -> None:
        """Store a generated answer that finished normally, keyed by the prompt's embedding."""
        if not self._may_store(req, decision) or finish_reason != "stop" or not text.strip():
            return
        try:
            vector = decision.vector
            if vector is None:  # no-cache skipped the lookup, but the answer may still be stored
                query = await self.encoder.embed_query(req.prompt)
                if query.truncated and not self.retrieve_long_prompts:
                    return  # a long prompt is never looked up, so its answer is not worth storing
                vector = query.vector
            await asyncio.to_thread(
                self.answer_cache.put, vector, prompt=req.prompt, content=text, model=model or "", tenant=req.tenant
            )
            self.metrics.answer_cache_writes.inc()
        except Exception as exc:  # noqa: BLE001 - a failed write-back must not fail the answer
            logger.warning("answer-cache write failed: %s", exc)

    async def answer_stream(self, req: AnswerRequest) -> tuple[Decision, AsyncIterator[Delta] | None]:
        """Decide; on a hit return (decision, None) for the caller to replay the stored text,
        else (decision, LLM deltas). A stream that finishes normally is written back."""
        decision = await self.decide(req)
        if decision.hit:
            self._log(decision, SOURCE_MILVUS)
            return decision, None
        return decision, self._stream_and_store(req, decision)

    async def _stream_and_store(self, req: AnswerRequest, decision: Decision) -> AsyncIterator[Delta]:
        parts: list[str] = []
        finish: str | None = None
        t0 = time.perf_counter()
        stream = self.llm.stream(req.llm_messages(), req.params)
        try:
            async for delta in stream:
                parts.append(delta.text)
                finish = delta.finish_reason or finish
                yield delta
        except LLMError as exc:
            self.metrics.llm_errors.labels(exc.code).inc()
            raise
        finally:
            await stream.aclose()
        decision.timings.llm_ms = (time.perf_counter() - t0) * 1000
        self.metrics.observe_stage("llm", decision.timings.llm_ms)
        self._log(decision, SOURCE_LLM)
        # stored in the background: the client has its [DONE] without waiting for Milvus
        task = asyncio.create_task(self._write_back(req, decision, "".join(parts), finish, self.llm.model))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- the reference /chat: straight to the LLM -------------------------------------------------
    def chat_stream(self, prompt: str, params: SamplingParams | None = None) -> AsyncIterator[Delta]:
        self.check_prompt(prompt)
        return self.llm.stream([{"role": "user", "content": prompt}], params)
