"""Labelled pairs in Milvus (``<collection>_labels``): the evaluation set an admin grows from feedback
reports, one pair per report (a relabel replaces it); save, page, iterate a tier's pairs, delete.
"""

from __future__ import annotations

from collections.abc import Iterator

from writing.adapters.milvus.collection import CollectionSpec, MilvusCollection, MilvusConnection, ScalarField, quote
from writing.adapters.milvus.records_base import id_page, marker_vector, open_once
from writing.core.reports import LabelledPair

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
        open_once(self._coll)

    def save(self, pair: LabelledPair) -> LabelledPair:
        self.open()
        row = {f: getattr(pair, f) for f in LABEL_FIELDS}
        row["actor"] = pair.actor[:64]
        self._coll.upsert([{**row, "v": marker_vector()}])
        self._coll.flush()
        return pair

    def list_pairs(
        self, *, tier: str | None = None, after: int = 0, limit: int = 50
    ) -> tuple[list[LabelledPair], int | None]:
        self.open()
        expr = f"id > {int(after)}" + (f" and tier == {quote(tier)}" if tier else "")
        return id_page(self._coll, LABEL_FIELDS, expr, limit, _label)

    def iter_pairs(self, tier: str) -> Iterator[LabelledPair]:
        self.open()
        for rows in self._coll.iterate(LABEL_FIELDS, batch_size=1000, expr=f"tier == {quote(tier)}"):
            yield from (_label(r) for r in rows)

    def get(self, pair_id: int) -> LabelledPair | None:
        self.open()
        rows = self._coll.get([pair_id], LABEL_FIELDS)
        return _label(rows[0]) if rows else None

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
