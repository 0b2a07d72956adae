"""What every route shares: the JSON error shape, API keys, per-request cache controls, headers."""

from __future__ import annotations

import re

from fastapi import Request
from fastapi.responses import JSONResponse

from schemas import ErrorResponse
from service import DEFAULT_TENANT, Answer, AnswerRequest, Decision, PromptError, WritingService

TENANT_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

ERROR_RESPONSES = {
    401: {"model": ErrorResponse, "description": "Missing or wrong API key."},
    422: {"model": ErrorResponse, "description": "Invalid input; the message says what to fix."},
    502: {"model": ErrorResponse, "description": "The LLM is unreachable or answered with an error."},
    503: {"model": ErrorResponse, "description": "Overloaded or a dependency is down; see Retry-After."},
    504: {"model": ErrorResponse, "description": "The LLM did not answer within LLM_TIMEOUT."},
}


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}}, headers=headers)


def service_of(request: Request) -> WritingService:
    return request.app.state.service


def tenant_of(request: Request) -> str:
    """``X-Tenant``, scoped under the API key when keys are in use (a key's answers stay its own)."""
    header = request.headers.get("x-tenant", "").strip()
    if header and not TENANT_RE.match(header):
        raise PromptError("X-Tenant must be 1-64 characters of letters, digits, '_', '.', ':' or '-'")
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
            raise PromptError("X-Similarity-Threshold must be a number such as 0.85") from None
    return body_value


def build_answer_request(request: Request, prompt: str, **fields) -> AnswerRequest:
    """An AnswerRequest carrying the request's Cache-Control, tenant and threshold override."""
    directives = {d.strip().lower() for d in request.headers.get("cache-control", "").split(",")}
    threshold = threshold_of(request, fields.pop("threshold", None))
    return AnswerRequest(
        prompt=prompt,
        threshold=threshold,
        lookup="no-cache" not in directives,
        store="no-store" not in directives,
        tenant=tenant_of(request),
        **fields,
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
