"""Feedback: callers report a wrong (or good) answer; admins review, confirm, dismiss and export.

``POST /v1/feedback`` takes the answer's ``X-Request-ID`` and ``X-Feedback-Token`` (core/feedback.py):
the token says what was served to whom, so the report works on any worker or replica. A "wrong" hit
stops being served for that prompt (and its near-identical rewordings) to the reporter's tenant at
once; an admin's confirmation extends that to every tenant, a dismissal lifts it. Reports are counted
in metrics by verdict, tier and similarity band, and exported as labelled pairs to re-choose the
thresholds from real mistakes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Literal

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from writing.adapters.milvus.records import (
    CONFIRMED,
    DISMISSED,
    OPEN,
    LabelledPair,
    MilvusFeedbackStore,
    Report,
    report_id,
)
from writing.api.auth import caller_of, require_admin, tenant_of
from writing.api.deps import corpus_writer, record_audit, service_of, store_of
from writing.api.errors import ADMIN_STATUSES, error_responses
from writing.api.protocol.admin import CURSOR, DeletedCount, FeedbackAck, FeedbackRequest, ReportOut, ReportPage
from writing.api.protocol.base import row_id
from writing.api.protocol.console import LabelOut, LabelPage, ResolveRequest, ResolveResponse
from writing.core.corpus import make_passage
from writing.core.feedback import TOKEN_PROMPT_CHARS, Block, Blocklist, InvalidToken, similarity_band
from writing.core.models import CURATED, GENERATED
from writing.errors import InvalidRequest, NotFound, TooManyRequests

ADMIN = [Depends(require_admin)]
logger = logging.getLogger(__name__)


class RateLimiter:
    """At most ``per_minute`` events per key in any 60 seconds (per process)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        window = self._seen.setdefault(key, deque())
        while window and now - window[0] > 60:
            window.popleft()
        if len(window) >= self.per_minute:
            return False
        window.append(now)
        if len(self._seen) > 10_000:  # forget idle keys
            for k in [k for k, w in self._seen.items() if not w or now - w[-1] > 60]:
                del self._seen[k]
        return True


def _out(r: Report) -> ReportOut:
    return ReportOut(
        id=r.id,
        ts=r.ts,
        request_id=r.request_id,
        tenant=r.tenant,
        actor=r.actor,
        tier=r.tier,
        entry_id=r.entry_id,
        similarity=r.similarity,
        verdict=r.verdict,
        note=r.note,
        prompt=r.prompt,
        matched=r.matched,
        status=r.status,
    )


def _relabel(report: Report, body: ResolveRequest, actor: str) -> tuple[LabelledPair, bool]:
    """The pair a relabel adds to the evaluation set, and whether the served entry was right after all."""
    if report.tier == CURATED:
        expected = body.expected_biz_id.strip() if body.expected_biz_id else ""
        label = "answer" if expected else "none"
        right = bool(expected) and expected == report.matched
    elif report.tier == GENERATED:
        if body.label is None:
            raise InvalidRequest("relabel of a generated hit needs 'label': same or different")
        expected, label, right = report.matched, body.label, body.label == "same"
    else:
        raise InvalidRequest("relabel needs a hit to label: the LLM answered this request")
    pair = LabelledPair(
        id=report.id,  # one label per report: relabelling again replaces it
        ts=int(time.time()),
        actor=actor,
        tier=report.tier,
        prompt=report.prompt,
        expected=expected,
        label=label,
        report_id=report.id,
    )
    return pair, right


def block_of(report: Report, vector) -> Block | None:
    """The block a report puts in place: wrong hits only; the tenant's until confirmed, everyone's after."""
    if report.verdict != "wrong" or report.entry_id is None or report.status == DISMISSED:
        return None
    tenant = None if report.status == CONFIRMED else report.tenant
    return Block(report.id, report.tier, report.entry_id, np.asarray(vector, dtype=np.float32), tenant)


async def refresh_blocklist(feedback: MilvusFeedbackStore, blocklist: Blocklist, dim: int) -> int:
    """Reload every blocking report (reports made on other workers, admin decisions)."""

    def load() -> list:
        feedback.open(dim)
        return [block for r, v in feedback.blocking() if (block := block_of(r, v)) is not None]

    started = time.monotonic()
    blocks = await asyncio.to_thread(load)
    before = len(blocklist)
    blocklist.replace(blocks, loaded_since=started)
    if len(blocklist) != before:
        logger.info("blocklist reloaded: %d blocks (was %d)", len(blocklist), before)
    return len(blocks)


def build_router() -> APIRouter:
    router = APIRouter(tags=["feedback"])

    @router.post(
        "/v1/feedback",
        response_model=FeedbackAck,
        responses=error_responses(404, 429),
        summary="Report an answer as wrong or good (callers allowed).",
    )
    async def report(request: Request, body: FeedbackRequest) -> FeedbackAck:
        state = request.app.state
        caller = caller_of(request)
        limiter_key = caller.key_id or (request.client.host if request.client else "unknown")
        if not state.feedback_limiter.allow(limiter_key):
            raise TooManyRequests(
                f"at most {state.feedback_limiter.per_minute} feedback reports a minute per key "
                "(FEEDBACK_RATE_PER_MINUTE); retry later"
            )
        try:
            served = state.feedback_tokens.verify(body.token)
        except InvalidToken as exc:
            raise InvalidRequest(f"token: {exc}; send the X-Feedback-Token of the answer you report") from None
        if served.request_id != body.request_id or served.tenant != tenant_of(request):
            raise NotFound(f"no answer with request id {body.request_id} for your tenant")
        service = service_of(request)
        prompt_complete = len(served.prompt) < TOKEN_PROMPT_CHARS
        query = await request.app.state.batcher.embed_query(served.prompt)
        entry = Report(
            id=report_id(served.tenant, served.request_id),
            ts=int(time.time()),
            request_id=served.request_id,
            tenant=served.tenant,
            actor=caller.label,
            tier=served.tier,
            entry_id=served.entry_id,
            similarity=served.similarity,
            verdict=body.verdict,
            note=body.note or "",
            prompt=served.prompt,
            prompt_hash=served.prompt_hash,
            matched=served.matched,
            status=OPEN,
        )
        feedback: MilvusFeedbackStore = state.feedback_store
        dim = state.batcher.dim

        def save() -> None:
            feedback.open(dim)
            feedback.save(entry, query.vector)

        await service.run_store_op(save)
        block = block_of(entry, query.vector) if prompt_complete else None
        if block is not None:
            service.blocklist.add(block)
        else:
            service.blocklist.remove(entry.id)  # a changed verdict lifts an earlier block
        state.metrics.feedback_reports.labels(body.verdict, served.tier, similarity_band(served.similarity)).inc()
        return FeedbackAck(report_id=entry.id, tier=served.tier, blocked_for="tenant" if block else "nobody")

    @router.get(
        "/v1/feedback", response_model=ReportPage, responses=error_responses(*ADMIN_STATUSES), dependencies=ADMIN
    )
    async def list_reports(
        request: Request,
        status: Literal["open", "confirmed", "dismissed"] | None = None,
        tier: Literal["curated", "generated", "llm"] | None = None,
        verdict: Literal["wrong", "good"] | None = None,
        cursor: int = CURSOR,
        limit: int = Query(50, ge=1, le=500),
    ) -> ReportPage:
        feedback: MilvusFeedbackStore = request.app.state.feedback_store
        dim = request.app.state.batcher.dim

        def page():
            feedback.open(dim)
            return feedback.list_reports(status=status, tier=tier, verdict=verdict, after=cursor, limit=limit)

        items, next_cursor = await service_of(request).run_store_op(page)
        return ReportPage(items=[_out(r) for r in items], next_cursor=next_cursor)

    async def set_status(
        request: Request, rid: int, status: str, action: str | None = None, detail: dict | None = None
    ) -> ReportOut:
        feedback: MilvusFeedbackStore = request.app.state.feedback_store
        dim = request.app.state.batcher.dim
        service = service_of(request)

        def update():
            feedback.open(dim)
            found = feedback.get(rid)
            if found is None:
                return None
            report, vector = found
            changed = dataclasses.replace(report, status=status)
            feedback.save(changed, vector)
            return changed, vector

        done = await service.run_store_op(update)
        if done is None:
            raise NotFound(f"no feedback report with id {rid}")
        changed, vector = done
        block = block_of(changed, vector)
        if block is not None:
            service.blocklist.add(block)
        else:
            service.blocklist.remove(rid)
        action = action or ("feedback.confirm" if status == CONFIRMED else "feedback.dismiss")
        await record_audit(request, action, str(rid), {"report": _out(changed).model_dump(), **(detail or {})})
        return _out(changed)

    @router.post(
        "/v1/feedback/{report_id:int}/confirm",
        response_model=ReportOut,
        responses=error_responses(404, *ADMIN_STATUSES),
        dependencies=ADMIN,
        summary="Confirm a wrong-hit report: the entry stops being served for that prompt to every tenant.",
    )
    async def confirm(request: Request, report_id: int = row_id()) -> ReportOut:
        return await set_status(request, report_id, CONFIRMED)

    @router.post(
        "/v1/feedback/{report_id:int}/dismiss",
        response_model=ReportOut,
        responses=error_responses(404, *ADMIN_STATUSES),
        dependencies=ADMIN,
        summary="Dismiss a report: any block it put in place is lifted.",
    )
    async def dismiss(request: Request, report_id: int = row_id()) -> ReportOut:
        return await set_status(request, report_id, DISMISSED)

    @router.post(
        "/v1/feedback/{report_id:int}/resolve",
        response_model=ResolveResponse,
        responses=error_responses(404, 409, *ADMIN_STATUSES),
        dependencies=ADMIN,
        summary="Resolve a report: delete the served entry, block it, dismiss, promote a better passage, or relabel.",
    )
    async def resolve(request: Request, body: ResolveRequest, report_id: int = row_id()) -> ResolveResponse:
        state = request.app.state
        service, store = service_of(request), store_of(request)
        feedback: MilvusFeedbackStore = state.feedback_store
        dim = state.batcher.dim

        def load():
            feedback.open(dim)
            return feedback.get(report_id)

        found = await service.run_store_op(load)
        if found is None:
            raise NotFound(f"no feedback report with id {report_id}")
        report, vector = found
        detail: dict = {}
        status = CONFIRMED
        if body.action == "dismiss":
            status = DISMISSED
        elif body.action == "delete_entry":
            detail = await _delete_entry(request, report)
        elif body.action == "promote":
            if body.content is None:
                raise InvalidRequest("promote needs 'content': the passage that should answer this prompt")
            passage = make_passage({"content": body.content, "biz_id": body.biz_id or ""})
            writer = corpus_writer(request)

            def promote() -> dict:
                added = writer.add([passage])
                key_id = store.add_retrieval_key(added.ids[0], report.prompt, vector)
                return {"passage_id": added.ids[0], "duplicate": added.duplicate[0], "retrieval_key_id": key_id}

            detail = await service.run_store_op(promote)
        elif body.action == "relabel":
            pair, right = _relabel(report, body, caller_of(request).label)
            await service.run_store_op(lambda: state.labels.save(pair))
            status = DISMISSED if right else CONFIRMED
            detail = {"label_id": pair.id, "pair": pair.as_pair()}
        out = await set_status(request, report_id, status, f"feedback.{body.action}", detail)
        return ResolveResponse(report=out, action=body.action, detail=detail)

    async def _delete_entry(request: Request, report: Report) -> dict:
        service = service_of(request)
        if report.entry_id is None or report.tier not in (CURATED, GENERATED):
            raise InvalidRequest("this report names no stored entry (the LLM answered): nothing to delete")
        if report.tier == CURATED:
            store = store_of(request)
            rows = await service.run_store_op(lambda: store.get_passages([report.entry_id]))
            deleted = await service.run_store_op(lambda: store.delete_passages(ids=[report.entry_id])) if rows else 0
            return {"deleted": rows, "count": deleted}
        answers = service.answer_cache
        if answers is None:
            raise InvalidRequest("the answer cache is off (ANSWER_CACHE=false): there is no stored answer to delete")
        got = await service.run_answers_op(lambda: answers.get_answer(report.entry_id))
        deleted = await service.run_answers_op(lambda: answers.delete_answer(report.entry_id)) if got else False
        return {"deleted_answer": dataclasses.asdict(got) if got else None, "count": int(deleted)}

    @router.get("/v1/labels", response_model=LabelPage, responses=error_responses(*ADMIN_STATUSES), dependencies=ADMIN)
    async def list_labels(
        request: Request,
        tier: Literal["curated", "generated"] | None = None,
        cursor: int = CURSOR,
        limit: int = Query(50, ge=1, le=500),
    ) -> LabelPage:
        labels = request.app.state.labels
        items, next_cursor = await service_of(request).run_store_op(
            lambda: labels.list_pairs(tier=tier, after=cursor, limit=limit)
        )
        return LabelPage(items=[LabelOut(**dataclasses.asdict(p)) for p in items], next_cursor=next_cursor)

    @router.delete(
        "/v1/labels/{label_id:int}",
        response_model=DeletedCount,
        responses=error_responses(404, *ADMIN_STATUSES),
        dependencies=ADMIN,
        summary="Remove a relabelled pair from the evaluation set.",
    )
    async def delete_label(request: Request, label_id: int = row_id()) -> DeletedCount:
        labels = request.app.state.labels
        if not await service_of(request).run_store_op(lambda: labels.delete(label_id)):
            raise NotFound(f"no labelled pair with id {label_id}")
        await record_audit(request, "labels.delete", str(label_id), {})
        return DeletedCount(deleted=1)

    @router.get(
        "/v1/feedback/export",
        responses={200: {"content": {"application/x-ndjson": {}}}, **error_responses(*ADMIN_STATUSES)},
        response_class=StreamingResponse,
        dependencies=ADMIN,
        summary="Reports as labelled pairs: curated in calibrate.py's --pairs format, generated as prompt pairs.",
    )
    async def export(request: Request, tier: Literal["curated", "generated"] = CURATED) -> StreamingResponse:
        feedback: MilvusFeedbackStore = request.app.state.feedback_store
        dim = request.app.state.batcher.dim

        def load() -> list[Report]:
            feedback.open(dim)
            expr = f'tier == "{tier}" and status in ["{OPEN}", "{CONFIRMED}"]'
            return [r for page in feedback.iter_reports(expr) for r, _ in page]

        reports = await service_of(request).run_store_op(load)

        async def lines() -> AsyncIterator[str]:
            for r in reports:
                yield json.dumps(r.as_pair(), ensure_ascii=False) + "\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return router
