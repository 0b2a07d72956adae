"""The error budget's evidence in Milvus (``<collection>_evidence``): one row per verified candidate (a
judge's verdict), with its tier, entry, similarity, the probability it was sampled with and the tenant
whose request it was. No prompt or answer text is kept. Ids are time-ordered."""

from __future__ import annotations

from collections.abc import Sequence

from writing.adapters.milvus.collection import CollectionSpec, MilvusCollection, MilvusConnection, ScalarField, quote
from writing.adapters.milvus.records_base import id_page, marker_vector, open_once
from writing.core.budget.labels import Label
from writing.core.ids import time_ordered_id

EVIDENCE_SUFFIX = "_evidence"
EVIDENCE_SPEC = CollectionSpec(
    vector_field="v",
    fields=(
        ScalarField("ts", "int64"),
        ScalarField("tier", "varchar", 16),
        ScalarField("entry_id", "int64"),
        ScalarField("similarity", "double"),
        ScalarField("wrong", "int64"),  # 1: the verdict says wrong
        ScalarField("source", "varchar", 16),
        ScalarField("sampled_with", "double"),
        ScalarField("tenant", "varchar", 128),
    ),
    auto_id=False,
)
EVIDENCE_FIELDS = ["id", *(f.name for f in EVIDENCE_SPEC.fields)]
READ_BATCH = 2000


def _label(r: dict) -> Label:
    return Label(
        tier=r["tier"],
        entry_id=int(r["entry_id"]),
        similarity=float(r["similarity"]),
        wrong=bool(r["wrong"]),
        source=r["source"],
        sampled_with=float(r["sampled_with"]),
        tenant=r["tenant"],
        ts=int(r["ts"]),
        id=int(r["id"]),
    )


class MilvusEvidence:
    def __init__(self, connection: MilvusConnection, collection: str) -> None:
        self._coll = MilvusCollection(connection, collection, EVIDENCE_SPEC)

    def open(self) -> None:
        open_once(self._coll)

    def add(self, labels: Sequence[Label]) -> list[int]:
        self.open()
        rows = [
            {
                "id": time_ordered_id(),
                "v": marker_vector(),
                "ts": x.ts,
                "tier": x.tier,
                "entry_id": int(x.entry_id),
                "similarity": float(x.similarity),
                "wrong": int(x.wrong),
                "source": x.source,
                "sampled_with": float(x.sampled_with),
                "tenant": x.tenant[:128],
            }
            for x in labels
        ]
        if rows:
            self._coll.insert(rows)
            self._coll.flush()
        return [r["id"] for r in rows]

    def labels(self, tier: str, since: int = 0) -> list[Label]:
        self.open()
        expr = f"tier == {quote(tier)} and ts >= {int(since)}"
        return [_label(r) for rows in self._coll.iterate(EVIDENCE_FIELDS, READ_BATCH, expr) for r in rows]

    def page(
        self, *, tier: str | None = None, tenant: str | None = None, after: int = 0, limit: int = 100
    ) -> tuple[list[Label], int | None]:
        self.open()
        parts = [f"id > {int(after)}"]
        if tier is not None:
            parts.append(f"tier == {quote(tier)}")
        if tenant is not None:
            parts.append(f"tenant == {quote(tenant)}")
        return id_page(self._coll, EVIDENCE_FIELDS, " and ".join(parts), limit, _label)

    def delete(self, *, tenant: str | None = None, before: int | None = None) -> int:
        self.open()
        parts = ["id > 0"]
        if tenant is not None:
            parts.append(f"tenant == {quote(tenant)}")
        if before is not None:
            parts.append(f"ts < {int(before)}")
        expr = " and ".join(parts)
        doomed = self._coll.count(expr)
        if doomed:
            self._coll.delete(expr=expr)
            self._coll.flush()
        return doomed
