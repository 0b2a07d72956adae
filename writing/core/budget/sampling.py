"""Which candidates to verify.

A served hit, or a miss whose candidate is inside the tier's run-time bounds (the caller had the LLM's
answer, so judging the candidate harms nobody, and it is how the evidence reaches below the threshold:
an entry's own threshold can only come down where it has labels), is verified with a probability that
is high where evidence is thin and falls as it grows: ``boost / (1 + labels the entry has)``, lifted
towards 1 near the threshold (within ``margin``), never below ``floor``. The probability a candidate had
is kept with its label (the bound weighs labels by its inverse). The per-minute cap is the verifier's.
"""

from __future__ import annotations

import math
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
