"""Request and response models of the error budget's admin surface (``GET /v1/budget``, ``/v1/evidence``)."""

from __future__ import annotations

from typing import Literal

from fastapi import Query
from pydantic import BaseModel, Field

BUDGET_TIER = Literal["curated", "answer"]
TENANT = Query(None, min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")


class BoundOut(BaseModel):
    estimate: float = Field(..., description="The wrong-hit rate the labels show, corrected for the judge's errors.")
    upper: float = Field(..., description="Its upper confidence bound (ERROR_BUDGET_CONFIDENCE).")
    labels: int
    effective: float = Field(..., description="The effective sample size (weights and the judge's noise).")


class TierBudgetOut(BaseModel):
    tier: BUDGET_TIER
    budget: float = Field(..., description="The share of hits that may be wrong.")
    confidence: float
    mode: Literal["enforce", "shadow"]
    threshold: float = Field(..., description="The threshold the plan found (in force when applied).")
    configured: float = Field(..., description="The threshold without the budget (an admin's, else the environment's).")
    applied: bool = Field(..., description="In force on this worker: enforce mode with evidence enough.")
    reason: Literal["no_evidence", "within_budget", "budget_not_shown"]
    bound: BoundOut = Field(..., description="Of the labels at or above the planned threshold.")
    bounds: tuple[float, float] = Field(..., description="The tier's run-time bounds the threshold moves within.")
    entries_with_own_threshold: int
    entries: dict[str, float] = Field(..., description="Entry id -> its own threshold (at most 100 shown).")
    judge_labels: int
    admin_labels: int = Field(..., description="Admin-confirmed wrong reports counted (open reports never count).")
    planned_at: int


class VerificationOut(BaseModel):
    on: bool
    outcomes: dict[str, int] = Field(..., description="What became of the candidates drawn, since this worker started.")
    used_this_minute: int
    per_minute: int
    paused: bool
    queued: int = 0


class BudgetOut(BaseModel):
    tiers: list[TierBudgetOut] = Field(..., description="The budgeted tiers, as this worker last planned them.")
    verification: VerificationOut
    judge: dict[str, float] = Field(..., description="The judge's error rates the estimate is corrected for.")


class EvidenceOut(BaseModel):
    id: int
    ts: int
    tier: BUDGET_TIER
    entry_id: int
    similarity: float
    wrong: bool
    source: str
    sampled_with: float
    tenant: str


class EvidencePage(BaseModel):
    items: list[EvidenceOut]
    next_cursor: int | None


class EvidenceDeleted(BaseModel):
    deleted: int
