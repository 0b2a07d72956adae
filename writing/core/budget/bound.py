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
    lower: float = 0.0  # its lower confidence bound (an entry shown worse than the budget)


NO_EVIDENCE = RateBound(estimate=0.0, upper=1.0, labels=0, effective=0.0)


def z_of(confidence: float) -> float:
    """The one-sided normal quantile for a confidence level in (0.5, 1)."""
    if not 0.5 < confidence < 1:
        raise ValueError(f"a confidence level must be in (0.5, 1); {confidence} is not")
    return NormalDist().inv_cdf(confidence)


def wilson_upper(p: float, n: float, z: float) -> float:
    return _wilson(p, n, z, 1.0)


def wilson_lower(p: float, n: float, z: float) -> float:
    return _wilson(p, n, z, -1.0)


def _wilson(p: float, n: float, z: float, side: float) -> float:
    if n <= 0:
        return 1.0 if side > 0 else 0.0
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(max(p * (1 - p) / n + z2 / (4 * n * n), 0.0))
    return min(1.0, max(0.0, (centre + side * spread) / (1 + z2 / n)))


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

    def effective(self) -> float:
        """Kish's effective sample size, shrunk by the square of the verdicts' informative share."""
        if self.count == 0:
            return 0.0
        return (self.total_w * self.total_w / self.total_w2) * (self.signal_w / self.total_w)

    def bound(self, confidence: float) -> RateBound:
        if self.count == 0:
            return NO_EVIDENCE
        estimate = min(1.0, max(0.0, self.wrong_w / self.total_w))
        effective = self.effective()
        z = z_of(confidence)
        upper, lower = wilson_upper(estimate, effective, z), wilson_lower(estimate, effective, z)
        return RateBound(estimate, upper, self.count, effective, lower)


def wrong_rate(labels: Iterable[Label], judge: JudgeErrors, confidence: float) -> RateBound:
    """The corrected wrong-hit rate of these labels and its upper bound at ``confidence``."""
    tally = Tally(judge)
    for label in labels:
        tally.add(label)
    return tally.bound(confidence)


def estimate_judge_errors(verdicts: list[tuple[bool, bool]], confidence: float = 0.95) -> JudgeErrors:
    """The judge's error rates from (truly wrong, judged wrong) on labelled pairs, each at the end of its
    confidence interval that errs on the safe side: the correction lowers the wrong-hit estimate by the
    false-alarm rate and raises it with the miss rate, so the false-alarm rate is its lower bound and
    the miss rate its upper one. A noisy judge on few pairs then costs hit rate, never the budget."""
    z = z_of(confidence)
    wrong = [judged for truth, judged in verdicts if truth]
    right = [judged for truth, judged in verdicts if not truth]
    misses = sum(1 for j in wrong if not j) / len(wrong) if wrong else 0.0
    alarms = sum(1 for j in right if j) / len(right) if right else 0.0
    miss = min(0.5, wilson_upper(misses, len(wrong), z)) if wrong else 0.5
    return JudgeErrors(miss=miss, false_alarm=min(0.4, wilson_lower(alarms, len(right), z)))
