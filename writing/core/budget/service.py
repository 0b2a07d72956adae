"""The error budget as the admin API sees it (``GET /v1/budget``, ``/v1/evidence``): the plans, the
verification counts, the evidence page by page, and deleting a tenant's evidence (journaled for undo)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from writing.core.budget.keeper import BudgetKeeper, TierPlan
from writing.core.budget.labels import Label
from writing.core.budget.verifier import OUTCOMES, Verifier
from writing.core.links import Link
from writing.core.ports import EvidenceRepository
from writing.core.undo.service import ChangeLog
from writing.errors import Conflict, InvalidRequest

EXPORT_PAGE = 2000
DELETE_ACTION = "evidence.delete"


class BudgetService:
    def __init__(
        self,
        *,
        keeper: BudgetKeeper | None,
        verifier: Verifier | None,
        evidence: EvidenceRepository,
        link: Link,
        changes: ChangeLog,
    ) -> None:
        self.keeper = keeper
        self.verifier = verifier
        self.evidence = evidence
        self.link = link
        self.changes = changes

    def plans(self) -> dict[str, TierPlan]:
        return dict(self.keeper.plans) if self.keeper is not None else {}

    def verification(self) -> dict:
        v = self.verifier
        if v is None:
            return {"on": False, "outcomes": {}, "used_this_minute": 0, "per_minute": 0, "paused": False}
        return {
            "on": True,
            "outcomes": {k: v.outcomes.get(k, 0) for k in OUTCOMES},
            "used_this_minute": v.used_this_minute(),
            "per_minute": v.cap.per_minute,
            "paused": v.paused(),
            "queued": v.queue.qsize(),
        }

    async def replan(self) -> dict[str, TierPlan]:
        if self.keeper is None:
            raise Conflict("no tier has an error budget (ERROR_BUDGET_CURATED, ERROR_BUDGET_ANSWER)")
        return await self.keeper.replan()

    async def page(
        self, *, tier: str | None, tenant: str | None, after: int, limit: int
    ) -> tuple[list[Label], int | None]:
        return await self.link.call(lambda: self.evidence.page(tier=tier, tenant=tenant, after=after, limit=limit))

    async def export(self, tier: str | None) -> AsyncIterator[Label]:
        """Every label, page by page; the first page is read here (a store that is down fails the call)."""
        first = await self.page(tier=tier, tenant=None, after=0, limit=EXPORT_PAGE)
        return self._rest(tier, first)

    async def _rest(self, tier: str | None, page: tuple[list[Label], int | None]) -> AsyncIterator[Label]:
        items, cursor = page
        while True:
            for label in items:
                yield label
            if cursor is None:
                return
            items, cursor = await self.page(tier=tier, tenant=None, after=cursor, limit=EXPORT_PAGE)

    async def delete(self, *, tenant: str | None, everything: bool, actor: str) -> int:
        """Delete a tenant's labels (or all of them): journaled whole, so the undo puts them back."""
        if tenant is None and not everything:
            raise InvalidRequest("give tenant, or all=true to delete every label")
        doomed: list[Label] = []
        after: int | None = 0
        while after is not None:
            items, after = await self.page(tier=None, tenant=tenant, after=after, limit=EXPORT_PAGE)
            doomed += items
        target = tenant if tenant is not None else "*"
        if not doomed:
            return 0
        intent = {"tenant": tenant, "labels": [dataclasses.asdict(x) for x in doomed]}
        entry = await self.changes.begin(actor, DELETE_ACTION, target, intent)
        deleted = await self.link.call(lambda: self.evidence.delete(tenant=tenant))
        detail = {"tenant": tenant, "deleted": deleted}
        await self.changes.finish(entry, actor, DELETE_ACTION, target, {"deleted": deleted}, detail)
        return deleted
