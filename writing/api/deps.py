"""What the routes take from a request: the service, the tenant, the cache controls, the threshold
override; and the headers every answer carries."""

from __future__ import annotations

import re

from fastapi import Request

from writing.adapters.milvus.corpus import MilvusStore
from writing.core.decision import WritingService
from writing.core.models import DEFAULT_TENANT, Answer, AnswerRequest, Decision, SamplingParams
from writing.errors import InvalidRequest

TENANT_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def service_of(request: Request) -> WritingService:
    return request.app.state.service


def store_of(request: Request) -> MilvusStore:
    """The curated corpus itself, for the corpus API (the decision sees it through ``CorpusIndex``)."""
    return request.app.state.store


def tenant_of(request: Request) -> str:
    """``X-Tenant``, scoped under the API key when keys are in use (a key's answers stay its own)."""
    header = request.headers.get("x-tenant", "").strip()
    if header and not TENANT_RE.match(header):
        raise InvalidRequest("X-Tenant must be 1-64 characters of letters, digits, '_', '.', ':' or '-'")
    key_id = getattr(request.state, "key_id", None)
    if key_id:
        return f"key-{key_id}" + (f":{header}" if header else "")
    return header or DEFAULT_TENANT


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


def decision_headers(decision: Decision) -> dict[str, str]:
    headers = {"X-Cache": decision.status}
    if decision.similarity is not None:
        headers["X-Similarity"] = f"{decision.similarity:.4f}"
    if decision.hit and decision.match is not None:
        headers["X-Match-Id"] = str(decision.match.id)
        headers["X-Match-Source"] = decision.match_source or ""
    if decision.bypass_reason:
        headers["X-Cache-Bypass-Reason"] = decision.bypass_reason
    if decision.shadow:
        headers["X-Shadow-Decision"] = decision.shadow
    timing = decision.timings.header()
    if timing:
        headers["Server-Timing"] = timing
    return headers


def answer_headers(answer: Answer) -> dict[str, str]:
    return {"X-Writing-Source": answer.source, **decision_headers(answer.decision)}
