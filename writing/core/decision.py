"""The retrieval-first decision, in one place.

    embed the prompt -> top-k in the curated corpus, for a plain request (>= SIMILARITY_THRESHOLD: HIT, curated)
                     -> top-k in the answer cache under the request's key (same tenant, model and
                        context, fitting its max_tokens and stops, not expired; ``writing.core.context``)
                        (>= ANSWER_CACHE_THRESHOLD: HIT, generated)
                     -> the LLM (MISS); a normal finish may be written back to the answer cache

A candidate that a caller reported wrong for this prompt (``writing.core.feedback``), or that the
second check (``writing.core.guard``, ``HIT_GUARD``) finds asks for something else, is passed over for
the next one above the threshold; when none is left the tier misses. In shadow mode the check only
records what it would have rejected.

Retrieval is skipped (BYPASS) for ``Cache-Control: no-cache``, for conversations with earlier turns,
for prompts longer than the embedding model's window, and in shadow mode (where the decision is still
computed and recorded, but never served). Identical misses in flight at the same time share one LLM
call. The embedding model (and its tokenizer, which also tells whether a prompt fits the window) runs
in the batcher's thread and index calls in worker threads, so the event loop is never blocked. The
searches of prompts embedded in one batch are made together: one call per tier (per answer key in the
answer tier), with each request's candidate checks in the same thread (``writing.core.search``).

The service depends on the protocols of ``writing.core.ports`` only; ``writing.wiring`` plugs in the
real adapters, the unit tests in-memory fakes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from writing.core.context import CacheContext, cache_context, flight_key
from writing.core.feedback import Blocklist
from writing.core.guard import HitGuard
from writing.core.links import Link
from writing.core.models import (
    BYPASS,
    CURATED,
    GENERATED,
    HIT,
    MISS,
    SOURCE_LLM,
    SOURCE_MILVUS,
    Answer,
    AnswerKey,
    AnswerRequest,
    CandidateVerdict,
    Completion,
    Decision,
    Delta,
    Match,
    SamplingParams,
    StoredAnswer,
)
from writing.core.ports import LLM, AnswerIndex, CorpusIndex, QueryEncoder
from writing.core.search import BatchedSearch
from writing.errors import InvalidRequest, LLMError, VectorStoreError
from writing.observability.metrics import Metrics
from writing.text import first_unencodable

logger = logging.getLogger(__name__)

T = TypeVar("T")
CURATED_CANDIDATES = 3  # above the threshold, a blocked top-1 gives way to the next
ANSWER_CANDIDATES = 4  # also room for the stop-sequence rule, which the store cannot filter on


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
        allowed_system_prompts: frozenset[str] = frozenset(),
        blocklist: Blocklist | None = None,
        maintenance_interval: float = 60.0,
        guard: HitGuard | None = None,
        guard_mode: str = "off",
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
        self.allowed_system_prompts = allowed_system_prompts
        self.blocklist = blocklist if blocklist is not None else Blocklist()  # an empty one is falsy
        self.maintenance_interval = maintenance_interval
        self.guard = guard if guard_mode != "off" else None
        self.guard_mode = guard_mode
        self._corpus = Link(
            "vector store", lambda: store.open(encoder.dim), retry_interval=store_retry_interval, reset=store.reset
        )
        self._answers = (
            Link("answer cache", lambda: answer_cache.open(encoder.dim), retry_interval=store_retry_interval)
            if answer_cache is not None
            else None
        )
        self._flights: dict[str, asyncio.Task] = {}
        self._background: set[asyncio.Task] = set()
        # one store call for the prompts of one embedding batch, per tier (and per answer key)
        self.curated_search: BatchedSearch[list[Match]] = BatchedSearch(
            lambda _key, vectors: store.search_many(vectors, CURATED_CANDIDATES)
        )
        self.answer_search = (
            BatchedSearch(lambda key, vectors: answer_cache.lookup_many(vectors, key, ANSWER_CANDIDATES))
            if answer_cache is not None
            else None
        )

    # -- lifecycle ---------------------------------------------------------------------------
    async def open_store(self) -> None:
        """Connect the vector store (and the answer cache); a DimensionMismatch propagates (it is a
        configuration error). An answer cache that cannot be opened is retried later on its own."""
        await self._corpus.open()
        if self._answers is not None:
            try:
                await self._answers.open()
            except VectorStoreError as exc:
                self._answers.failed()
                logger.warning("answer cache unavailable at start-up, retried later: %s", exc)

    async def ensure_store(self) -> bool:
        """(Re)connect the vector store when it was unreachable, at most once per retry interval."""
        return await self._corpus.ensure()

    async def run_store_op(self, op: Callable[[], T]) -> T:
        """Run a blocking operation on the store (e.g. ``lambda: store.stats()``) for the admin API: in a
        thread, reconnecting first when needed; a failure marks the store for reconnection and raises
        VectorStoreError (503)."""
        if not await self._corpus.ensure():
            raise VectorStoreError("the vector store is unavailable")
        try:
            return await asyncio.to_thread(op)
        except VectorStoreError as exc:
            self._corpus_failed(exc)
            raise

    async def run_answers_op(self, op: Callable[[], T]) -> T:
        """``run_store_op`` for the answer cache (503 when it is off or down)."""
        if self._answers is None:
            raise VectorStoreError("the answer cache is off (ANSWER_CACHE=false)")
        if not await self._answers.ensure():
            raise VectorStoreError("the answer cache is unavailable")
        try:
            return await asyncio.to_thread(op)
        except VectorStoreError as exc:
            self._answers_failed(exc)
            raise

    def _corpus_failed(self, exc: Exception) -> None:
        self.metrics.vector_store_errors.inc()
        self._corpus.failed()
        logger.warning("vector store call failed: %s", exc)

    def _answers_failed(self, exc: Exception) -> None:
        self.metrics.vector_store_errors.inc()
        if self._answers is not None:
            self._answers.failed()
        logger.warning("answer cache call failed (curated retrieval is unaffected): %s", exc)

    def start_background(self) -> None:
        """Upkeep of the answer cache (hit counts, expiry, size cap), every ``maintenance_interval``."""
        if self.answer_cache is not None and self.maintenance_interval > 0:
            self.spawn_periodic(self.maintenance_interval, self.maintain_answers, "answer cache upkeep")

    def spawn_periodic(self, interval: float, job: Callable[[], Awaitable[object]], name: str) -> None:
        """Run ``job`` every ``interval`` seconds until ``close``; a failing run is logged, not fatal."""

        async def forever() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await job()
                except VectorStoreError as exc:
                    logger.warning("%s: the store is unavailable: %s", name, exc)
                except Exception:
                    logger.exception("%s failed", name)

        self._spawn(forever())

    async def maintain_answers(self) -> dict[str, int]:
        if self.answer_cache is None or not await self._answers.ensure():
            return {}
        try:
            done = await asyncio.to_thread(self.answer_cache.maintain)
        except VectorStoreError as exc:
            self._answers_failed(exc)
            return {}
        for action, n in done.items():
            if n:
                self.metrics.answer_cache_upkeep.labels(action).inc(n)
        if any(done.values()):
            logger.info("cache upkeep: %s", done)  # counts only
        return done

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def close(self) -> None:
        for task in list(self._background) + list(self._flights.values()):
            task.cancel()

    # -- input ---------------------------------------------------------------------------------
    def check_prompt(self, prompt: str | None) -> str:
        if prompt is None or not isinstance(prompt, str) or not prompt.strip():
            raise InvalidRequest("prompt must be a non-empty, non-blank string")
        if len(prompt) > self.max_prompt_chars:
            raise InvalidRequest(f"prompt is {len(prompt)} characters long; the limit is {self.max_prompt_chars}")
        if first_unencodable(prompt) is not None:
            raise InvalidRequest("prompt holds a lone UTF-16 surrogate (e.g. \\ud800); send valid UTF-8 text")
        return prompt

    def check_threshold(self, threshold: float | None) -> float | None:
        if threshold is None:
            return None
        low, high = self.threshold_range
        if not low <= threshold <= high:
            raise InvalidRequest(f"similarity threshold {threshold} is outside the allowed range [{low}, {high}]")
        return threshold

    def context_of(self, req: AnswerRequest) -> CacheContext:
        return cache_context(req.llm_messages(), req.params or self.llm.defaults, self.allowed_system_prompts)

    def answer_key(self, req: AnswerRequest, context: CacheContext) -> AnswerKey:
        return AnswerKey(req.tenant, self.llm.model, context.fingerprint, context.max_tokens)

    # -- the decision ---------------------------------------------------------------------------
    async def decide(self, req: AnswerRequest) -> Decision:
        """Retrieval only: what would answer this request, without calling the LLM."""
        self.check_prompt(req.prompt)
        threshold = self.threshold if req.threshold is None else self.check_threshold(req.threshold)
        context = self.context_of(req)
        decision = Decision(context=context, curated_skip=context.curated_skip)
        reason = req.bypass_reason or (None if req.lookup else "no_cache")
        if reason is not None:
            return self._finish(decision, BYPASS, reason)

        t0 = time.perf_counter()
        query = await self.encoder.embed_query(req.prompt)
        decision.timings.embed_ms = (time.perf_counter() - t0) * 1000
        if query.truncated and not self.retrieve_long_prompts:
            # the vector describes only the prompt's beginning: a hit on it would be a guess
            return self._finish(decision, BYPASS, "prompt_longer_than_embedding_window")
        decision.vector = query.vector

        if context.curated_skip is None:
            match = await self._curated(decision, req, threshold)
            if match is not None:
                decision.match, decision.match_source = match, CURATED
                if self.shadow_mode:
                    return self._shadow(decision, "would_hit")
                return self._finish(decision, HIT)
        if self.shadow_mode:
            return self._shadow(decision, "would_miss")
        match = await self._generated(decision, req, context)
        if match is not None:
            decision.match, decision.match_source = match, GENERATED
            return self._finish(decision, HIT)
        return self._finish(decision, MISS)

    async def _curated(self, decision: Decision, req: AnswerRequest, threshold: float) -> Match | None:
        t0 = time.perf_counter()
        try:
            if not await self._corpus.ensure():
                if self.fail_without_store:
                    raise VectorStoreError("the vector store is unavailable")
                decision.store_error = True
                return None
            try:
                # one thread hop, shared with the batch: the search, then this request's checks of the
                # candidates above the threshold
                matches, chosen = await self.curated_search.search(
                    None, decision.vector, lambda found: self._choose_curated(decision, req, threshold, found)
                )
            except VectorStoreError as exc:
                self._corpus_failed(exc)
                if self.fail_without_store:
                    raise
                decision.store_error = True
                return None
        finally:
            decision.timings.search_ms = (time.perf_counter() - t0) * 1000
        if matches:
            self.metrics.similarity.observe(matches[0].similarity)
        return chosen

    def _choose_curated(
        self, decision: Decision, req: AnswerRequest, threshold: float, matches: list[Match]
    ) -> tuple[list[Match], Match | None]:
        if matches:
            decision.similarity = matches[0].similarity
        for m in matches:
            verdict = self.judge(CURATED, req, decision.vector, threshold, m)
            if not verdict.above:
                break
            if self._record(decision, CURATED, verdict):
                return matches, m
        return matches, None

    def judge(
        self,
        tier: str,
        req: AnswerRequest,
        vector,
        threshold: float,
        candidate: Match | StoredAnswer,
        context: CacheContext | None = None,
    ) -> CandidateVerdict:
        """Whether one candidate may answer: above the threshold, (answer tier) fits the request's context,
        not reported wrong for this prompt, and passes the second check. No side effects: the decision
        records what it uses (``_record``), ``writing.core.explain`` shows every candidate's verdict."""
        if candidate.similarity < threshold:
            return CandidateVerdict(above=False)
        if context is not None and not context.serves(candidate.stops, candidate.content):
            return CandidateVerdict(above=True, serves=False)
        if self.blocklist.blocks(tier, candidate.id, vector, req.tenant):
            return CandidateVerdict(above=True, blocked=True)
        if self.guard is None:
            return CandidateVerdict(above=True)
        text = candidate.content if tier == CURATED else candidate.prompt
        return CandidateVerdict(above=True, guard=self.guard.check(req.prompt, text, tier), guard_mode=self.guard_mode)

    def _record(self, decision: Decision, tier: str, verdict: CandidateVerdict) -> bool:
        """Count one judged candidate in the metrics and on the decision; whether it is served."""
        if verdict.blocked:
            self.metrics.feedback_blocked.labels(tier).inc()
        g = verdict.guard
        if g is not None:
            if g.ok:
                self.metrics.guard_verdicts.labels(tier, "pass", "-").inc()
                decision.guard = "pass"
            elif self.guard_mode == "shadow":
                self.metrics.guard_verdicts.labels(tier, "would_reject", g.reason).inc()
                decision.guard = verdict.guard_label
            else:
                logger.debug("guard %s candidate rejected: %s %s", tier, g.reason, g.detail)
                self.metrics.guard_verdicts.labels(tier, "reject", g.reason).inc()
                if decision.guard is None or decision.guard == "pass":
                    decision.guard = verdict.guard_label
        return verdict.ok

    async def _generated(self, decision: Decision, req: AnswerRequest, context: CacheContext) -> Match | None:
        if self.answer_cache is None or not await self._answers.ensure():
            return None
        t0 = time.perf_counter()
        try:
            return await self.answer_search.search(
                self.answer_key(req, context),
                decision.vector,
                lambda found: self._choose_generated(decision, req, context, found),
            )
        except VectorStoreError as exc:
            self._answers_failed(exc)
            return None
        finally:
            decision.timings.answer_cache_ms = (time.perf_counter() - t0) * 1000

    def _choose_generated(
        self, decision: Decision, req: AnswerRequest, context: CacheContext, candidates: list[StoredAnswer]
    ) -> Match | None:
        for c in candidates:
            verdict = self.judge(GENERATED, req, decision.vector, self.answer_cache.threshold, c, context)
            if not verdict.above:
                return None
            if not verdict.serves:
                continue
            if not self._record(decision, GENERATED, verdict):
                continue
            self.answer_cache.record_hit(c.id)
            return Match(
                id=c.id,
                biz_id="",
                content=c.content,
                similarity=c.similarity,
                prompt=c.prompt,
                completion_tokens=c.completion_tokens,
            )
        return None

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
            tokens = decision.match.completion_tokens or len(decision.match.content)
            self.metrics.tokens_avoided.labels(decision.match_source).inc(tokens)
        elif status == BYPASS:
            outcome = "bypass"
            self.metrics.bypass_reasons.labels(reason or "unknown").inc()
        else:
            outcome = "miss"
        if decision.curated_skip:
            self.metrics.curated_skipped.labels(decision.curated_skip).inc()
        self.metrics.outcomes.labels(outcome).inc()
        self.metrics.observe_stage("embed", decision.timings.embed_ms)
        self.metrics.observe_stage("search", decision.timings.search_ms)
        self.metrics.observe_stage("answer_cache", decision.timings.answer_cache_ms)
        return decision

    def _log(self, decision: Decision, answer_source: str) -> None:
        t = decision.timings
        logger.info(
            "decision=%s source=%s match_source=%s match_id=%s similarity=%s bypass=%s curated_skip=%s "
            "store_error=%s timing=%r",
            decision.status,
            answer_source,
            decision.match_source or "-",
            decision.match.id if decision.match else "-",
            "-" if decision.similarity is None else f"{decision.similarity:.4f}",
            decision.bypass_reason or "-",
            decision.curated_skip or "-",
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

    async def _complete_shared(self, req: AnswerRequest, decision: Decision) -> Completion:
        key = flight_key(req.tenant, self.llm.model, req.prompt, decision.context, req.store)
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
        await self._write_back(req, decision, completion.text, completion.finish_reason, completion.completion_tokens)
        return completion

    def _may_store(self, req: AnswerRequest, decision: Decision) -> bool:
        return (
            self.answer_cache is not None
            and req.store
            and decision.bypass_reason in (None, "no_cache")
            and not decision.store_error
            and bool(self.llm.model)
        )

    async def _write_back(
        self, req: AnswerRequest, decision: Decision, text: str, finish_reason: str | None, tokens: int | None
    ) -> None:
        """Store a generated answer that finished normally, keyed by the prompt's embedding and the
        request's context. Without a token count from the LLM (a stream), the request's max_tokens is
        recorded: an upper bound, so the answer is never served to a request it might not fit."""
        if not self._may_store(req, decision) or finish_reason != "stop" or not text.strip():
            return
        if not await self._answers.ensure():
            return
        context = decision.context
        try:
            vector = decision.vector
            if vector is None:  # no-cache skipped the lookup, but the answer may still be stored
                query = await self.encoder.embed_query(req.prompt)
                if query.truncated and not self.retrieve_long_prompts:
                    return  # a long prompt is never looked up, so its answer is not worth storing
                vector = query.vector
            await asyncio.to_thread(
                self.answer_cache.put,
                vector,
                prompt=req.prompt,
                content=text,
                key=self.answer_key(req, context),
                stops=context.stops,
                completion_tokens=tokens if tokens is not None else context.max_tokens,
            )
            self.metrics.answer_cache_writes.inc()
        except VectorStoreError as exc:
            self._answers_failed(exc)
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
        self._spawn(self._write_back(req, decision, "".join(parts), finish, None))

    # -- the reference /chat: straight to the LLM -------------------------------------------------
    def chat_stream(self, prompt: str, params: SamplingParams | None = None) -> AsyncIterator[Delta]:
        self.check_prompt(prompt)
        return self.llm.stream([{"role": "user", "content": prompt}], params)
