"""What the routes take from a request, as typed dependencies (``Annotated`` aliases): the core, the
store links, the settings, the tenant, the cache controls, the threshold override; and the headers
every answer carries. The app's lifespan builds the components (``writing.wiring``) and puts them on
``app.state``; this module is the one place that reads them from there."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request

from writing.api.auth import caller_of, flow_of, tenant_of
from writing.api.responses import RawHeaders
from writing.core.answering import Answering
from writing.core.budget.service import BudgetService
from writing.core.corpus import CorpusWriter
from writing.core.feedback import Served
from writing.core.links import StoreLinks
from writing.core.models import (
    CURATED,
    GENERATED,
    SOURCE_LLM,
    Answer,
    AnswerRequest,
    CandidateVerdict,
    Decision,
    SamplingParams,
)
from writing.core.policy import RetrievalPolicy
from writing.core.reviews import Reviews
from writing.core.undo.service import ChangeLog, Undoer
from writing.errors import InvalidRequest
from writing.settings import Settings
from writing.validation import check_prompt, check_query_utf8, check_threshold
from writing.wiring import Core, Stores


# Dependencies are coroutines: FastAPI runs a plain ``def`` dependency in the thread pool, a thread hop
# (~0.1-0.3 ms on a busy 2-core box) per dependency per request for what is one attribute read.
async def core_of(request: Request) -> Core:
    return request.app.state.core


async def stores_of(request: Request) -> Stores:
    return request.app.state.stores


async def links_of(request: Request) -> StoreLinks:
    return request.app.state.stores.links


async def settings_of(request: Request) -> Settings:
    return request.app.state.settings


async def answering_of(request: Request) -> Answering:
    return request.app.state.core.answering


async def policy_of(request: Request) -> RetrievalPolicy:
    return request.app.state.core.policy


def lane_components(app) -> tuple[Answering, Settings]:
    """What the lean lane (``writing.api.lane``) hands the answering routes' work, read as ``answering_of``
    and ``settings_of`` read it, with no dependency to solve."""
    state = app.state
    return state.core.answering, state.settings


CoreDep = Annotated[Core, Depends(core_of)]
StoresDep = Annotated[Stores, Depends(stores_of)]
LinksDep = Annotated[StoreLinks, Depends(links_of)]
SettingsDep = Annotated[Settings, Depends(settings_of)]
AnsweringDep = Annotated[Answering, Depends(answering_of)]
PolicyDep = Annotated[RetrievalPolicy, Depends(policy_of)]


def store_of(request: Request):
    """The curated corpus itself, for the corpus API (the decision sees it through ``CorpusIndex``)."""
    return request.app.state.stores.corpus


def valid_prompt(request: Request, prompt: str | None) -> str:
    return check_prompt(prompt, request.app.state.settings.max_prompt_chars)


def query_prompt(request: Request, prompt: str | None) -> str | None:
    """A prompt read from the query (``GET /generate``, ``/chat``) as given, unless its bytes were not UTF-8
    (``check_query_utf8``): a prompt from a body is not checked against the query."""
    return prompt if prompt is None else check_query_utf8(prompt, request.scope.get("query_string", b""))


def flow_of_request(request: Request) -> str:
    """Who pays for this request's model time (``writing.api.auth.flow_of``)."""
    return flow_of(caller_of(request), request.scope.get("client"))


def corpus_writer(request: Request) -> CorpusWriter:
    """ingest.py's code path for the corpus API; the embedding runs as admin work on the batcher's bounded
    queue (503 when it is full): low priority, in chunks between the prompts' batches."""
    batcher, settings = request.app.state.batcher, request.app.state.settings
    return CorpusWriter(
        batcher.embedder,
        store_of(request),
        run_model=batcher.run_blocking,
        chunk_tokens=settings.embedding_admin_chunk_tokens,
    )


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
    """An AnswerRequest carrying the request's Cache-Control, tenant and threshold override, checked."""
    settings: Settings = request.app.state.settings
    prompt = check_prompt(prompt, settings.max_prompt_chars)
    allowed = (settings.similarity_threshold_min, settings.similarity_threshold_max)
    directives = {d.strip().lower() for d in request.headers.get("cache-control", "").split(",")}
    return AnswerRequest(
        prompt=prompt,
        messages=messages,
        params=params,
        threshold=check_threshold(threshold_of(request, threshold), allowed),
        lookup="no-cache" not in directives,
        store="no-store" not in directives,
        tenant=tenant_of(request),
        bypass_reason=bypass_reason,
        flow=flow_of_request(request),
    )


def decision_headers(request: Request, req: AnswerRequest, decision: Decision) -> RawHeaders:
    """What every answer says about its decision, as the raw header pairs the server writes (built once)."""
    headers = [
        (b"x-cache", decision.status.encode("latin-1")),
        (b"x-feedback-token", feedback_token(request, req, decision).encode("latin-1")),
    ]
    hit = decision.hit and decision.match is not None
    # the served passage's similarity on a hit (the top-1 may have been passed over), else the top-1's
    similarity = decision.match.similarity if hit else decision.similarity
    if similarity is not None:
        headers.append((b"x-similarity", f"{similarity:.4f}".encode("latin-1")))
    if hit:
        headers += [
            (b"x-match-id", str(decision.match.id).encode("latin-1")),
            (b"x-match-source", (decision.match_source or "").encode("latin-1")),
            (b"x-match-kind", (decision.match_kind or "semantic").encode("latin-1")),
        ]
    if decision.bypass_reason:
        headers.append((b"x-cache-bypass-reason", decision.bypass_reason.encode("latin-1")))
    elif decision.curated_skip:
        headers.append((b"x-cache-bypass-reason", f"curated_tier:{decision.curated_skip}".encode("latin-1")))
    if decision.shadow:
        headers.append((b"x-shadow-decision", decision.shadow.encode("latin-1")))
    guard = guard_label(decision.guard)
    if guard:
        headers.append((b"x-cache-guard", guard.encode("latin-1")))
    headers.append((b"server-timing", server_timing(request, decision).encode("latin-1")))
    return headers


def guard_label(verdict: CandidateVerdict | None) -> str | None:
    """The second check as X-Cache-Guard says it: pass, rejected:<reason>, would-reject:<reason>."""
    if verdict is None or verdict.guard is None:
        return None
    if verdict.guard.ok:
        return "pass"
    return f"{'would-reject' if verdict.guard_mode == 'shadow' else 'rejected'}:{verdict.guard.reason}"


def server_timing(request: Request, decision: Decision) -> str:
    """The decision's stages, then ``total``: the service's time from the request's arrival to now (the
    response's headers), at 0.01 ms."""
    total = (time.perf_counter() - request.state.started) * 1000
    stages = decision.timings.header()
    return f"{stages}, total;dur={total:.2f}" if stages else f"total;dur={total:.2f}"


def answer_headers(request: Request, req: AnswerRequest, answer: Answer) -> RawHeaders:
    return [(b"x-writing-source", answer.source.encode("latin-1")), *decision_headers(request, req, answer.decision)]


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
        prompt_hash=req.prompt_hash,
        matched=matched,
        issued=int(time.time()),
    )
    return request.app.state.feedback_tokens.issue(served)


async def reviews_of(request: Request) -> Reviews:
    """Feedback as the core's service (``writing.core.reviews``), built once by the lifespan."""
    return request.app.state.reviews


ReviewsDep = Annotated[Reviews, Depends(reviews_of)]


async def changes_of(request: Request) -> ChangeLog:
    """The undo journal of admin changes (``writing.core.undo``): intent before, outcome and audit after."""
    return request.app.state.changes


async def undoer_of(request: Request) -> Undoer:
    return request.app.state.undoer


async def budget_of(request: Request) -> BudgetService:
    """The error budget's plans, verification and evidence (``writing.core.budget``)."""
    return request.app.state.budget


BudgetDep = Annotated[BudgetService, Depends(budget_of)]
ChangesDep = Annotated[ChangeLog, Depends(changes_of)]
UndoerDep = Annotated[Undoer, Depends(undoer_of)]


def actor_of(request: Request) -> str:
    """Who an audit entry names: the admin's key id (or loopback with no keys configured)."""
    return caller_of(request).label
