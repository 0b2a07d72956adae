"""The threshold to recommend for a target precision (``recommend``: the lowest that reaches it, with a
Wilson lower bound), and one tier's sweeps with the second check off and on (``TierReport``).

Pure computation over the rows of ``writing.core.calibration_measures``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from writing.core.calibration_measures import Record, Row, fmt_rate, sweep

TABLE_STEP = 5  # the Markdown table shows every 5th threshold (0.50, 0.55, ...) plus the recommendation
EPS = 1e-12  # float slack when comparing a precision with the target (49/50 vs 0.98)


def meets(row: Row, target: float) -> bool:
    return row.precision is not None and row.precision >= target - EPS


@dataclass(frozen=True)
class Recommendation:
    target_precision: float
    threshold: float | None  # None: no threshold with hits reaches the target
    row: Row | None
    holds_above: bool  # every higher threshold with hits also meets the target
    precision_lower_95: float | None  # Wilson lower bound of the precision at the recommendation
    message: str


def wilson_lower(successes: int, n: int, z: float = 1.96) -> float | None:
    """Lower end of the Wilson score interval: how low the true precision may plausibly be."""
    if n == 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / denom)


def recommend(rows: Sequence[Row], target: float) -> Recommendation:
    """The lowest threshold whose precision reaches ``target`` (thresholds without hits never count)."""
    ordered = sorted(rows, key=lambda r: r.threshold)
    for i, row in enumerate(ordered):
        if meets(row, target):
            holds = all(meets(r, target) for r in ordered[i + 1 :] if r.hits)
            lower = wilson_lower(row.correct_hits, row.hits)
            msg = (
                f"recommended SIMILARITY_THRESHOLD={row.threshold:.2f}: the lowest threshold with precision "
                f">= {target:.3f} (precision {row.precision:.3f} = {row.correct_hits}/{row.hits} hits, "
                f"95% lower bound {lower:.3f}; hit rate {row.hit_rate:.3f}, wrong-hit rate "
                f"{row.wrong_hit_rate:.3f}, recall {fmt_rate(row.recall)})"
            )
            if not holds:
                msg += "; note: precision drops below the target again at some higher threshold"
            return Recommendation(target, row.threshold, row, holds, lower, msg)
    best = max((r for r in ordered if r.hits), key=lambda r: (r.precision, -r.threshold), default=None)
    if best is None:
        msg = f"NO threshold reaches precision {target:.3f}: no prompt scored >= {ordered[0].threshold:.2f}"
    else:
        msg = (
            f"NO threshold from {ordered[0].threshold:.2f} to {ordered[-1].threshold:.2f} reaches precision "
            f">= {target:.3f}; the best is {best.precision:.3f} ({best.correct_hits}/{best.hits} hits) at "
            f"{best.threshold:.2f}. Do not pick a threshold from this run: improve the corpus, the model or "
            "the labels, or lower the target knowingly"
        )
    return Recommendation(target, None, None, False, None, msg)


@dataclass(frozen=True)
class TierReport:
    """One tier's sweep with the second check off and on, and what each recommends."""

    name: str
    setting: str
    rows_off: list[Row]
    rows_on: list[Row]
    rec_off: Recommendation
    rec_on: Recommendation

    @classmethod
    def of(cls, name: str, setting: str, records: Sequence[Record], target: float) -> TierReport:
        rows_off, rows_on = sweep(records), sweep(records, guarded=True)
        return cls(name, setting, rows_off, rows_on, recommend(rows_off, target), recommend(rows_on, target))

    def markdown(self) -> str:
        def line(label: str, rec: Recommendation) -> str:
            if rec.row is None:
                return f"| {label} | none | n/a | n/a | n/a |"
            r = rec.row
            return (
                f"| {label} | {r.threshold:.2f} | {fmt_rate(r.precision)} | {r.hit_rate:.3f} | {fmt_rate(r.recall)} |"
            )

        return "\n".join(
            [
                f"## {self.name}: the second check (HIT_GUARD) off and on",
                "",
                f"Recommended {self.setting} at precision >= {self.rec_off.target_precision:.2f}:",
                "",
                "| check | threshold | precision | hit rate | recall |",
                "|---|---:|---:|---:|---:|",
                line("off", self.rec_off),
                line("on", self.rec_on),
                "",
                "| threshold | precision off | precision on | hit rate off | hit rate on |",
                "|---:|---:|---:|---:|---:|",
                *(
                    f"| {a.threshold:.2f} | {fmt_rate(a.precision)} | {fmt_rate(b.precision)} | {a.hit_rate:.3f} | {b.hit_rate:.3f} |"
                    for i, (a, b) in enumerate(zip(self.rows_off, self.rows_on, strict=True))
                    if i % TABLE_STEP == 0
                ),
            ]
        )

    def as_json(self) -> dict:
        def rec(r: Recommendation) -> dict:
            return {"threshold": r.threshold, "message": r.message, "row": asdict(r.row) if r.row else None}

        return {
            "setting": self.setting,
            "off": {"recommendation": rec(self.rec_off), "rows": [asdict(r) for r in self.rows_off]},
            "on": {"recommendation": rec(self.rec_on), "rows": [asdict(r) for r in self.rows_on]},
        }
