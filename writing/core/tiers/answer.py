"""The answer tier: answers the LLM wrote before, served under the stored-answer rule.

A stored answer is served only to a request with the same tenant, model and context
(``writing.core.context``: instructions, content-changing fields, greedy or sampled), that it fits
(``max_tokens``, stop sequences) and while it has not expired, above ``ANSWER_CACHE_THRESHOLD``. The
store filters on the key; the stop rule and the threshold are judged here, on the top ``CANDIDATES``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import numpy as np

from writing.core.judge import CandidateJudge
from writing.core.links import Link
from writing.core.models import (
    GENERATED,
    SEMANTIC,
    AnswerKey,
    AnswerRequest,
    CacheContext,
    CandidateVerdict,
    Match,
    StoredAnswer,
    TierTrace,
)
from writing.core.ports import AnswerIndex
from writing.core.search import BatchedSearch
from writing.core.telemetry import CoreMetrics
from writing.core.tiers.base import judge_found, unavailable
from writing.errors import VectorStoreError

logger = logging.getLogger(__name__)

CANDIDATES = 4  # also room for the stop-sequence rule, which the store cannot filter on


def as_match(a: StoredAnswer) -> Match:
    return Match(
        id=a.id,
        biz_id="",
        content=a.content,
        similarity=a.similarity,
        prompt=a.prompt,
        completion_tokens=a.completion_tokens,
    )


class AnswerTier:
    name = GENERATED
    stage = "answer_cache"
    candidates = CANDIDATES
    needs_vector = True
    kind = SEMANTIC

    def __init__(self, store: AnswerIndex, link: Link, judge: CandidateJudge, *, model: Callable[[], str]) -> None:
        self.store = store
        self.link = link
        self.judge = judge
        self._model = model  # the served model's name (known once the LLM answered /v1/models)
        self.search: BatchedSearch = BatchedSearch(
            lambda key, vectors: store.lookup_many(vectors, key[0], key[1])  # key: (AnswerKey, limit)
        )

    @property
    def threshold(self) -> float:
        return self.store.threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self.store.threshold = value

    def key(self, req: AnswerRequest, context: CacheContext) -> AnswerKey:
        return AnswerKey(req.tenant, self._model(), context.fingerprint, context.max_tokens)

    def skip_reason(self, req: AnswerRequest, context: CacheContext) -> str | None:
        return None

    async def lookup(
        self, req: AnswerRequest, vector: np.ndarray, context: CacheContext, threshold: float, limit: int, trace: bool
    ) -> TierTrace:
        if not await self.link.ensure():
            return unavailable(GENERATED, threshold, store_error=False)

        def judge(a: StoredAnswer) -> tuple[CandidateVerdict, Match]:
            return self.judge.judge(GENERATED, req, vector, threshold, a, context), as_match(a)

        try:
            judged, looked, chosen = await self.search.search(
                (self.key(req, context), limit), vector, lambda found: judge_found(found, judge, self.candidates, trace)
            )
        except VectorStoreError as exc:
            self.link.failed(exc)  # curated retrieval is unaffected: its own link
            return unavailable(GENERATED, threshold, store_error=False)
        return TierTrace(GENERATED, threshold, judged=judged, looked=looked, chosen=chosen)

    def served(self, match: Match) -> None:
        self.store.record_hit(match.id)

    # -- what the answering and the upkeep job do with the store ------------------------------------
    async def put(self, vector: np.ndarray, req: AnswerRequest, context: CacheContext, text: str, tokens: int) -> bool:
        """Store a generated answer under the request's key; False when the store is down (logged)."""
        if not await self.link.ensure():
            return False
        try:
            await asyncio.to_thread(
                self.store.put,
                vector,
                prompt=req.prompt,
                content=text,
                key=self.key(req, context),
                stops=context.stops,
                completion_tokens=tokens,
            )
        except VectorStoreError as exc:
            self.link.failed(exc)
            return False
        return True

    async def flush_hits(self) -> None:
        """Write out the hits counted since the last upkeep (at shutdown: a rolling restart loses none)."""
        if not self.link.ready:
            return
        try:
            await asyncio.to_thread(self.store.flush_hits)
        except VectorStoreError as exc:
            logger.warning("hit counts not written at shutdown: %s", exc)

    async def maintain(self, metrics: CoreMetrics) -> dict[str, int]:
        """Write out hit counts, purge expired answers, evict beyond the size cap (a periodic job)."""
        if not await self.link.ensure():
            return {}
        try:
            done = await asyncio.to_thread(self.store.maintain)
        except VectorStoreError as exc:
            self.link.failed(exc)
            return {}
        for action, n in done.items():
            if n:
                metrics.upkeep(action, n)
        if any(done.values()):
            logger.info("cache upkeep: %s", done)  # counts only
        return done
