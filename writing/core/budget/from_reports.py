"""Labels from reviewed feedback reports, by the project's weight-of-evidence rule
(``writing.core.evidence``): what an admin decided counts, what a caller claims does not."""

from __future__ import annotations

from collections.abc import Iterable

from writing.core.budget.labels import ADMIN, Label
from writing.core.evidence import counts
from writing.core.models import GENERATED
from writing.core.reports import LabelledPair, Report
from writing.core.tuning import ANSWER_TIER


def budget_tier(tier: str) -> str:
    """The budget's (and the run-time thresholds') name of a model tier: ``generated`` is ``answer``."""
    return ANSWER_TIER if tier == GENERATED else tier


def right_after_all(pairs: Iterable[LabelledPair], reports: dict[int, Report]) -> set[int]:
    """The reports a relabel found right: the served entry was the one that should answer."""
    out = set()
    for pair in pairs:
        report = reports.get(pair.report_id)
        if report is None:
            continue
        if (
            pair.tier == GENERATED
            and pair.label == "same"
            or pair.tier != GENERATED
            and pair.label == "answer"
            and pair.expected == report.matched
        ):
            out.add(pair.report_id)
    return out


def from_reports(reports: Iterable[Report], relabelled_right: set[int]) -> list[Label]:
    """Labels from reviewed reports, by the weight-of-evidence rule (``writing.core.evidence.counts``):
    a confirmed report on a served entry counts, an open or dismissed one never does. Reports are not a
    random sample of hits (callers report what is wrong), so only wrong verdicts count, added to the
    verified sample: they can raise the bound, never lower it. A relabel that found the entry right
    (``relabelled_right``, report ids) takes the report out."""
    out = []
    for r in reports:
        if not counts(r) or r.verdict != "wrong" or r.id in relabelled_right or r.similarity is None:
            continue
        assert r.entry_id is not None  # counts() checked
        out.append(
            Label(budget_tier(r.tier), r.entry_id, r.similarity, wrong=True, source=ADMIN, tenant=r.tenant, ts=r.ts)
        )
    return out
