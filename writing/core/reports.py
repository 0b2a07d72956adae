"""The records of what people said and did: admin actions (the audit log), feedback reports on served
answers, and the labelled pairs an admin makes from them. Value types only; the stores are adapters
(``writing.adapters.milvus.records``) behind the ports of ``writing.core.ports``."""

from __future__ import annotations

from dataclasses import dataclass

from writing.core.ids import time_ordered_id

OPEN, CONFIRMED, DISMISSED = "open", "confirmed", "dismissed"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    ts: int
    actor: str
    action: str
    target: str
    detail: dict


@dataclass(frozen=True)
class Report:
    id: int
    ts: int
    request_id: str
    tenant: str
    actor: str
    tier: str
    entry_id: int | None
    similarity: float | None
    verdict: str
    note: str
    prompt: str
    prompt_hash: str
    matched: str
    status: str

    def as_pair(self) -> dict:
        """The labelled pair this report makes (``GET /v1/feedback/export``, calibration runs): curated
        ``{prompt, expected_biz_id}`` (a wrong hit: no passage should answer; a good one: this one
        should), generated ``{a, b, label}``."""
        good = self.verdict == "good"
        if self.tier == "curated":
            row = {"prompt": self.prompt, "expected_biz_id": self.matched if good else None}
        else:
            row = {"a": self.prompt, "b": self.matched, "label": "same" if good else "different"}
        return {**row, "kind": f"feedback_{self.verdict}"}


# Report ids were a hash of the tenant and request id (below 2**60) until reports were listed by time;
# new ones are time-ordered above it, so that they sort after every report stored before.
REPORT_ID_BASE = 1 << 60


def new_report_id() -> int:
    """A new report's id: it sorts by the time of the first report on its request (a retry keeps it)."""
    return REPORT_ID_BASE | time_ordered_id()


@dataclass(frozen=True)
class LabelledPair:
    id: int
    ts: int
    actor: str
    tier: str
    prompt: str
    expected: str
    label: str
    report_id: int

    def as_pair(self) -> dict:
        """The row calibrate.py reads: curated ``{prompt, expected_biz_id}``, generated ``{a, b, label}``."""
        if self.tier == "curated":
            return {"prompt": self.prompt, "expected_biz_id": self.expected or None, "kind": "relabelled"}
        return {"a": self.prompt, "b": self.expected, "label": self.label, "kind": "relabelled"}
