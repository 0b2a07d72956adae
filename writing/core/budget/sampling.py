"""Which candidates to verify, and how many a minute.

A served hit, or a miss whose candidate is inside the tier's run-time bounds (the caller had the LLM's
answer, so judging the candidate harms nobody, and it is how the evidence reaches below the threshold:
an entry's own threshold can only come down where it has labels), is verified with a probability that
is high where evidence is thin and falls as it grows: ``boost / (1 + labels the entry has)``, lifted
towards 1 near the threshold (within ``margin``), never below ``floor``. At most ``per_minute`` verifications are started in any minute; the
probability a candidate had is kept with its label (the bound weighs labels by its inverse).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class SamplingRule:
    floor: float = 0.02  # the least share of hits verified, however much evidence there is
    boost: float = 10.0  # an entry's first 10 candidates are all verified, the 100th at 10/100
    margin: float = 0.03  # similarity within this of the threshold counts as near

    def probability(self, similarity: float, threshold: float, entry_labels: int) -> float:
        thin = min(1.0, self.boost / (1 + entry_labels))
        near = math.exp(-0.5 * ((similarity - threshold) / self.margin) ** 2)
        return max(self.floor, min(1.0, thin * (0.5 + 0.5 * near)))

    @staticmethod
    def considers(similarity: float, threshold: float, low: float) -> bool:
        """A hit, or a miss whose candidate is at or above the tier's lower bound."""
        return similarity >= min(threshold, low)


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
