"""The ``Tier`` protocol, and the walk over a tier's candidates that every tier shares."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import numpy as np

from writing.core.models import AnswerRequest, CacheContext, CandidateVerdict, Judged, Match, TierTrace

C = TypeVar("C")


class Tier(Protocol):
    name: str  # as X-Match-Source says it: curated | generated (the exact tier: exact; it serves both)
    stage: str  # its Server-Timing stage: exact | search | answer_cache
    candidates: int  # how many candidates above the threshold the decision looks at
    needs_vector: bool  # looks up by the prompt's vector: the policy embeds the prompt before it
    kind: str  # how its hits are found (X-Match-Kind): semantic | exact

    @property
    def threshold(self) -> float: ...

    def skip_reason(self, req: AnswerRequest, context: CacheContext) -> str | None:
        """Why this tier cannot answer this request (then it is not searched); None when it can."""

    async def lookup(
        self,
        req: AnswerRequest,
        vector: np.ndarray | None,
        context: CacheContext,
        threshold: float,
        limit: int,
        trace: bool,
    ) -> TierTrace:
        """Search (batched with the other requests of the same embedding batch) and judge, in a worker
        thread; return what was found, judged and chosen. A store that is down gives a trace that says
        so (``skipped="store_unavailable"``), or raises VectorStoreError where the tier must fail.
        ``vector`` is None only for a tier that does not need it. A candidate of another tier than this
        one (the exact tier holds both kinds) says whose it is (``Judged.tier``): that is what is served."""

    def served(self, match: Match) -> None:
        """On the event loop, after the decision served ``match`` (the answer tier counts a hit)."""


def judge_found(
    found: Sequence[C], judge: Callable[[C], tuple[CandidateVerdict, Match]], looks_at: int, trace: bool
) -> tuple[list[Judged], int, int | None]:
    """Judge candidates in rank order: the decision looks at up to ``looks_at`` of them, stops at the
    first below the threshold and chooses the first that may answer; a trace judges the rest for display.
    Returns (judged, how many the decision looked at, the chosen index or None). Pure: runs in a thread."""
    judged: list[Judged] = []
    looked, chosen, stopped = 0, None, False
    for i, candidate in enumerate(found):
        deciding = i < looks_at and not stopped
        if not deciding and not trace:
            break
        verdict, match = judge(candidate)
        judged.append(Judged(match, verdict))
        if deciding:
            looked = i + 1
            if not verdict.above:
                stopped = True
            elif verdict.ok:
                chosen, stopped = i, True
    return judged, looked, chosen


def unavailable(name: str, threshold: float, *, store_error: bool) -> TierTrace:
    return TierTrace(name, threshold, skipped="store_unavailable", store_error=store_error)
