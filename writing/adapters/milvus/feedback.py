"""Feedback reports on served answers in Milvus (``<collection>_feedback``): save, read, page, and the
reports that block an entry.

A report carries the reported prompt's embedding as its vector (the blocklist compares prompts with it).
Shared by every worker and replica and kept across restarts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from writing.adapters.milvus.collection import (
    QUERY_WINDOW,
    CollectionSpec,
    MilvusCollection,
    MilvusConnection,
    ScalarField,
    quote,
)
from writing.adapters.milvus.records_base import id_page, open_once
from writing.core.reports import CONFIRMED, OPEN, Report

FEEDBACK_SUFFIX = "_feedback"
FEEDBACK_SPEC = CollectionSpec(
    vector_field="prompt_vector",
    fields=(
        ScalarField("ts", "int64"),
        ScalarField("request_id", "varchar", 128),
        ScalarField("tenant", "varchar", 128),
        ScalarField("actor", "varchar", 64),
        ScalarField("tier", "varchar", 16),
        ScalarField("entry_id", "int64"),
        ScalarField("similarity", "double"),
        ScalarField("verdict", "varchar", 16),
        ScalarField("note", "varchar", 4096),
        ScalarField("prompt", "varchar", 65535),
        ScalarField("prompt_hash", "varchar", 64),
        ScalarField("matched", "varchar", 65535),
        ScalarField("status", "varchar", 16),
    ),
    auto_id=False,
)
FEEDBACK_FIELDS = ["id", *(f.name for f in FEEDBACK_SPEC.fields)]


def _report(r: dict) -> Report:
    entry = int(r["entry_id"])
    sim = float(r["similarity"])
    return Report(
        id=int(r["id"]),
        ts=int(r["ts"]),
        request_id=r["request_id"],
        tenant=r["tenant"],
        actor=r["actor"],
        tier=r["tier"],
        entry_id=entry if entry >= 0 else None,
        similarity=sim if sim >= 0 else None,
        verdict=r["verdict"],
        note=r["note"],
        prompt=r["prompt"],
        prompt_hash=r["prompt_hash"],
        matched=r["matched"],
        status=r["status"],
    )


class MilvusFeedbackStore:
    def __init__(self, connection: MilvusConnection, collection: str) -> None:
        self._coll = MilvusCollection(connection, collection, FEEDBACK_SPEC)

    def open(self, dim: int) -> None:
        open_once(self._coll, dim)  # made and loaded once per process

    def save(self, report: Report, vector) -> None:
        row = {
            "id": report.id,
            "prompt_vector": [float(x) for x in vector],
            "ts": report.ts,
            "request_id": report.request_id[:128],
            "tenant": report.tenant,
            "actor": report.actor[:64],
            "tier": report.tier,
            "entry_id": -1 if report.entry_id is None else int(report.entry_id),
            "similarity": -1.0 if report.similarity is None else float(report.similarity),
            "verdict": report.verdict,
            "note": report.note[:1000],
            "prompt": report.prompt,
            "prompt_hash": report.prompt_hash,
            "matched": report.matched[:16000],
            "status": report.status,
        }
        self._coll.upsert([row])
        self._coll.flush()

    def get(self, rid: int) -> tuple[Report, list[float]] | None:
        rows = self._coll.get([rid], ["prompt_vector", *FEEDBACK_FIELDS])
        if not rows:
            return None
        return _report(rows[0]), [float(x) for x in rows[0]["prompt_vector"]]

    def find(self, tenant: str, request_id: str) -> Report | None:
        expr = f"tenant == {quote(tenant)} and request_id == {quote(request_id[:128])}"
        rows = self._coll.query(expr, FEEDBACK_FIELDS, limit=16)
        # two at once for one request (concurrent first reports) both stored: the older one answers
        return _report(min(rows, key=lambda r: int(r["id"]))) if rows else None

    def list_reports(
        self,
        *,
        status: str | None = None,
        tier: str | None = None,
        verdict: str | None = None,
        after: int = 0,
        limit: int = 50,
    ) -> tuple[list[Report], int | None]:
        parts = [f"id > {int(after)}"]
        for name, value in (("status", status), ("tier", tier), ("verdict", verdict)):
            if value is not None:
                parts.append(f"{name} == {quote(value)}")
        return id_page(self._coll, FEEDBACK_FIELDS, " and ".join(parts), limit, _report)

    def report_page(
        self, *, tier: str, statuses: Sequence[str], after: int = 0, limit: int = 1000
    ) -> tuple[list[Report], int | None]:
        """One page of a tier's reports in any of ``statuses``, oldest first after the cursor ``after``;
        the next cursor, or None at the end (``GET /v1/feedback/export`` streams page by page)."""
        wanted = ", ".join(quote(s) for s in statuses)
        expr = f"id > {int(after)} and tier == {quote(tier)} and status in [{wanted}]"
        return id_page(self._coll, FEEDBACK_FIELDS, expr, limit, _report)

    def iter_reports(self, expr: str = "id > 0", with_vectors: bool = False) -> Iterator[list[tuple[Report, list]]]:
        fields = FEEDBACK_FIELDS + (["prompt_vector"] if with_vectors else [])
        for rows in self._coll.iterate(fields, batch_size=1000, expr=expr):
            yield [(_report(r), r.get("prompt_vector")) for r in rows]

    def blocking(self) -> list[tuple[Report, list]]:
        """Reports that block an entry: "wrong" verdicts on a hit that no admin dismissed. One query with
        Strong consistency (an iterator falls back to a client-side timestamp on Milvus 2.3 and can miss
        a report another worker has just written); at most QUERY_WINDOW of them."""
        expr = f'verdict == "wrong" and entry_id >= 0 and status in ["{OPEN}", "{CONFIRMED}"]'
        # the ids first: Milvus Lite 2.5 fails a query that outputs a vector when no row matches
        # ("Growing segment loss raw data"), which made every refresh on an idle Lite file fail
        ids = [int(r["id"]) for r in self._coll.query(expr, ["id"], limit=QUERY_WINDOW)]
        if not ids:
            return []
        rows = self._coll.get(ids, [*FEEDBACK_FIELDS, "prompt_vector"])
        return [(_report(r), r["prompt_vector"]) for r in rows]
