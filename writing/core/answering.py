"""The answering: a decided hit's stored text, or one LLM call, shared and written back.

``Answering`` asks the policy (``writing.core.policy``) what would answer; on a miss it calls the LLM
once for all identical requests in flight (``flight_key``: the same tenant, model, prompt and context),
in a task of its own so that a caller that goes away does not cancel it for the others, and stores an
answer that finished normally in the answer tier for reuse, under the prompt's embedding from the
decision (embedded once; a ``no-cache`` request, which skipped the lookup, is embedded for the write).
A streamed answer is written back in the background (``Jobs``), after the client has its last piece.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

from writing.core.context import flight_key
from writing.core.jobs import Jobs
from writing.core.models import (
    SOURCE_LLM,
    SOURCE_MILVUS,
    Answer,
    AnswerRequest,
    Completion,
    Decision,
    Delta,
    SamplingParams,
)
from writing.core.policy import RetrievalPolicy
from writing.core.ports import LLM
from writing.core.telemetry import CoreMetrics
from writing.core.tiers.answer import AnswerTier
from writing.errors import LLMError

logger = logging.getLogger(__name__)


class Answering:
    def __init__(
        self,
        policy: RetrievalPolicy,
        llm: LLM,
        metrics: CoreMetrics,
        jobs: Jobs,
        *,
        answers: AnswerTier | None = None,
        retrieve_long_prompts: bool = False,
    ) -> None:
        self.policy = policy
        self.llm = llm
        self.metrics = metrics
        self.jobs = jobs
        self.answers = answers
        self.retrieve_long_prompts = retrieve_long_prompts
        self._flights: dict[str, asyncio.Task] = {}
        self.llm_in_flight = 0  # callers' LLM calls now (verification pauses while there are many)
        self.observers: list[Callable[[AnswerRequest, Decision], None]] = []  # after each decision (verification)

    async def answer(self, req: AnswerRequest) -> Answer:
        """A whole answer: a stored text, or one LLM call shared by identical requests in flight."""
        decision = await self.policy.decide(req)
        self._observe(req, decision)
        if decision.hit:
            self._log(decision, SOURCE_MILVUS)
            return Answer(content=decision.match.content, source=SOURCE_MILVUS, decision=decision)
        t0 = time.perf_counter()
        completion = await self._complete_shared(req, decision)
        self._llm_done(decision, t0)
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

    async def answer_stream(self, req: AnswerRequest) -> tuple[Decision, AsyncIterator[Delta] | None]:
        """Decide; on a hit (decision, None) for the caller to replay the stored text, else (decision, the
        LLM's deltas). A stream that finishes normally is written back."""
        decision = await self.policy.decide(req)
        self._observe(req, decision)
        if decision.hit:
            self._log(decision, SOURCE_MILVUS)
            return decision, None
        return decision, self._stream_and_store(req, decision)

    def chat_stream(self, prompt: str, params: SamplingParams | None = None) -> AsyncIterator[Delta]:
        """The reference ``/chat``: straight to the LLM."""
        return self.llm.stream([{"role": "user", "content": prompt}], params)

    async def close(self) -> None:
        for task in list(self._flights.values()):
            task.cancel()

    # -- the LLM call, shared ------------------------------------------------------------------------
    async def _complete_shared(self, req: AnswerRequest, decision: Decision) -> Completion:
        key = flight_key(req.tenant, self.llm.model, req.prompt, decision.context, req.store)
        task = self._flights.get(key)
        if task is not None:
            self.metrics.llm_shared()
        else:
            task = asyncio.create_task(self._complete_and_store(req, decision))
            self._flights[key] = task
            task.add_done_callback(lambda t, k=key: self._flight_done(k, t))
        return await asyncio.shield(task)

    def _flight_done(self, key: str, task: asyncio.Task) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning when every waiter left

    def _observe(self, req: AnswerRequest, decision: Decision) -> None:
        """Hand the decision to the observers once the caller's handler has moved on: on the loop's next
        turn, never on the caller's path."""
        if self.observers and decision.tiers:
            loop = asyncio.get_running_loop()
            for observe in self.observers:
                loop.call_soon(observe, req, decision)

    async def _complete_and_store(self, req: AnswerRequest, decision: Decision) -> Completion:
        self.llm_in_flight += 1
        try:
            completion = await self.llm.complete(req.llm_messages(), req.params)
        except LLMError as exc:
            self.metrics.llm_error(exc.code)
            raise
        finally:
            self.llm_in_flight -= 1
        await self._write_back(req, decision, completion.text, completion.finish_reason, completion.completion_tokens)
        return completion

    async def _stream_and_store(self, req: AnswerRequest, decision: Decision) -> AsyncIterator[Delta]:
        parts: list[str] = []
        finish: str | None = None
        t0 = time.perf_counter()
        stream = self.llm.stream(req.llm_messages(), req.params)
        self.llm_in_flight += 1
        try:
            async for delta in stream:
                parts.append(delta.text)
                finish = delta.finish_reason or finish
                yield delta
        except LLMError as exc:
            self.metrics.llm_error(exc.code)
            raise
        finally:
            self.llm_in_flight -= 1
            await stream.aclose()
        self._llm_done(decision, t0)
        # stored in the background: the client has its [DONE] without waiting for Milvus
        self.jobs.spawn(self._write_back(req, decision, "".join(parts), finish, None))

    # -- write-back -------------------------------------------------------------------------------------
    def _may_store(self, req: AnswerRequest, decision: Decision) -> bool:
        return (
            self.answers is not None
            and req.store
            and decision.bypass_reason in (None, "no_cache")
            and not decision.store_error
            and bool(self.llm.model)
        )

    async def _write_back(
        self, req: AnswerRequest, decision: Decision, text: str, finish_reason: str | None, tokens: int | None
    ) -> None:
        """Store a generated answer that finished normally. Without a token count from the LLM (a stream),
        the request's max_tokens is recorded: an upper bound, so it is never served where it might not fit."""
        if not self._may_store(req, decision) or finish_reason != "stop" or not text.strip():
            return
        context = decision.context
        try:
            vector = decision.vector
            if vector is None:  # no-cache skipped the lookup, but the answer may still be stored
                query = await self.policy.encoder.embed_query(req.prompt, req.flow)
                if query.truncated and not self.retrieve_long_prompts:
                    return  # a long prompt is never looked up, so its answer is not worth storing
                vector = query.vector
            stored = await self.answers.put(
                vector, req, context, text, tokens if tokens is not None else context.max_tokens
            )
            if stored:
                self.metrics.answer_written()
        except Exception as exc:  # noqa: BLE001 - a failed write-back must not fail the answer
            logger.warning("answer-cache write failed: %s", type(exc).__name__)

    # -- logs -------------------------------------------------------------------------------------------
    def _llm_done(self, decision: Decision, t0: float) -> None:
        ms = (time.perf_counter() - t0) * 1000
        decision.timings.add("llm", ms)
        self.metrics.stage("llm", ms)
        self._log(decision, SOURCE_LLM)

    @staticmethod
    def _log(decision: Decision, answer_source: str) -> None:
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
            decision.timings.header(),
        )
