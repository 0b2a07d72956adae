"""The weight of evidence: which labels may move a threshold (pure logic over the records' repositories).

One rule, used by calibration runs (``POST /v1/calibration/runs``) and meant for anything else that
learns from feedback (an error budget):

- a report an admin **confirmed** counts, with its caller's verdict;
- a **relabel** (a pair an admin made from a report) counts, in place of that report's own label;
- an **open** report is a caller's claim: it is counted apart (shown, so that an admin sees the queue)
  and never moves a threshold: 30 unreviewed reports from one key must not rewrite the calibration;
- a **dismissed** report counts for nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from writing.core.models import CURATED, GENERATED
from writing.core.ports import ReportRepository
from writing.core.reports import CONFIRMED, OPEN, LabelledPair, Report

COUNTED = (CONFIRMED,)  # report statuses whose verdict is evidence
SHOWN_APART = (OPEN,)  # awaiting review: counted apart, never evidence


def counts(report: Report) -> bool:
    """Whether this report's own verdict is evidence (the rule above; a relabel overrides it)."""
    return report.status in COUNTED and report.entry_id is not None


@dataclass
class Evidence:
    curated: list[dict] = field(default_factory=list)  # calibrate.py's curated pairs {prompt, expected_biz_id}
    answers: list[dict] = field(default_factory=list)  # prompt pairs {a, b, label}
    confirmed: int = 0  # admin-confirmed reports counted
    relabelled: int = 0  # relabels counted
    open: int = 0  # open reports about a served entry: shown apart, not counted


def gather(reports: ReportRepository, relabels: Callable[[str], Iterable[LabelledPair]], page: int = 1000) -> Evidence:
    """Every pair that counts, from the reports and the relabels (blocking: a worker thread)."""
    rows: dict[int, tuple[str, dict]] = {}  # report id -> (tier, pair)
    waiting: set[int] = set()
    for tier in (CURATED, GENERATED):
        after: int | None = 0
        while after is not None:
            items, after = reports.report_page(tier=tier, statuses=(*COUNTED, *SHOWN_APART), after=after, limit=page)
            for r in items:
                if counts(r):
                    rows[r.id] = (tier, r.as_pair())
                elif r.status in SHOWN_APART and r.entry_id is not None:
                    waiting.add(r.id)
    relabelled: set[int] = set()
    for tier in (CURATED, GENERATED):
        for pair in relabels(tier):
            rows[pair.report_id] = (tier, pair.as_pair())  # an admin's label replaces the report's own
            relabelled.add(pair.report_id)
    waiting -= relabelled
    return Evidence(
        curated=[row for tier, row in rows.values() if tier == CURATED],
        answers=[row for tier, row in rows.values() if tier == GENERATED],
        confirmed=len(rows) - len(relabelled),
        relabelled=len(relabelled),
        open=len(waiting),
    )
