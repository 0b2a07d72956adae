"""What the error budget learns from: one label per verified (or reported) candidate.

A label says whether one candidate was wrong for one request, at the similarity it had. Its source says
how far to trust it: an admin's decision (a confirmed report, a relabel) is taken as the truth; a judge's
verdict is wrong at the judge's error rates (``JudgeErrors``), estimated from labelled pairs and
corrected for. A verified label carries the probability with which it was sampled: the bound weighs it
by the inverse, so that oversampling new entries and near-threshold hits does not skew the estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

JUDGE, ADMIN = "judge", "admin"
SOURCES = (JUDGE, ADMIN)


@dataclass(frozen=True)
class JudgeErrors:
    """How often the judge is wrong: ``miss``, it says 是 (fulfils) of a wrong candidate; ``false_alarm``,
    it says 否 of a right one. Their sum must stay below 1 (a judge no better than a coin tells nothing)."""

    miss: float = 0.0
    false_alarm: float = 0.0

    def __post_init__(self) -> None:
        if not (0 <= self.miss < 1 and 0 <= self.false_alarm < 1 and self.miss + self.false_alarm < 0.95):
            raise ValueError(f"judge error rates miss={self.miss}, false_alarm={self.false_alarm} tell nothing")

    @property
    def informative(self) -> float:
        """1 - miss - false_alarm: how much of a verdict is signal."""
        return 1.0 - self.miss - self.false_alarm


EXACT = JudgeErrors()


@dataclass(frozen=True)
class Label:
    tier: str  # curated | generated
    entry_id: int  # the passage or stored answer
    similarity: float
    wrong: bool  # as the source says
    source: str = JUDGE  # judge | admin
    sampled_with: float = 1.0  # the probability the candidate was sampled for verification (judge labels)
    tenant: str = ""  # whose request it was (the owner: DELETE /v1/evidence?tenant= removes its labels)
    ts: int = 0
    id: int = 0  # the evidence store's id (0: not stored)
