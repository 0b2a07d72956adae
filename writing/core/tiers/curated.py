"""The curated tier: passages an editor wrote, served to plain requests above ``SIMILARITY_THRESHOLD``.

Curated passages answer only plain requests (no system message but the allowed ones, no tools, text
output: ``CacheContext.curated_skip``). The top ``CANDIDATES`` are looked at: a candidate reported
wrong for this prompt or rejected by the second check gives way to the next one above the threshold.
"""

from __future__ import annotations

import numpy as np

from writing.core.judge import CandidateJudge
from writing.core.links import Link
from writing.core.models import CURATED, SEMANTIC, AnswerRequest, CacheContext, CandidateVerdict, Match, TierTrace
from writing.core.ports import CorpusIndex
from writing.core.search import BatchedSearch
from writing.core.tiers.base import judge_found, unavailable
from writing.errors import VectorStoreError

CANDIDATES = 3  # above the threshold, a blocked top-1 gives way to the next


class CuratedTier:
    name = CURATED
    stage = "search"
    candidates = CANDIDATES
    needs_vector = True
    kind = SEMANTIC

    def __init__(
        self,
        index: CorpusIndex,
        link: Link,
        judge: CandidateJudge,
        *,
        threshold: float,
        fail_without_store: bool = False,
    ) -> None:
        self.index = index
        self.link = link
        self.judge = judge
        self.threshold = threshold  # RuntimeThresholds sets it while the service runs
        self.fail_without_store = fail_without_store
        # one store call for the prompts of one embedding batch (per limit: a traced decision asks more)
        self.search: BatchedSearch = BatchedSearch(lambda limit, vectors: index.search_many(vectors, limit))

    def skip_reason(self, req: AnswerRequest, context: CacheContext) -> str | None:
        return context.curated_skip

    async def lookup(
        self, req: AnswerRequest, vector: np.ndarray, context: CacheContext, threshold: float, limit: int, trace: bool
    ) -> TierTrace:
        if not await self.link.ensure():
            return self._down(threshold)

        def judge(m: Match) -> tuple[CandidateVerdict, Match]:
            return self.judge.judge(CURATED, req, vector, threshold, m), m

        try:
            judged, looked, chosen = await self.search.search(
                limit, vector, lambda found: judge_found(found, judge, self.candidates, trace)
            )
        except VectorStoreError as exc:
            self.link.failed(exc)
            return self._down(threshold)
        return TierTrace(CURATED, threshold, judged=judged, looked=looked, chosen=chosen)

    def _down(self, threshold: float) -> TierTrace:
        if self.fail_without_store:  # ON_VECTOR_STORE_ERROR=fail: a 503 instead of an LLM answer
            raise VectorStoreError("the vector store is unavailable")
        return unavailable(CURATED, threshold, store_error=True)

    def served(self, match: Match) -> None:
        return None
