"""What a threshold measures on labelled prompts: precision, recall, hit rate and wrong-hit rate per
threshold (``sweep``) from retrieval outcomes (``Record``), by kind, and the wrong hits behind them.

Pure computation; the threshold to recommend from these rows is ``writing.core.calibration_recommendation``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Record:
    """One prompt's retrieval outcome: top-1 similarity and biz_id (None when nothing came back)."""

    similarity: float | None
    top1_biz_id: str | None
    expected_biz_id: str | None
    kind: str | None = None
    prompt: str = ""
    note: str | None = None  # set when the service did not search (bypass, rejected prompt)
    guard: str | None = None  # the second check on the top-1: None (not run) | "pass" | the reject reason

    @property
    def top1_correct(self) -> bool:
        return self.expected_biz_id is not None and self.top1_biz_id == self.expected_biz_id

    def hit(self, threshold: float, guarded: bool = False) -> bool:
        """A hit at ``threshold``; ``guarded``: only when the second check passes it too."""
        if self.similarity is None or self.similarity < threshold:
            return False
        return not guarded or self.guard in (None, "pass")


@dataclass(frozen=True)
class Row:
    threshold: float
    prompts: int
    answerable: int  # prompts with a non-null expected_biz_id
    hits: int
    correct_hits: int
    wrong_hits: int
    hit_rate: float
    precision: float | None  # None (n/a) when there are no hits
    wrong_hit_rate: float
    miss_rate: float
    recall: float | None  # None (n/a) when no prompt is answerable


def thresholds(start: float = 0.50, stop: float = 0.99, step: float = 0.01) -> list[float]:
    """The grid as the floats an operator would type (0.75, not 0.7500000000000002)."""
    n = int(round((stop - start) / step))
    return [round(start + i * step, 10) for i in range(n + 1)]


def metrics_at(records: Sequence[Record], threshold: float, guarded: bool = False) -> Row:
    n = len(records)
    answerable = sum(1 for r in records if r.expected_biz_id is not None)
    hits = [r for r in records if r.hit(threshold, guarded)]
    correct = sum(1 for r in hits if r.top1_correct)
    wrong = len(hits) - correct
    hit_rate = len(hits) / n if n else 0.0
    return Row(
        threshold=threshold,
        prompts=n,
        answerable=answerable,
        hits=len(hits),
        correct_hits=correct,
        wrong_hits=wrong,
        hit_rate=hit_rate,
        precision=correct / len(hits) if hits else None,
        wrong_hit_rate=wrong / n if n else 0.0,
        miss_rate=1.0 - hit_rate,
        recall=correct / answerable if answerable else None,
    )


def sweep(records: Sequence[Record], grid: Iterable[float] | None = None, guarded: bool = False) -> list[Row]:
    return [metrics_at(records, t, guarded) for t in (thresholds() if grid is None else grid)]


@dataclass(frozen=True)
class KindRow:
    kind: str
    prompts: int
    answerable: int
    hits: int
    correct_hits: int
    wrong_hits: int
    hit_rate: float
    precision: float | None
    recall: float | None


def breakdown_by_kind(records: Sequence[Record], threshold: float) -> list[KindRow]:
    kinds = sorted({r.kind for r in records if r.kind is not None})
    out = []
    for kind in kinds:
        row = metrics_at([r for r in records if r.kind == kind], threshold)
        out.append(
            KindRow(
                kind,
                row.prompts,
                row.answerable,
                row.hits,
                row.correct_hits,
                row.wrong_hits,
                row.hit_rate,
                row.precision,
                row.recall,
            )
        )
    return out


def wrong_hits(records: Sequence[Record], threshold: float) -> list[Record]:
    return sorted(
        (r for r in records if r.hit(threshold) and not r.top1_correct),
        key=lambda r: -(r.similarity or 0.0),
    )


def top_wrong(records: Sequence[Record], limit: int = 10) -> list[Record]:
    """The highest-scoring wrong top-1 matches: they decide how high the threshold must go."""
    wrong = [r for r in records if r.similarity is not None and not r.top1_correct]
    return sorted(wrong, key=lambda r: -r.similarity)[:limit]  # type: ignore[operator]


def fmt_rate(x: float | None) -> str:
    """A rate for a report: three decimals, or n/a (None)."""
    return "n/a" if x is None else f"{x:.3f}"
