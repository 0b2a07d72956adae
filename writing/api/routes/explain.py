"""``POST /v1/explain``: one prompt's decision over both tiers, candidate by candidate (admins; the
console's playground). See ``writing.core.explain``: nothing is counted, nothing served, no LLM call."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from writing.api.auth import require_admin
from writing.api.deps import build_answer_request, service_of
from writing.api.errors import ADMIN_STATUSES, error_responses
from writing.api.protocol.console import (
    ExplainCandidate,
    ExplainRequest,
    ExplainResponse,
    ExplainServed,
    ExplainTier,
)
from writing.core.explain import Candidate, explain


def _candidate(c: Candidate) -> ExplainCandidate:
    v = c.verdict
    return ExplainCandidate(
        id=c.id,
        biz_id=c.biz_id,
        prompt=c.prompt,
        content=c.content,
        similarity=c.similarity,
        above_threshold=v.above,
        serves_context=v.serves,
        blocked=v.blocked,
        guard=v.guard_label,
        chosen=c.chosen,
    )


def build_router() -> APIRouter:
    router = APIRouter(tags=["explain"], dependencies=[Depends(require_admin)])

    @router.post(
        "/v1/explain",
        response_model=ExplainResponse,
        responses=error_responses(*ADMIN_STATUSES),
        summary="Why this prompt would hit or miss: top-k of both tiers with each candidate's verdict.",
    )
    async def explain_prompt(request: Request, body: ExplainRequest) -> ExplainResponse:
        service = service_of(request)
        req = build_answer_request(request, service.check_prompt(body.prompt), threshold=body.threshold)
        if body.no_cache:
            req.lookup = False
        found = await explain(service, req, body.top_k, body.answer_threshold)
        served = found.served
        return ExplainResponse(
            decision=found.decision,
            bypass_reason=found.bypass_reason,
            guard_mode=found.guard_mode,
            served=ExplainServed(
                tier=found.served_tier,
                id=served.id,
                similarity=served.similarity,
                content=served.content,
                biz_id=served.biz_id,
                prompt=served.prompt,
            )
            if served is not None
            else None,
            would_call_llm=found.would_call_llm,
            tiers=[
                ExplainTier(
                    tier=t.tier,
                    threshold=t.threshold,
                    skipped=t.skipped,
                    candidates=[_candidate(c) for c in t.candidates],
                )
                for t in found.tiers
            ],
            timings_ms={k: round(v, 2) for k, v in found.timings_ms.items()},
        )

    return router
