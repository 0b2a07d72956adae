"""Verification: a sampled share of hits and misses judged by the LLM, after the caller has its answer.

``observe`` runs on the event loop after the decision was made and the answer handed back (the answering
schedules it with ``call_soon``): it picks the candidates (a hit's entry; a miss's top candidate when it
was below the threshold), draws each with the sampling rule's probability, and puts the drawn ones on a
bounded queue; a full queue drops. One worker task takes them one at a time and asks the judge, so at
most one verification call is in flight per worker, and at most ``VERIFY_MAX_PER_MINUTE`` start in a
minute. It pauses (drops what it draws) while the LLM is failing, for ``VERIFY_PAUSE_AFTER_FAILURE``
seconds after one of its own calls failed, and while ``VERIFY_MAX_LLM_IN_FLIGHT`` callers' LLM calls
are in flight: callers come first. Each verdict is stored as a label (``EvidenceRepository``, through
the records' link); what happened to each drawn candidate is counted by outcome.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from writing.core.budget.from_reports import budget_tier
from writing.core.budget.judging import PARAMS, judge_messages, parse_verdict
from writing.core.budget.labels import JUDGE, Label
from writing.core.budget.sampling import SamplingRule
from writing.core.judge import CandidateJudge
from writing.core.links import Link
from writing.core.models import CURATED, GENERATED, AnswerRequest, Decision
from writing.core.ports import LLM, EvidenceRepository
from writing.core.reviews.limits import RateLimiter
from writing.errors import LLMError, VectorStoreError

logger = logging.getLogger(__name__)

QUEUE_SIZE = 32
CAP_KEY = "verify"  # the one key of the verifier's RateLimiter
OUTCOMES = ("verified", "capped", "paused", "dropped", "failed", "unclear", "unsaved")


@dataclass(frozen=True)
class Candidate:
    tier: str  # the budget's: curated | answer
    entry_id: int
    similarity: float
    threshold: float  # the one it was held to
    request: str
    text: str  # the stored text the caller got (a hit) or would have got (a miss)
    tenant: str


@dataclass(frozen=True)
class VerifyLimits:
    per_minute: int
    max_llm_in_flight: int
    pause_after_failure: float


def candidates_of(req: AnswerRequest, decision: Decision, judge: CandidateJudge) -> list[Candidate]:
    """The served entry of a hit; on a miss, each semantic tier's top candidate below its threshold."""
    out = []
    for trace in decision.tiers:
        if not trace.judged:
            continue
        if trace.chosen is not None:
            chosen = trace.judged[trace.chosen]
            tier, match = chosen.tier or trace.tier, chosen.match
        elif trace.tier in (CURATED, GENERATED) and not trace.judged[0].verdict.above:
            tier, match = trace.tier, trace.judged[0].match
        else:
            continue
        if tier not in (CURATED, GENERATED):
            continue
        threshold = judge.threshold_for(tier, match.id, trace.threshold)
        out.append(
            Candidate(budget_tier(tier), match.id, match.similarity, threshold, req.prompt, match.content, req.tenant)
        )
    return out


class Verifier:
    def __init__(
        self,
        *,
        llm: LLM,
        evidence: EvidenceRepository,
        link: Link,
        judge: CandidateJudge,
        rule: SamplingRule,
        limits: VerifyLimits,
        low: dict[str, float],  # each budget tier's run-time lower bound
        llm_busy: Callable[[], int],  # callers' LLM calls in flight now
        llm_failing: Callable[[], bool],
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.llm = llm
        self.evidence = evidence
        self.link = link
        self.judge = judge
        self.rule = rule
        self.limits = limits
        self.low = low
        self.llm_busy = llm_busy
        self.llm_failing = llm_failing
        self.rng = rng or random.Random()
        self.clock = clock
        self.cap = RateLimiter(limits.per_minute)  # judge calls started in any 60 s
        self.queue: asyncio.Queue[tuple[Candidate, float]] = asyncio.Queue(QUEUE_SIZE)
        self.outcomes: Counter[str] = Counter()
        self.entry_labels: dict[tuple[str, int], int] = {}  # labels per entry, as the keeper last read them
        self.in_flight = 0
        self._failed_at: float | None = None

    # -- on the event loop, after the answer --------------------------------------------------------------
    def observe(self, req: AnswerRequest, decision: Decision) -> None:
        for candidate in candidates_of(req, decision, self.judge):
            self.offer(candidate)

    def offer(self, c: Candidate) -> None:
        low = self.low.get(c.tier)
        if low is None or not self.rule.considers(c.similarity, c.threshold, low):
            return
        p = self.rule.probability(c.similarity, c.threshold, self.entry_labels.get((c.tier, c.entry_id), 0))
        if self.rng.random() >= p:
            return
        if self.paused():
            self.outcomes["paused"] += 1
        elif not self.cap.allow(CAP_KEY, self.clock()):
            self.outcomes["capped"] += 1
        else:
            try:
                self.queue.put_nowait((c, p))
            except asyncio.QueueFull:
                self.outcomes["dropped"] += 1

    def used_this_minute(self) -> int:
        return self.cap.used(CAP_KEY, self.clock())

    def paused(self) -> bool:
        """While the LLM is failing, after a failed judge call, or while callers keep the LLM busy."""
        if self.llm_failing() or self.llm_busy() >= self.limits.max_llm_in_flight:
            return True
        failed = self._failed_at
        return failed is not None and self.clock() - failed < self.limits.pause_after_failure

    # -- the worker ---------------------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            candidate, p = await self.queue.get()
            try:
                await self.verify(candidate, p)
            except Exception:  # one bad verification never stops the worker
                logger.exception("verification failed")

    async def verify(self, c: Candidate, p: float) -> str:
        if self.paused():
            return self._count("paused")
        self.in_flight += 1
        try:
            completion = await self.llm.complete(judge_messages(c.request, c.text), PARAMS)
        except LLMError as exc:
            self._failed_at = self.clock()
            logger.info(
                "verification paused for %.0fs: the judge call failed (%s)", self.limits.pause_after_failure, exc.code
            )
            return self._count("failed")
        finally:
            self.in_flight -= 1
        wrong = parse_verdict(completion.text)
        if wrong is None:
            return self._count("unclear")
        label = Label(c.tier, c.entry_id, c.similarity, wrong, JUDGE, p, c.tenant, int(time.time()))
        try:
            await self.link.call(lambda: self.evidence.add([label]))
        except VectorStoreError:
            return self._count("unsaved")
        key = (c.tier, c.entry_id)
        self.entry_labels[key] = self.entry_labels.get(key, 0) + 1
        logger.debug(
            "verified %s entry %d at %.4f: %s", c.tier, c.entry_id, c.similarity, "wrong" if wrong else "right"
        )
        return self._count("verified")

    def _count(self, outcome: str) -> str:
        self.outcomes[outcome] += 1
        return outcome
