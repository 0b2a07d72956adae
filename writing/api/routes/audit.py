"""The audit log of admin actions (``GET /v1/audit``), the undo journal behind it (``GET
/v1/audit/journal``) and undo (``POST /v1/audit/{id}/undo``). Read and written through the records' link
(``writing.core.links``): its own failure domain."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from writing.api.auth import require_admin
from writing.api.deps import ChangesDep, StoresDep, UndoerDep, actor_of
from writing.api.errors import ADMIN_STATUSES, error_responses
from writing.api.protocol.admin import (
    CURSOR,
    AuditOut,
    AuditPage,
    JournalOut,
    JournalPage,
    UndoConflict,
    UndoOut,
)
from writing.api.protocol.base import row_id
from writing.core.undo.entries import STATES


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

    @router.get(
        "/v1/audit/journal",
        response_model=JournalPage,
        responses=error_responses(*ADMIN_STATUSES),
        summary="The undo journal: every journaled change with its state (interrupted ones have no audit entry).",
    )
    async def journal(
        changes: ChangesDep,
        state: str | None = Query(None, pattern=f"^({'|'.join(STATES)})$"),
        cursor: int = CURSOR,
        limit: int = Query(50, ge=1, le=500),
    ) -> JournalPage:
        items, next_cursor = await changes.list_entries(state=state, after=cursor, limit=limit)
        return JournalPage(items=[JournalOut(**vars(e)) for e in items], next_cursor=next_cursor)

    @router.post(
        "/v1/audit/{entry_id:int}/undo",
        response_model=UndoOut,
        responses=error_responses(404, 409, *ADMIN_STATUSES),
        summary="Undo a journaled change; what changed since is left alone and reported as a conflict.",
    )
    async def undo(request: Request, undoer: UndoerDep, entry_id: int = row_id()) -> UndoOut:
        entry, result, audit_id = await undoer.undo(entry_id, actor_of(request))
        return UndoOut(
            undone=entry.id,
            action=entry.action,
            was=entry.state,
            audit_id=audit_id,
            applied=result.applied,
            conflicts=[UndoConflict(target=c.target, reason=c.reason) for c in result.conflicts],
        )

    return router
