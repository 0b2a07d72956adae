"""The audit log of admin actions (``GET /v1/audit``): who did what, with enough to undo it. Read through
the records' link (``writing.core.links``): its own failure domain."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from writing.api.auth import require_admin
from writing.api.deps import StoresDep
from writing.api.errors import ADMIN_STATUSES, error_responses
from writing.api.protocol.admin import CURSOR, AuditOut, AuditPage


def build_router() -> APIRouter:
    router = APIRouter(tags=["audit"], dependencies=[Depends(require_admin)])

    @router.get("/v1/audit", response_model=AuditPage, responses=error_responses(*ADMIN_STATUSES))
    async def audit_log(
        stores: StoresDep,
        action: str | None = Query(None, min_length=1, max_length=64, pattern=r"^[a-z_.]+$"),
        since: float | None = Query(None, ge=0, le=100 * 365 * 24 * 3600.0, description="Seconds back from now."),
        cursor: int = CURSOR,
        limit: int = Query(50, ge=1, le=500),
    ) -> AuditPage:
        audit = stores.audit

        def page():
            audit.open()
            return audit.list_entries(action=action, since=since, after=cursor, limit=limit)

        items, next_cursor = await stores.links.records.call(page)
        return AuditPage(
            items=[
                AuditOut(id=e.id, ts=e.ts, actor=e.actor, action=e.action, target=e.target, detail=e.detail)
                for e in items
            ],
            next_cursor=next_cursor,
        )

    return router
