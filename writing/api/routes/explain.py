"""``POST /v1/explain``: one prompt's decision, traced tier by tier (admins; the console's playground).
The first step is the exact lookup (``tier: "exact"``, when ``EXACT_TIER`` is on): the entries stored
under the same normalised prompt, each candidate saying whose it is.

The route runs the decision itself (``RetrievalPolicy.decide`` with a ``Trace``): what it shows is what
the service does. The trace judges ``top_k`` candidates per tier (at least those the decision looks
at), counts nothing in the metrics, records no hit and never calls the LLM."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request

from writing.api.auth import require_admin
from writing.api.deps import PolicyDep, build_answer_request, guard_label
from writing.api.errors import ADMIN_STATUSES, error_responses
from writing.api.protocol.console import (
    ExplainCandidate,
    ExplainRequest,
    ExplainResponse,
    ExplainServed,
    ExplainTier,
)
from writing.core.models import CURATED, EXACT, GENERATED, HIT, SEMANTIC, Decision, Judged, TierTrace
from writing.core.policy import Trace


def _candidate(tier: str, j: Judged, chosen: bool) -> ExplainCandidate:
    v, m = j.verdict, j.match
    curated = (j.tier or tier) == CURATED
    return ExplainCandidate(
        id=m.id,
        tier=j.tier,
        biz_id=m.biz_id if curated else None,
        prompt=None if curated else m.prompt,
        content=m.content,
        similarity=m.similarity,
        above_threshold=v.above,
        serves_context=v.serves,
        blocked=v.blocked,
        guard=guard_label(v),
        chosen=chosen,
    )


def _tier(t: TierTrace) -> ExplainTier:
    return ExplainTier(
        tier=t.tier,
        threshold=t.threshold,
        skipped=t.skipped,
        candidates=[_candidate(t.tier, j, i == t.chosen) for i, j in enumerate(t.judged)],
    )


def _served(decision: Decision) -> ExplainServed | None:
    """What was (or, in shadow mode, would have been) served: the chosen candidate of the first tier."""
    for t in decision.tiers:
        if t.chosen is not None:
            m = t.judged[t.chosen].match
            tier = t.chosen_tier or t.tier
            curated = tier == CURATED
            return ExplainServed(
                tier=tier,
                kind=EXACT if t.tier == EXACT else SEMANTIC,
                id=m.id,
                similarity=m.similarity,
                content=m.content,
                biz_id=m.biz_id if curated else None,
                prompt=None if curated else m.prompt,
            )
    return None


def build_router() -> APIRouter:
    router = APIRouter(tags=["explain"], dependencies=[Depends(require_admin)])

    @router.post(
        "/v1/explain",
        response_model=ExplainResponse,
        responses=error_responses(*ADMIN_STATUSES),
        summary="Why this prompt would hit or miss: the decision traced, top-k of each tier with each verdict.",
    )
    async def explain_prompt(request: Request, body: ExplainRequest, policy: PolicyDep) -> ExplainResponse:
        t0 = time.perf_counter()
        req = build_answer_request(request, body.prompt, threshold=body.threshold)
        if body.no_cache:
            req.lookup = False
        overrides = {CURATED: body.threshold, GENERATED: body.answer_threshold}
        trace = Trace(top_k=body.top_k, thresholds={k: v for k, v in overrides.items() if v is not None})
        decision = await policy.decide(req, trace)
        tiers = [_tier(t) for t in decision.tiers]
        if not any(t.tier == GENERATED for t in tiers):
            tiers.append(ExplainTier(tier=GENERATED, threshold=1.0, skipped="answer_cache_off", candidates=[]))
        timings = {k: round(v, 2) for k, v in decision.timings.stages.items()}
        timings["total"] = round((time.perf_counter() - t0) * 1000, 2)
        return ExplainResponse(
            decision=decision.status,
            bypass_reason=decision.bypass_reason,
            guard_mode=request.app.state.settings.hit_guard,
            served=_served(decision),
            would_call_llm=decision.status != HIT,
            tiers=tiers,
            timings_ms=timings,
        )

    return router
