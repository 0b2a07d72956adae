"""Thresholds that keep the budget: the lowest threshold whose bound on the wrong-hit rate stays within it.

Per tier, and per entry where an entry has enough labels of its own. The threshold steps down from the
tier's upper bound and never below the lowest similarity a label has seen (below it nothing is known;
verification of misses, ``writing.core.budget.sampling``, is what moves the evidence down).
Every value stays within the tier's run-time bounds. An entry gets a threshold of its own once its
labels show the budget kept at one (at 2% and 95% confidence that takes some 135 labels without a wrong
one), or the tier's upper bound once they show it worse than the budget at every threshold (its lower
bound above the budget); until then it follows the tier. The tier threshold comes from the labels of the entries without
one of their own (all labels while those are too few); with too few labels at all the configured
threshold stays, reported as ``no_evidence``; with labels that show the budget kept at no threshold,
the tier's upper bound (``budget_not_shown``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from writing.core.budget.bound import RateBound, Tally, wilson_upper, wrong_rate, z_of
from writing.core.budget.labels import JudgeErrors, Label

NO_LABELS, WITHIN, NOT_SHOWN = "no_evidence", "within_budget", "budget_not_shown"


@dataclass(frozen=True)
class Budget:
    rate: float  # the share of served hits that may be wrong (ERROR_BUDGET_CURATED / _ANSWER)
    low: float  # the tier's run-time bounds (SIMILARITY_THRESHOLD_MIN/MAX, ANSWER_CACHE_THRESHOLD_MIN/MAX)
    high: float
    confidence: float = 0.95
    min_labels: int = 30  # below this a tier keeps its configured threshold
    entry_min_labels: int = 20  # an entry with this many labels gets a threshold of its own
    step: float = 0.005  # the grid the thresholds step down on

    def __post_init__(self) -> None:
        if not (0 < self.rate < 1 and 0 < self.low <= self.high <= 1):
            raise ValueError(f"an error budget needs 0 < rate < 1 and 0 < low <= high <= 1: {self}")


@dataclass(frozen=True)
class Choice:
    value: float
    reason: str  # no_evidence | within_budget | budget_not_shown
    bound: RateBound  # of the labels at or above the value


@dataclass(frozen=True)
class Plan:
    tier: Choice
    entries: dict[int, Choice] = field(default_factory=dict)

    def threshold_for(self, entry_id: int) -> float:
        own = self.entries.get(entry_id)
        return own.value if own is not None else self.tier.value


def lowest_within(
    labels: Sequence[Label], budget: Budget, judge: JudgeErrors, *, min_labels: int, configured: float
) -> Choice:
    """Step down from the upper bound on a fixed grid (``budget.step``) and keep the last threshold whose
    labels at or above it keep the bound within the budget; stop at the first that does not (fixed-
    sequence testing: each test at the full confidence, no correction for the number of steps, as long
    as the steps are taken in this order). A step whose labels could not show the budget even with none
    wrong is no test: it is passed over. Never below the lowest labelled similarity; the upper bound
    when no step passes; ``configured`` when there are too few labels to say."""
    inside = sorted((x for x in labels if x.similarity >= budget.low), key=lambda x: -x.similarity)
    if len(inside) < min_labels:
        return Choice(configured, NO_LABELS, wrong_rate(inside, judge, budget.confidence))
    z = z_of(budget.confidence)
    best: Choice | None = None
    tally = Tally(judge)
    taken = 0
    steps = int(round((budget.high - budget.low) / budget.step))
    for k in range(steps + 1):
        t = round(budget.high - k * budget.step, 6)
        if t < inside[-1].similarity:
            break  # below every label: nothing is known there
        while taken < len(inside) and inside[taken].similarity >= t:
            tally.add(inside[taken])
            taken += 1
        if taken < min_labels or wilson_upper(0.0, tally.effective(), z) > budget.rate:
            continue  # too few labels to show the budget at all: no test
        bound = tally.bound(budget.confidence)
        if bound.upper > budget.rate:
            break
        best = Choice(t, WITHIN, bound)
    if best is not None:
        return best
    return Choice(budget.high, NOT_SHOWN, wrong_rate(inside, judge, budget.confidence))  # every label: why none passed


def plan(labels: Sequence[Label], budget: Budget, judge: JudgeErrors, configured: float) -> Plan:
    """The tier's threshold and each well-labelled entry's own."""
    by_entry: dict[int, list[Label]] = defaultdict(list)
    for label in labels:
        by_entry[label.entry_id].append(label)
    entries = {}
    for entry, own in by_entry.items():
        if len(own) >= budget.entry_min_labels:
            choice = lowest_within(own, budget, judge, min_labels=budget.entry_min_labels, configured=configured)
            if choice.reason == WITHIN:
                entries[entry] = choice
            elif choice.reason == NOT_SHOWN and wrong_rate(own, judge, budget.confidence).lower > budget.rate:
                entries[entry] = choice  # shown worse than the budget at every threshold: the upper bound
            # else: not shown either way yet; it follows the tier
    rest = [x for entry, own in by_entry.items() if entry not in entries for x in own]
    pooled = rest if len(rest) >= budget.min_labels else list(labels)
    tier = lowest_within(pooled, budget, judge, min_labels=budget.min_labels, configured=configured)
    return Plan(tier=tier, entries=entries)
