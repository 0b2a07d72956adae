"""Keeping the budget: every ``ERROR_BUDGET_INTERVAL`` seconds each worker reads the evidence (the judge's
labels within ``ERROR_BUDGET_WINDOW_DAYS``, and the admin-confirmed reports by the weight-of-evidence
rule), plans each budgeted tier's threshold and its entries' own (``writing.core.budget.thresholds``),
and in ``enforce`` mode applies them: the tier's threshold through ``RuntimeThresholds`` (within its
run-time bounds), the entries' through the candidate judge. Every worker reads the same shared evidence,
so every worker reaches the same plan. A change of a tier's threshold is audited (actor
``error-budget``). In ``shadow`` mode the plan is only reported (``GET /v1/budget``): what would change.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from writing.core.budget.from_reports import from_reports, right_after_all
from writing.core.budget.labels import JudgeErrors, Label
from writing.core.budget.thresholds import NO_LABELS, Budget, Plan, plan
from writing.core.judge import CandidateJudge
from writing.core.links import Link
from writing.core.models import CURATED, GENERATED
from writing.core.ports import AuditTrail, EvidenceRepository, ReportRepository
from writing.core.reports import CONFIRMED, LabelledPair
from writing.core.tuning import ANSWER_TIER, CURATED_TIER, RuntimeThresholds

logger = logging.getLogger(__name__)

ENFORCE, SHADOW = "enforce", "shadow"
ACTOR = "error-budget"
MODEL_TIER = {CURATED_TIER: CURATED, ANSWER_TIER: GENERATED}  # the budget's tier -> the candidate judge's


@dataclass(frozen=True)
class TierPlan:
    """What the keeper last found for a tier, and what it applied."""

    tier: str
    budget: Budget
    configured: float  # the threshold without the budget (an admin's run-time one, else the environment's)
    plan: Plan
    applied: bool  # enforce mode, and the plan had evidence enough to apply
    judge_labels: int
    admin_labels: int
    at: int  # unix seconds


class BudgetKeeper:
    def __init__(
        self,
        *,
        budgets: dict[str, Budget],  # curated | answer -> its budget (only the budgeted tiers)
        evidence: EvidenceRepository,
        reports: ReportRepository,
        relabels: Callable[[str], Iterable[LabelledPair]],  # a tier's labelled pairs (the labels store)
        audit: AuditTrail,
        link: Link,  # the records' link
        judge_errors: JudgeErrors,
        mode: str,
        window_days: float,
        thresholds: RuntimeThresholds,
        judge: CandidateJudge,
        on_counts: Callable[[dict[tuple[str, int], int]], None] | None = None,  # labels per entry (sampling)
        on_plan: Callable[[TierPlan], None] | None = None,  # metrics
    ) -> None:
        self.budgets = budgets
        self.evidence = evidence
        self.reports = reports
        self.relabels = relabels
        self.audit = audit
        self.link = link
        self.judge_errors = judge_errors
        self.mode = mode
        self.window_s = window_days * 86400
        self.thresholds = thresholds
        self.judge = judge
        self.on_counts = on_counts
        self.on_plan = on_plan
        self.plans: dict[str, TierPlan] = {}

    async def replan(self) -> dict[str, TierPlan]:
        since = int(time.time() - self.window_s)
        judged, admin = await self.link.call(lambda: self._read(since))
        counts: Counter[tuple[str, int]] = Counter((x.tier, x.entry_id) for xs in judged.values() for x in xs)
        if self.on_counts is not None:
            self.on_counts(dict(counts))
        for tier, budget in self.budgets.items():
            own = [x for x in admin if x.tier == tier]
            configured = self.thresholds.configured(tier)
            chosen = plan(judged[tier] + own, budget, self.judge_errors, configured)
            applies = self.mode == ENFORCE and chosen.tier.reason != NO_LABELS
            before = self.plans.get(tier)
            found = TierPlan(tier, budget, configured, chosen, applies, len(judged[tier]), len(own), int(time.time()))
            self.plans[tier] = found
            if self.mode == ENFORCE:
                self._apply(found)
            if self.on_plan is not None:
                self.on_plan(found)
            await self._audit_change(before, found)
        return self.plans

    def _read(self, since: int) -> tuple[dict[str, list[Label]], list[Label]]:
        """The judge's labels per budgeted tier and the admin's (blocking: the records' link's thread)."""
        purged = self.evidence.delete(before=since)
        if purged:
            logger.info("error budget: %d labels past ERROR_BUDGET_WINDOW_DAYS purged", purged)
        judged = {tier: self.evidence.labels(tier, since) for tier in self.budgets}
        confirmed = []
        for tier in (CURATED, GENERATED):
            after: int | None = 0
            while after is not None:
                page, after = self.reports.report_page(tier=tier, statuses=(CONFIRMED,), after=after, limit=1000)
                confirmed += [r for r in page if r.ts >= since]
        by_id = {r.id: r for r in confirmed}
        pairs = [p for tier in (CURATED, GENERATED) for p in self.relabels(tier)]
        return judged, from_reports(confirmed, right_after_all(pairs, by_id))

    def _apply(self, found: TierPlan) -> None:
        chosen = found.plan
        self.thresholds.set_budgeted(found.tier, chosen.tier.value if found.applied else None)
        entries = {e: c.value for e, c in chosen.entries.items()} if found.applied else {}
        self.judge.set_entry_thresholds(MODEL_TIER[found.tier], chosen.tier.value, entries)

    async def _audit_change(self, before: TierPlan | None, now: TierPlan) -> None:
        old = before.plan.tier.value if before is not None and before.applied else None
        new = now.plan.tier.value if now.applied else None
        if old == new:
            return
        bound = now.plan.tier.bound
        detail = {
            "budget": now.budget.rate,
            "before": old,
            "after": new,
            "reason": now.plan.tier.reason,
            "estimate": round(bound.estimate, 6),
            "upper_bound": round(bound.upper, 6),
            "labels": bound.labels,
            "entries_with_own_threshold": len(now.plan.entries) if now.applied else 0,
            "worker": os.getpid(),
        }
        logger.info("error budget: %s threshold %s -> %s (%s)", now.tier, old, new, now.plan.tier.reason)
        await self.link.call(lambda: self.audit.record(ACTOR, "budget.threshold", now.tier, detail))
