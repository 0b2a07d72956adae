"""The weight of evidence (issue 26): open reports are counted apart and never move a threshold."""

from __future__ import annotations

from tests.support.fakes import InMemoryReports
from writing.core.evidence import counts, gather
from writing.core.reports import CONFIRMED, DISMISSED, OPEN, LabelledPair, Report


def report(rid: int, status: str, verdict: str = "wrong", tier: str = "curated", entry_id: int | None = 7) -> Report:
    return Report(
        rid,
        0,
        f"req-{rid}",
        "acme",
        "key-a",
        tier,
        entry_id,
        0.9,
        verdict,
        "",
        f"写秋天{rid}",
        "h",
        "season-03",
        status,
    )


def test_only_confirmed_reports_and_relabels_count():
    reports = InMemoryReports()
    for rid in range(1, 31):  # 30 open reports from one key: a caller's claim, not evidence
        reports.save(report(rid, OPEN), [0.0])
    reports.save(report(40, CONFIRMED), [0.0])
    reports.save(report(41, DISMISSED), [0.0])
    reports.save(report(42, CONFIRMED, "good", tier="generated"), [0.0])
    reports.save(report(43, OPEN, entry_id=None), [0.0])  # about an LLM answer: nothing to weigh
    relabel = LabelledPair(1, 0, "admin", "curated", "写秋天5", "season-04", "", 5)  # an admin relabelled open #5
    got = gather(reports, lambda tier: [relabel] if tier == "curated" else [])
    assert got.curated == [
        {"prompt": "写秋天40", "expected_biz_id": None, "kind": "feedback_wrong"},
        {"prompt": "写秋天5", "expected_biz_id": "season-04", "kind": "relabelled"},
    ]
    assert got.answers == [{"a": "写秋天42", "b": "season-03", "label": "same", "kind": "feedback_good"}]
    assert (got.confirmed, got.relabelled, got.open) == (2, 1, 29)
    assert not counts(report(1, OPEN)) and counts(report(1, CONFIRMED)) and not counts(report(1, DISMISSED))


def test_pages_are_followed():
    reports = InMemoryReports()
    for rid in range(1, 8):
        reports.save(report(rid, CONFIRMED), [0.0])
    assert gather(reports, lambda tier: [], page=2).confirmed == 7
