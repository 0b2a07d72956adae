"""The retrieval decision: walk the chain of tiers, embedding the prompt when a tier needs its vector,
and serve the first chosen candidate.

    the same prompt word for word (exact tier, no vector)           (HIT, curated or generated, kind exact)
    embed the prompt -> curated passages, for a plain request      (>= SIMILARITY_THRESHOLD: HIT, curated)
                     -> stored answers under the request's key     (>= ANSWER_CACHE_THRESHOLD: HIT, generated)
                     -> the LLM (MISS: ``writing.core.answering``)

The prompt is embedded once, on reaching the first tier that ``needs_vector`` (a tier without the
attribute needs one): an exact hit never waits for the embedding batcher.

Retrieval is skipped (BYPASS) for ``Cache-Control: no-cache``, for conversations with earlier turns and
for prompts longer than the embedding model's window. In shadow mode every tier is searched as it would
be (the walk stops where a tier would have served), the result is recorded as ``would_hit`` or
``would_miss`` and the request goes to the LLM (BYPASS ``shadow_mode``).

``decide(req, trace=...)`` is the same walk, traced for ``POST /v1/explain``: each tier also judges the
candidates beyond those the decision looks at (``top_k``), nothing is counted and no hit is recorded,
so what explain shows is what the decision does. Thread rule: tiers search and judge in worker threads
and return values; the decision and the metrics change only here, on the event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from writing.core.context import cache_context
from writing.core.models import (
    BYPASS,
    HIT,
    MISS,
    SEMANTIC,
    AnswerRequest,
    CacheContext,
    Decision,
    QueryVector,
    SamplingParams,
    TierTrace,
)
from writing.core.ports import QueryEncoder
from writing.core.telemetry import CoreMetrics, NullMetrics
from writing.core.tiers import Tier

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trace:
    """A traced decision: ``top_k`` candidates per tier shown (at least those the decision looks at), and
    thresholds that apply to this trace only (tier name -> threshold)."""

    top_k: int = 0
    thresholds: dict[str, float] = field(default_factory=dict)


class RetrievalPolicy:
    def __init__(
        self,
        encoder: QueryEncoder,
        chain: Sequence[Tier],
        metrics: CoreMetrics,
        *,
        defaults: SamplingParams,
        allowed_system_prompts: frozenset[str] = frozenset(),
        shadow_mode: bool = False,
        retrieve_long_prompts: bool = False,
        budgeted: frozenset[str] = frozenset(),
    ) -> None:
        self.encoder = encoder
        self.budgeted = budgeted  # tiers whose threshold an error budget holds: a caller may only raise it
        self.chain = list(chain)
        self.metrics = metrics
        self.defaults = defaults
        self.allowed_system_prompts = allowed_system_prompts
        self.shadow_mode = shadow_mode
        self.retrieve_long_prompts = retrieve_long_prompts
        # the first tier that searches by vector (curated): a caller's threshold and X-Similarity are its
        self.first_search = next((t for t in self.chain if needs_vector(t)), None)

    def tier(self, name: str) -> Tier | None:
        return next((t for t in self.chain if t.name == name), None)

    def context_of(self, req: AnswerRequest) -> CacheContext:
        return cache_context(req.llm_messages(), req.params or self.defaults, self.allowed_system_prompts)

    def _threshold(self, tier: Tier, req: AnswerRequest, trace: Trace | None) -> float:
        if trace is not None and tier.name in trace.thresholds:
            return trace.thresholds[tier.name]
        if req.threshold is not None and tier is self.first_search:
            # a caller's override applies to the first searching (curated) tier; under a budget, upwards only
            return max(req.threshold, tier.threshold) if tier.name in self.budgeted else req.threshold
        return tier.threshold

    async def decide(self, req: AnswerRequest, trace: Trace | bool | None = None) -> Decision:
        """Retrieval only: what would answer this request, without calling the LLM. The request is
        validated at the edge (``writing.api``)."""
        traced = Trace() if trace is True else (trace or None)
        metrics: CoreMetrics = NullMetrics() if traced else self.metrics
        context = self.context_of(req)
        decision = Decision(context=context, curated_skip=context.curated_skip)
        reason = req.bypass_reason or (None if req.lookup else "no_cache")
        if reason is not None:
            return self._finish(decision, metrics, BYPASS, reason, traced)

        query: QueryVector | None = None
        chosen: Tier | None = None
        for tier in self.chain:
            if query is None and needs_vector(tier):
                t0 = time.perf_counter()
                query = await self.encoder.embed_query(req.prompt, req.flow)
                decision.timings.add("embed", (time.perf_counter() - t0) * 1000)
                if query.truncated and not self.retrieve_long_prompts:
                    # the vector describes only the prompt's beginning: a hit on it would be a guess
                    return self._finish(decision, metrics, BYPASS, "prompt_longer_than_embedding_window", traced)
                decision.vector = query.vector
            threshold = self._threshold(tier, req, traced)
            skipped = tier.skip_reason(req, context)
            if skipped is not None:
                decision.tiers.append(TierTrace(tier.name, threshold, skipped=skipped))
                continue
            limit = max(tier.candidates, traced.top_k) if traced else tier.candidates
            t0 = time.perf_counter()
            try:
                vector = query.vector if query is not None else None
                found = await tier.lookup(req, vector, context, threshold, limit, traced is not None)
            finally:
                decision.timings.add(tier.stage, (time.perf_counter() - t0) * 1000)
            decision.tiers.append(found)
            kind = getattr(tier, "kind", SEMANTIC)
            if kind == SEMANTIC or found.chosen is not None:  # the exact tier's declines: judged again next
                self._record(decision, found, metrics)
            if found.chosen is not None:
                chosen = tier
                decision.match, decision.match_source = found.chosen_match, found.chosen_tier
                decision.match_kind = kind
                break

        if self.shadow_mode:
            return self._shadow(decision, metrics, "would_hit" if chosen else "would_miss", traced)
        if chosen is None:
            return self._finish(decision, metrics, MISS, None, traced)
        if not traced:  # the served entry's tier counts the hit, however it was found
            (self.tier(decision.match_source) or chosen).served(decision.match)
        return self._finish(decision, metrics, HIT, None, traced)

    def _record(self, decision: Decision, found: TierTrace, metrics: CoreMetrics) -> None:
        """What the decision used of one tier's trace: the top similarity, store errors, verdicts."""
        decision.store_error = decision.store_error or found.store_error
        if found.judged and self.first_search is not None and found.tier == self.first_search.name:
            decision.similarity = found.judged[0].match.similarity  # the curated top-1 (X-Similarity)
            metrics.top_similarity(decision.similarity)
        for judged in found.judged[: found.looked]:
            v = judged.verdict
            metrics.judged(judged.tier or found.tier, v)
            if v.guard is None:
                continue
            if v.guard.ok or v.guard_mode == "shadow" or decision.guard is None or decision.guard.guard.ok:
                decision.guard = v  # a rejection is not overwritten by a later rejection

    def _shadow(self, decision: Decision, metrics: CoreMetrics, would: str, traced: Trace | None) -> Decision:
        decision.shadow = would
        logger.info(
            "shadow decision=%s tier=%s match_id=%s similarity=%s",
            would,
            decision.match_source or "none",
            decision.match.id if decision.match else "none",
            "none" if decision.similarity is None else f"{decision.similarity:.4f}",
        )
        decision.match = decision.match_source = decision.match_kind = None
        return self._finish(decision, metrics, BYPASS, "shadow_mode", traced)

    def _finish(
        self, decision: Decision, metrics: CoreMetrics, status: str, reason: str | None, traced: Trace | None
    ) -> Decision:
        decision.status, decision.bypass_reason = status, reason
        if traced is not None:  # every tier in the trace: those the walk did not reach say why
            walked = len(decision.tiers)
            why = "not_reached" if status != BYPASS or reason == "shadow_mode" else "bypass"
            for tier in self.chain[walked:]:
                threshold = traced.thresholds.get(tier.name, tier.threshold)
                decision.tiers.append(TierTrace(tier.name, threshold, skipped=why))
        metrics.decided(decision)
        return decision


def needs_vector(tier: Tier) -> bool:
    """Whether a tier looks up by the prompt's vector (every tier but the exact one)."""
    return getattr(tier, "needs_vector", True)
