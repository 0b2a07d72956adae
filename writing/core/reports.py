"""The records of what people said and did: admin actions (the audit log), feedback reports on served
answers, and the labelled pairs an admin makes from them. Value types only; the stores are adapters
(``writing.adapters.milvus.records``) behind the ports of ``writing.core.ports``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

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


def report_id(tenant: str, request_id: str) -> int:
    """One report per answered request and tenant: a retry, or a changed verdict, replaces it."""
    return int(hashlib.sha256(f"{tenant}\x00{request_id}".encode()).hexdigest()[:15], 16) + 1


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
