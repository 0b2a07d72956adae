"""The wrong-hit rate that labels show, and its upper confidence bound.

Each label counts ``(y - f) / (1 - m - f)`` for its observed verdict ``y`` (1: wrong) under its source's
error rates (``m`` miss, ``f`` false alarm; 0 for an admin's label): the expectation of that is the true
wrong rate, whatever the judge's errors. Labels are weighed by the inverse of their sampling probability.
The bound is Wilson's score interval at the effective sample size: Kish's, shrunk by the square of the
judge's informative share (a noisy verdict carries less). With only admin labels and equal weights this
is the plain Wilson bound.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist

from writing.core.budget.labels import ADMIN, EXACT, JudgeErrors, Label


@dataclass(frozen=True)
class RateBound:
    estimate: float  # the corrected wrong-hit rate (clipped to [0, 1])
    upper: float  # its upper confidence bound
    labels: int  # how many labels it rests on
    effective: float  # the effective sample size


NO_EVIDENCE = RateBound(estimate=0.0, upper=1.0, labels=0, effective=0.0)


def z_of(confidence: float) -> float:
    """The one-sided normal quantile for a confidence level in (0.5, 1)."""
    if not 0.5 < confidence < 1:
        raise ValueError(f"a confidence level must be in (0.5, 1); {confidence} is not")
    return NormalDist().inv_cdf(confidence)


def wilson_upper(p: float, n: float, z: float) -> float:
    if n <= 0:
        return 1.0
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(max(p * (1 - p) / n + z2 / (4 * n * n), 0.0))
    return min(1.0, (centre + spread) / (1 + z2 / n))


class Tally:
    """The sums the bound needs, one label at a time (a threshold sweep adds labels in order)."""

    def __init__(self, judge: JudgeErrors) -> None:
        self.judge = judge
        self.total_w = self.total_w2 = self.wrong_w = self.signal_w = 0.0
        self.count = 0

    def add(self, label: Label) -> None:
        errors = EXACT if label.source == ADMIN else self.judge
        w = 1.0 / max(label.sampled_with, 1e-6)
        y = 1.0 if label.wrong else 0.0
        self.wrong_w += w * (y - errors.false_alarm) / errors.informative
        self.signal_w += w * errors.informative**2
        self.total_w += w
        self.total_w2 += w * w
        self.count += 1

    def bound(self, confidence: float) -> RateBound:
        if self.count == 0:
            return NO_EVIDENCE
        estimate = min(1.0, max(0.0, self.wrong_w / self.total_w))
        effective = (self.total_w * self.total_w / self.total_w2) * (self.signal_w / self.total_w)
        return RateBound(estimate, wilson_upper(estimate, effective, z_of(confidence)), self.count, effective)


def wrong_rate(labels: Iterable[Label], judge: JudgeErrors, confidence: float) -> RateBound:
    """The corrected wrong-hit rate of these labels and its upper bound at ``confidence``."""
    tally = Tally(judge)
    for label in labels:
        tally.add(label)
    return tally.bound(confidence)
