"""The error budget, for admins: its plans and verification (``GET /v1/budget``, ``POST
/v1/budget/replan``) and its evidence (``GET /v1/evidence``, ``/v1/evidence/export``, ``DELETE
/v1/evidence``). Each route makes one call to ``writing.core.budget.service``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from writing.api.auth import require_admin
from writing.api.deps import BudgetDep, SettingsDep, actor_of
from writing.api.errors import ADMIN_STATUSES, error_responses
from writing.api.protocol.admin import CURSOR
from writing.api.protocol.budget import (
    BUDGET_TIER,
    TENANT,
    BoundOut,
    BudgetOut,
    EvidenceDeleted,
    EvidenceOut,
    EvidencePage,
    TierBudgetOut,
    VerificationOut,
)
from writing.core.budget.keeper import TierPlan
from writing.core.budget.labels import Label
from writing.settings import Settings

ENTRIES_SHOWN = 100


def _tier(p: TierPlan, settings: Settings) -> TierBudgetOut:
    choice = p.plan.tier
    b = choice.bound
    entries = sorted(p.plan.entries.items())[:ENTRIES_SHOWN]
    return TierBudgetOut(
        tier=p.tier,  # type: ignore[arg-type]
        budget=p.budget.rate,
        confidence=p.budget.confidence,
        mode=settings.error_budget_mode,
        threshold=choice.value,
        configured=p.configured,
        applied=p.applied,
        reason=choice.reason,  # type: ignore[arg-type]
        bound=BoundOut(estimate=b.estimate, upper=b.upper, labels=b.labels, effective=b.effective),
        bounds=(p.budget.low, p.budget.high),
        entries_with_own_threshold=len(p.plan.entries),
        entries={str(e): c.value for e, c in entries},
        judge_labels=p.judge_labels,
        admin_labels=p.admin_labels,
        planned_at=p.at,
    )


def _view(budget, settings: Settings) -> BudgetOut:
    return BudgetOut(
        tiers=[_tier(p, settings) for p in budget.plans().values()],
        verification=VerificationOut(**budget.verification()),
        judge={"miss": settings.verify_judge_miss_rate, "false_alarm": settings.verify_judge_false_alarm_rate},
    )


def _out(x: Label) -> EvidenceOut:
    return EvidenceOut(**dataclasses.asdict(x))


async def _ndjson(labels: AsyncIterator[Label]) -> AsyncIterator[str]:
    async for x in labels:
        yield json.dumps(dataclasses.asdict(x), ensure_ascii=False) + "\n"


def build_router() -> APIRouter:
    router = APIRouter(tags=["error budget"], dependencies=[Depends(require_admin)])

    @router.get(
        "/v1/budget",
        response_model=BudgetOut,
        responses=error_responses(*ADMIN_STATUSES),
        summary="The error budget per tier: the wrong-hit rate with its bound, the threshold and why; verification.",
    )
    async def budget_state(budget: BudgetDep, settings: SettingsDep) -> BudgetOut:
        return _view(budget, settings)

    @router.post(
        "/v1/budget/replan",
        response_model=BudgetOut,
        responses=error_responses(409, *ADMIN_STATUSES),
        summary="Plan the budgeted thresholds from the evidence now (else every ERROR_BUDGET_INTERVAL).",
    )
    async def replan(budget: BudgetDep, settings: SettingsDep) -> BudgetOut:
        await budget.replan()
        return _view(budget, settings)

    @router.get("/v1/evidence", response_model=EvidencePage, responses=error_responses(*ADMIN_STATUSES))
    async def evidence(
        budget: BudgetDep,
        tier: BUDGET_TIER | None = None,
        tenant: str | None = TENANT,
        cursor: int = CURSOR,
        limit: int = Query(100, ge=1, le=1000),
    ) -> EvidencePage:
        items, next_cursor = await budget.page(tier=tier, tenant=tenant, after=cursor, limit=limit)
        return EvidencePage(items=[_out(x) for x in items], next_cursor=next_cursor)

    @router.get(
        "/v1/evidence/export",
        responses={200: {"content": {"application/x-ndjson": {}}}, **error_responses(*ADMIN_STATUSES)},
        response_class=StreamingResponse,
        summary="Every verified label as JSON lines (oldest first).",
    )
    async def export(budget: BudgetDep, tier: BUDGET_TIER | None = None) -> StreamingResponse:
        labels = await budget.export(tier)
        return StreamingResponse(_ndjson(labels), media_type="application/x-ndjson")

    @router.delete(
        "/v1/evidence",
        response_model=EvidenceDeleted,
        responses=error_responses(*ADMIN_STATUSES),
        summary="Delete a tenant's verified labels (or all=true: every one); journaled, so it can be undone.",
    )
    async def delete_evidence(
        request: Request,
        budget: BudgetDep,
        tenant: str | None = TENANT,
        all: bool = Query(False, description="Delete every label (needed when no tenant is given)."),  # noqa: A002
    ) -> EvidenceDeleted:
        deleted = await budget.delete(tenant=tenant, everything=all, actor=actor_of(request))
        return EvidenceDeleted(deleted=deleted)

    return router
