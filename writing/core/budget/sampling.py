"""Which candidates to verify, and how many a minute.

A served hit, or a near miss (a candidate below the threshold but within ``explore`` of it and inside the
tier's bounds: the caller had the LLM's answer, so judging the candidate harms nobody and is how the
evidence reaches below the threshold), is verified with a probability that is high where evidence is
thin and falls as it grows: ``boost / (1 + labels the entry has)``, lifted towards 1 near the
threshold, never below ``floor``. At most ``per_minute`` verifications are started in any minute; the
probability a candidate had is kept with its label (the bound weighs labels by its inverse).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class SamplingRule:
    floor: float = 0.02  # the least share of hits verified, however much evidence there is
    boost: float = 2.0  # a new entry's candidates are verified (2 / (1 + 0) -> 1), the 10th's at 2/11
    margin: float = 0.03  # similarity within this of the threshold counts as near
    explore: float = 0.05  # near misses down to this far below the threshold are verified too

    def probability(self, similarity: float, threshold: float, entry_labels: int) -> float:
        thin = min(1.0, self.boost / (1 + entry_labels))
        near = math.exp(-0.5 * ((similarity - threshold) / self.margin) ** 2)
        return max(self.floor, min(1.0, thin * (0.5 + 0.5 * near)))

    def considers(self, similarity: float, threshold: float, low: float) -> bool:
        """A hit, or a near miss within ``explore`` of the threshold and at or above the tier's bound."""
        return similarity >= threshold or (similarity >= max(low, threshold - self.explore))


class PerMinuteCap:
    """At most ``per_minute`` takes in any 60 s window (thread-safe)."""

    def __init__(self, per_minute: int, clock=time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self.clock()
            while self._times and now - self._times[0] >= 60.0:
                self._times.popleft()
            if len(self._times) >= self.per_minute:
                return False
            self._times.append(now)
            return True

    def used(self) -> int:
        with self._lock:
            now = self.clock()
            return sum(1 for t in self._times if now - t < 60.0)


def draw(rule: SamplingRule, similarity: float, threshold: float, entry_labels: int, rng: random.Random) -> float:
    """The probability this candidate had, when it is drawn for verification; 0.0 when it is not."""
    p = rule.probability(similarity, threshold, entry_labels)
    return p if rng.random() < p else 0.0
