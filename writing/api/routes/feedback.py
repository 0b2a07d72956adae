"""Feedback: callers report a wrong (or good) answer; admins review, confirm, dismiss and export.

``POST /v1/feedback`` takes the answer's ``X-Request-ID`` and ``X-Feedback-Token`` (core/feedback.py):
the token says what was served to whom, so the report works on any worker or replica. A "wrong" hit
stops being served for that prompt (and its near-identical rewordings) to the reporter's tenant at
once; an admin's confirmation extends that to every tenant, a dismissal lifts it. Reports are counted
in metrics by verdict, tier and similarity band, and exported as labelled pairs to re-choose the
thresholds from real mistakes.

The work is the core's (``writing.core.reviews.Reviews``, the ``ReviewsDep`` dependency): each route
makes one call and maps its outcome to HTTP.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from writing.api.auth import caller_of, require_admin, tenant_of
from writing.api.deps import ReviewsDep
from writing.api.errors import ADMIN_STATUSES, error_responses
from writing.api.protocol.admin import CURSOR, DeletedCount, FeedbackAck, FeedbackRequest, ReportOut, ReportPage
from writing.api.protocol.base import row_id
from writing.api.protocol.console import LabelOut, LabelPage, ResolveRequest, ResolveResponse
from writing.core.models import CURATED
from writing.core.reports import Report
from writing.core.reviews import Reporter, Resolution, public

ADMIN = [Depends(require_admin)]


def _out(r: Report) -> ReportOut:
    return ReportOut(**public(r))


def _reporter(request: Request) -> Reporter:
    caller = caller_of(request)
    limit_key = caller.key_id or (request.client.host if request.client else "unknown")
    return Reporter(tenant=tenant_of(request), actor=caller.label, limit_key=limit_key)


def _actor(request: Request) -> str:
    return caller_of(request).label


async def _ndjson(pairs: AsyncIterator[dict]) -> AsyncIterator[str]:
    async for pair in pairs:
        yield json.dumps(pair, ensure_ascii=False) + "\n"


def build_router() -> APIRouter:
    router = APIRouter(tags=["feedback"])

    @router.post(
        "/v1/feedback",
        response_model=FeedbackAck,
        responses=error_responses(404, 409, 429),
        summary="Report an answer as wrong or good (callers allowed).",
    )
    async def report(request: Request, body: FeedbackRequest, reviews: ReviewsDep) -> FeedbackAck:
        ack = await reviews.report(_reporter(request), body.request_id, body.token, body.verdict, body.note)
        return FeedbackAck(report_id=ack.report_id, tier=ack.tier, blocked_for=ack.blocked_for)

    @router.get(
        "/v1/feedback", response_model=ReportPage, responses=error_responses(*ADMIN_STATUSES), dependencies=ADMIN
    )
    async def list_reports(
        reviews: ReviewsDep,
        status: Literal["open", "confirmed", "dismissed"] | None = None,
        tier: Literal["curated", "generated", "llm"] | None = None,
        verdict: Literal["wrong", "good"] | None = None,
        cursor: int = CURSOR,
        limit: int = Query(50, ge=1, le=500),
    ) -> ReportPage:
        items, next_cursor = await reviews.list_reports(
            status=status, tier=tier, verdict=verdict, after=cursor, limit=limit
        )
        return ReportPage(items=[_out(r) for r in items], next_cursor=next_cursor)

    @router.post(
        "/v1/feedback/{report_id:int}/confirm",
        response_model=ReportOut,
        responses=error_responses(404, *ADMIN_STATUSES),
        dependencies=ADMIN,
        summary="Confirm a wrong-hit report: the entry stops being served for that prompt to every tenant.",
    )
    async def confirm(request: Request, reviews: ReviewsDep, report_id: int = row_id()) -> ReportOut:
        return _out(await reviews.confirm(report_id, _actor(request)))

    @router.post(
        "/v1/feedback/{report_id:int}/dismiss",
        response_model=ReportOut,
        responses=error_responses(404, *ADMIN_STATUSES),
        dependencies=ADMIN,
        summary="Dismiss a report: any block it put in place is lifted.",
    )
    async def dismiss(request: Request, reviews: ReviewsDep, report_id: int = row_id()) -> ReportOut:
        return _out(await reviews.dismiss(report_id, _actor(request)))

    @router.post(
        "/v1/feedback/{report_id:int}/resolve",
        response_model=ResolveResponse,
        responses=error_responses(404, 409, *ADMIN_STATUSES),
        dependencies=ADMIN,
        summary="Resolve a report: delete the served entry, block it, dismiss, promote a better passage, or relabel.",
    )
    async def resolve(
        request: Request, body: ResolveRequest, reviews: ReviewsDep, report_id: int = row_id()
    ) -> ResolveResponse:
        resolution = Resolution(
            action=body.action,
            content=body.content,
            biz_id=body.biz_id,
            expected_biz_id=body.expected_biz_id,
            label=body.label,
        )
        done = await reviews.resolve(report_id, resolution, _actor(request))
        return ResolveResponse(report=_out(done.report), action=done.action, detail=done.detail)

    @router.get("/v1/labels", response_model=LabelPage, responses=error_responses(*ADMIN_STATUSES), dependencies=ADMIN)
    async def list_labels(
        reviews: ReviewsDep,
        tier: Literal["curated", "generated"] | None = None,
        cursor: int = CURSOR,
        limit: int = Query(50, ge=1, le=500),
    ) -> LabelPage:
        items, next_cursor = await reviews.list_labels(tier=tier, after=cursor, limit=limit)
        return LabelPage(items=[LabelOut(**dataclasses.asdict(p)) for p in items], next_cursor=next_cursor)

    @router.delete(
        "/v1/labels/{label_id:int}",
        response_model=DeletedCount,
        responses=error_responses(404, *ADMIN_STATUSES),
        dependencies=ADMIN,
        summary="Remove a relabelled pair from the evaluation set.",
    )
    async def delete_label(request: Request, reviews: ReviewsDep, label_id: int = row_id()) -> DeletedCount:
        await reviews.delete_label(label_id, _actor(request))
        return DeletedCount(deleted=1)

    @router.get(
        "/v1/feedback/export",
        responses={200: {"content": {"application/x-ndjson": {}}}, **error_responses(*ADMIN_STATUSES)},
        response_class=StreamingResponse,
        dependencies=ADMIN,
        summary="Reports as labelled pairs: curated in calibrate.py's --pairs format, generated as prompt pairs.",
    )
    async def export(reviews: ReviewsDep, tier: Literal["curated", "generated"] = CURATED) -> StreamingResponse:
        pairs = await reviews.export(tier)  # the first page now: a store that is down answers 503
        return StreamingResponse(_ndjson(pairs), media_type="application/x-ndjson")

    return router
