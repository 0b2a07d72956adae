"""What the routes take from a request: the service, the tenant, the cache controls, the threshold
override; and the headers every answer carries."""

from __future__ import annotations

import time

from fastapi import Request

from writing.adapters.milvus.corpus import MilvusStore
from writing.api.auth import caller_of, tenant_of
from writing.core.corpus import CorpusWriter
from writing.core.decision import WritingService
from writing.core.feedback import Served, prompt_hash
from writing.core.models import CURATED, GENERATED, SOURCE_LLM, Answer, AnswerRequest, Decision, SamplingParams
from writing.errors import InvalidRequest


def service_of(request: Request) -> WritingService:
    return request.app.state.service


def store_of(request: Request) -> MilvusStore:
    """The curated corpus itself, for the corpus API (the decision sees it through ``CorpusIndex``)."""
    return request.app.state.store


def corpus_writer(request: Request) -> CorpusWriter:
    """ingest.py's code path for the corpus API; the embedding waits in the batcher's bounded queue (503
    when it is full), behind the prompts already queued."""
    batcher = request.app.state.batcher
    return CorpusWriter(batcher.embedder, store_of(request), run_model=batcher.run_blocking)


def threshold_of(request: Request, body_value: float | None = None) -> float | None:
    raw = request.headers.get("x-similarity-threshold")
    if raw is not None:
        try:
            return float(raw)
        except ValueError:
            raise InvalidRequest("X-Similarity-Threshold must be a number such as 0.85") from None
    return body_value


def build_answer_request(
    request: Request,
    prompt: str,
    *,
    threshold: float | None = None,
    messages: list[dict] | None = None,
    params: SamplingParams | None = None,
    bypass_reason: str | None = None,
) -> AnswerRequest:
    """An AnswerRequest carrying the request's Cache-Control, tenant and threshold override."""
    directives = {d.strip().lower() for d in request.headers.get("cache-control", "").split(",")}
    return AnswerRequest(
        prompt=prompt,
        messages=messages,
        params=params,
        threshold=threshold_of(request, threshold),
        lookup="no-cache" not in directives,
        store="no-store" not in directives,
        tenant=tenant_of(request),
        bypass_reason=bypass_reason,
    )


def decision_headers(request: Request, req: AnswerRequest, decision: Decision) -> dict[str, str]:
    headers = {"X-Cache": decision.status, "X-Feedback-Token": feedback_token(request, req, decision)}
    # the served passage's similarity on a hit (the top-1 may have been passed over), else the top-1's
    similarity = decision.match.similarity if decision.hit and decision.match is not None else decision.similarity
    if similarity is not None:
        headers["X-Similarity"] = f"{similarity:.4f}"
    if decision.hit and decision.match is not None:
        headers["X-Match-Id"] = str(decision.match.id)
        headers["X-Match-Source"] = decision.match_source or ""
    if decision.bypass_reason:
        headers["X-Cache-Bypass-Reason"] = decision.bypass_reason
    elif decision.curated_skip:
        headers["X-Cache-Bypass-Reason"] = f"curated_tier:{decision.curated_skip}"
    if decision.shadow:
        headers["X-Shadow-Decision"] = decision.shadow
    if decision.guard:
        headers["X-Cache-Guard"] = decision.guard
    timing = decision.timings.header()
    if timing:
        headers["Server-Timing"] = timing
    return headers


def answer_headers(request: Request, req: AnswerRequest, answer: Answer) -> dict[str, str]:
    return {"X-Writing-Source": answer.source, **decision_headers(request, req, answer.decision)}


def feedback_token(request: Request, req: AnswerRequest, decision: Decision) -> str:
    """What ``POST /v1/feedback`` needs to act on a report about this answer, signed (core/feedback.py)."""
    match = decision.match if decision.hit else None
    if match is None:
        tier, matched = SOURCE_LLM, ""
    elif decision.match_source == CURATED:
        tier, matched = CURATED, str(match.biz_id)
    else:
        tier, matched = GENERATED, match.prompt
    served = Served(
        request_id=request.state.request_id,
        tenant=req.tenant,
        tier=tier,
        entry_id=match.id if match is not None else None,
        similarity=round(match.similarity, 4) if match is not None else decision.similarity,
        prompt=req.prompt,
        prompt_hash=prompt_hash(req.prompt),
        matched=matched,
        issued=int(time.time()),
    )
    return request.app.state.feedback_tokens.issue(served)


async def record_audit(request: Request, action: str, target: str, detail: dict) -> None:
    """An admin action, to the audit log, with the key that did it and enough to undo it."""
    audit = request.app.state.audit
    actor = caller_of(request).label

    def write() -> None:
        audit.open()
        audit.record(actor, action, target, detail)

    await service_of(request).run_store_op(write)
