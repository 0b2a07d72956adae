"""Records that must be shared by every worker and replica and survive restarts: the audit log of admin
actions and the feedback reports. Both live in Milvus next to the corpus (the one store the service
already depends on), in ``<collection>_audit`` and ``<collection>_feedback``.

Milvus needs a vector in every collection: the audit log carries a constant 2-dimensional one; a
feedback report carries the reported prompt's embedding (the blocklist compares prompts with it).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from writing.adapters.milvus.collection import (
    QUERY_WINDOW,
    CollectionSpec,
    MilvusCollection,
    MilvusConnection,
    ScalarField,
    quote,
)
from writing.core.reports import (
    CONFIRMED,
    OPEN,
    AuditEntry,
    LabelledPair,
    Report,
)

AUDIT_SUFFIX = "_audit"
FEEDBACK_SUFFIX = "_feedback"
PAGE_SCAN = 5000


def time_ordered_id() -> int:
    """Microseconds since the epoch, shifted, plus random low bits: ids sort by time across workers."""
    return (time.time_ns() // 1000) << 8 | secrets.randbits(8)


# -- the audit log ----------------------------------------------------------------------------------------
AUDIT_SPEC = CollectionSpec(
    vector_field="v",
    fields=(
        ScalarField("ts", "int64"),
        ScalarField("actor", "varchar", 64),
        ScalarField("action", "varchar", 64),
        ScalarField("target", "varchar", 512),
        ScalarField("detail", "varchar", 65535),
    ),
    auto_id=False,
)
AUDIT_FIELDS = ["id", "ts", "actor", "action", "target", "detail"]
MAX_DETAIL_CHARS = 20000  # bytes in Milvus: CJK text of this length fits the VARCHAR


class MilvusAuditLog:
    def __init__(self, connection: MilvusConnection, collection: str) -> None:
        self._coll = MilvusCollection(connection, collection, AUDIT_SPEC)

    def open(self) -> None:
        if self._coll.dim is None:  # made and loaded once per process
            self._coll.ensure(2)

    def record(self, actor: str, action: str, target: str, detail: dict) -> int:
        entry_id = time_ordered_id()
        text = json.dumps(detail, ensure_ascii=False, default=str)
        if len(text) > MAX_DETAIL_CHARS:
            text = json.dumps({"truncated": True, "detail": text[:MAX_DETAIL_CHARS]}, ensure_ascii=False)
        row = {
            "id": entry_id,
            "v": [1.0, 0.0],
            "ts": int(time.time()),
            "actor": actor[:64],
            "action": action,
            "target": target[:512],
            "detail": text,
        }
        self._coll.insert([row])
        self._coll.flush()
        return entry_id

    def list_entries(
        self, *, action: str | None = None, since: float | None = None, after: int = 0, limit: int = 50
    ) -> tuple[list[AuditEntry], int | None]:
        """Oldest first, after the cursor ``after`` (an entry id)."""
        parts = [f"id > {int(after)}"]
        if action is not None:
            parts.append(f"action == {quote(action)}")
        if since is not None:
            parts.append(f"ts >= {int(time.time() - since)}")
        out: list[AuditEntry] = []
        for rows in self._coll.iterate(AUDIT_FIELDS, batch_size=min(max(limit, 10), 1000), expr=" and ".join(parts)):
            for r in sorted(rows, key=lambda r: int(r["id"])):
                out.append(
                    AuditEntry(
                        int(r["id"]),
                        int(r["ts"]),
                        r["actor"],
                        r["action"],
                        r["target"],
                        json.loads(r["detail"] or "{}"),
                    )
                )
                if len(out) == limit:
                    return out, out[-1].id
        return out, None


# -- feedback reports ---------------------------------------------------------------------------------------
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
        if self._coll.dim is None:  # made and loaded once per process
            self._coll.ensure(dim)

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
        return self._page(" and ".join(parts), limit)

    def report_page(
        self, *, tier: str, statuses: Sequence[str], after: int = 0, limit: int = 1000
    ) -> tuple[list[Report], int | None]:
        """One page of a tier's reports in any of ``statuses``, oldest first after the cursor ``after``;
        the next cursor, or None at the end (``GET /v1/feedback/export`` streams page by page)."""
        wanted = ", ".join(quote(s) for s in statuses)
        return self._page(f"id > {int(after)} and tier == {quote(tier)} and status in [{wanted}]", limit)

    def _page(self, expr: str, limit: int) -> tuple[list[Report], int | None]:
        out: list[Report] = []
        for rows in self._coll.iterate(FEEDBACK_FIELDS, batch_size=min(max(limit, 10), 1000), expr=expr):
            for r in sorted(rows, key=lambda r: int(r["id"])):
                out.append(_report(r))
                if len(out) == limit:
                    return out, out[-1].id
        return out, None

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


# -- run-time settings ---------------------------------------------------------------------------------------
SETTINGS_SUFFIX = "_settings"
SETTINGS_SPEC = CollectionSpec(
    vector_field="v",
    fields=(
        ScalarField("name", "varchar", 64),
        ScalarField("value", "varchar", 4096),  # JSON
        ScalarField("ts", "int64"),
        ScalarField("actor", "varchar", 64),
    ),
    auto_id=False,
)
SETTINGS_FIELDS = ["id", "name", "value", "ts", "actor"]


@dataclass(frozen=True)
class StoredSetting:
    name: str
    value: object
    ts: int
    actor: str


def setting_id(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest()[:15], 16) + 1


class MilvusRuntimeSettings:
    """Values an admin sets at run time (a threshold), shared by every worker and replica and kept
    across restarts; one row per name, replaced in place. A removed row means: the environment's value."""

    def __init__(self, connection: MilvusConnection, collection: str) -> None:
        self._coll = MilvusCollection(connection, collection, SETTINGS_SPEC)

    def open(self) -> None:
        if self._coll.dim is None:
            self._coll.ensure(2)

    def all(self) -> dict[str, StoredSetting]:
        self.open()
        rows = self._coll.query("id > 0", SETTINGS_FIELDS, limit=1000)
        return {r["name"]: StoredSetting(r["name"], json.loads(r["value"]), int(r["ts"]), r["actor"]) for r in rows}

    def put(self, name: str, value: object, actor: str) -> StoredSetting:
        self.open()
        stored = StoredSetting(name, value, int(time.time()), actor[:64])
        row = {"id": setting_id(name), "v": [1.0, 0.0], "name": name, "value": json.dumps(value), "ts": stored.ts}
        self._coll.upsert([{**row, "actor": stored.actor}])
        self._coll.flush()
        return stored

    def remove(self, name: str) -> bool:
        self.open()
        if not self._coll.get([setting_id(name)], ["id"]):
            return False
        self._coll.delete(ids=[setting_id(name)])
        self._coll.flush()
        return True


# -- labelled pairs (the evaluation set grown from feedback) -------------------------------------------------
LABELS_SUFFIX = "_labels"
LABELS_SPEC = CollectionSpec(
    vector_field="v",
    fields=(
        ScalarField("ts", "int64"),
        ScalarField("actor", "varchar", 64),
        ScalarField("tier", "varchar", 16),
        ScalarField("prompt", "varchar", 65535),
        ScalarField(
            "expected", "varchar", 65535
        ),  # curated: the biz_id that should answer ("": none); generated: the other prompt
        ScalarField("label", "varchar", 16),  # curated: "answer" | "none"; generated: "same" | "different"
        ScalarField("report_id", "int64"),
    ),
    auto_id=False,
)
LABEL_FIELDS = ["id", *(f.name for f in LABELS_SPEC.fields)]


class MilvusLabelStore:
    """Labelled pairs an admin made from feedback reports; one per report (a relabel replaces it)."""

    def __init__(self, connection: MilvusConnection, collection: str) -> None:
        self._coll = MilvusCollection(connection, collection, LABELS_SPEC)

    def open(self) -> None:
        if self._coll.dim is None:
            self._coll.ensure(2)

    def save(self, pair: LabelledPair) -> LabelledPair:
        self.open()
        row = {f: getattr(pair, f) for f in LABEL_FIELDS}
        row["actor"] = pair.actor[:64]
        self._coll.upsert([{**row, "v": [1.0, 0.0]}])
        self._coll.flush()
        return pair

    def list_pairs(
        self, *, tier: str | None = None, after: int = 0, limit: int = 50
    ) -> tuple[list[LabelledPair], int | None]:
        self.open()
        expr = f"id > {int(after)}" + (f" and tier == {quote(tier)}" if tier else "")
        out: list[LabelledPair] = []
        for rows in self._coll.iterate(LABEL_FIELDS, batch_size=min(max(limit, 10), 1000), expr=expr):
            for r in sorted(rows, key=lambda r: int(r["id"])):
                out.append(_label(r))
                if len(out) == limit:
                    return out, out[-1].id
        return out, None

    def iter_pairs(self, tier: str) -> Iterator[LabelledPair]:
        self.open()
        for rows in self._coll.iterate(LABEL_FIELDS, batch_size=1000, expr=f"tier == {quote(tier)}"):
            yield from (_label(r) for r in rows)

    def delete(self, pair_id: int) -> bool:
        self.open()
        if not self._coll.get([pair_id], ["id"]):
            return False
        self._coll.delete(ids=[pair_id])
        self._coll.flush()
        return True


def _label(r: dict) -> LabelledPair:
    return LabelledPair(
        id=int(r["id"]),
        ts=int(r["ts"]),
        actor=r["actor"],
        tier=r["tier"],
        prompt=r["prompt"],
        expected=r["expected"],
        label=r["label"],
        report_id=int(r["report_id"]),
    )
