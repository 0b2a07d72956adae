"""The undo journal in Milvus (``<collection>_journal``): each record (an entry's intent, outcome or undo
report) is JSON cut into ordered chunks, all inserted in one call, so nothing is ever truncated.

Shared by every worker and replica and kept across restarts, apart from the audit listing; entries older
than the retention (``UNDO_RETENTION_DAYS``) are purged as new ones are begun.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict

from writing.adapters.milvus.collection import CollectionSpec, MilvusCollection, MilvusConnection, ScalarField, quote
from writing.adapters.milvus.records_base import marker_vector, open_once
from writing.core.ids import time_ordered_id
from writing.core.undo.entries import INTENT, OUTCOME, UNDONE, JournalEntry, JournalSummary

JOURNAL_SUFFIX = "_journal"
JOURNAL_SPEC = CollectionSpec(
    vector_field="v",
    fields=(
        ScalarField("entry", "int64"),
        ScalarField("ts", "int64"),
        ScalarField("kind", "varchar", 16),
        ScalarField("seq", "int64"),
        ScalarField("parts", "int64"),
        ScalarField("actor", "varchar", 64),
        ScalarField("action", "varchar", 64),
        ScalarField("target", "varchar", 512),
        ScalarField("chunk", "varchar", 65535),
    ),
    auto_id=False,
)
HEAD_FIELDS = ["id", "entry", "ts", "kind", "seq", "parts", "actor", "action", "target"]
CHUNK_CHARS = 16_000  # at most 4 UTF-8 bytes a character: within the VARCHAR's 65,535 bytes
PAGE_SCAN = 2000
INSERT_CHUNKS = 128  # chunks per insert call: at most ~8 MB of a large record in one gRPC message


def chunks(text: str) -> list[str]:
    return [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]


class MilvusJournal:
    def __init__(self, connection: MilvusConnection, collection: str) -> None:
        self._coll = MilvusCollection(connection, collection, JOURNAL_SPEC)

    def open(self) -> None:
        open_once(self._coll)

    def write(self, entry_id: int, kind: str, actor: str, action: str, target: str, payload: dict) -> None:
        parts = chunks(json.dumps(payload, ensure_ascii=False, default=str))
        now = int(time.time())
        rows = [
            {
                "id": time_ordered_id(),
                "v": marker_vector(),
                "entry": int(entry_id),
                "ts": now,
                "kind": kind,
                "seq": i,
                "parts": len(parts),
                "actor": actor[:64],
                "action": action[:64],
                "target": target[:512],
                "chunk": part,
            }
            for i, part in enumerate(parts)
        ]
        for start in range(0, len(rows), INSERT_CHUNKS):  # a read needs every part: a cut-short record is none
            self._coll.insert(rows[start : start + INSERT_CHUNKS])
        self._coll.flush()

    def read(self, entry_id: int) -> JournalEntry | None:
        rows = self._coll.query(f"entry == {int(entry_id)}", [*HEAD_FIELDS, "chunk"])
        by_kind: dict[str, list[dict]] = defaultdict(list)
        for r in rows:
            by_kind[r["kind"]].append(r)
        payloads = {kind: _assembled(rs) for kind, rs in by_kind.items()}
        intent = payloads.get(INTENT)
        if intent is None:
            return None  # never begun, purged, or an intent whose insert did not complete
        head = by_kind[INTENT][0]
        return JournalEntry(
            id=int(entry_id),
            ts=int(head["ts"]),
            actor=head["actor"],
            action=head["action"],
            target=head["target"],
            intent=intent,
            outcome=payloads.get(OUTCOME),
            undone=payloads.get(UNDONE),
        )

    def list_entries(
        self, *, state: str | None = None, after: int = 0, limit: int = 50
    ) -> tuple[list[JournalSummary], int | None]:
        """Oldest first after the cursor; the heads of every later entry are read (they are small, and an
        entry's id orders it by time while the rows' ids need not)."""
        expr = f"kind == {quote(INTENT)} and seq == 0 and entry > {int(after)}"
        heads = sorted(
            (r for rows in self._coll.iterate(HEAD_FIELDS, batch_size=PAGE_SCAN, expr=expr) for r in rows),
            key=lambda r: int(r["entry"]),
        )
        out: list[JournalSummary] = []
        for start in range(0, len(heads), PAGE_SCAN):
            page = heads[start : start + PAGE_SCAN]
            later = self._later([int(h["entry"]) for h in page])
            for h in page:
                summary = _summary(h, later.get(int(h["entry"]), {}))
                if state is None or summary.state == state:
                    out.append(summary)
                    if len(out) == limit:
                        return out, summary.id
        return out, None

    def _later(self, entries: list[int]) -> dict[int, dict[str, dict]]:
        """The outcome and undo records of these entries, each assembled from its chunks (a record with a
        chunk missing counts as not written)."""
        rows = self._coll.query(
            f"entry in [{', '.join(map(str, entries))}] and kind != {quote(INTENT)}", [*HEAD_FIELDS, "chunk"]
        )
        by_entry: dict[int, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
        for r in rows:
            by_entry[int(r["entry"])][r["kind"]].append(r)
        return {
            e: {k: p for k, rs in kinds.items() if (p := _assembled(rs)) is not None} for e, kinds in by_entry.items()
        }

    def purge(self, older_than_ts: int) -> int:
        n = self._coll.count(f"ts < {int(older_than_ts)}")
        if n:
            self._coll.delete(expr=f"ts < {int(older_than_ts)}")
            self._coll.flush()
        return n


def _assembled(rows: list[dict]) -> dict | None:
    """One record's payload from its chunks; None when a chunk is missing (an insert that did not finish)."""
    rows = sorted(rows, key=lambda r: int(r["seq"]))
    if not rows or len(rows) != int(rows[0]["parts"]) or [int(r["seq"]) for r in rows] != list(range(len(rows))):
        return None
    return json.loads("".join(r["chunk"] for r in rows))


def _summary(head: dict, later: dict[str, dict]) -> JournalSummary:
    undone = later.get(UNDONE)
    state = "undone" if undone is not None else "done" if OUTCOME in later else "interrupted"
    return JournalSummary(
        id=int(head["entry"]),
        ts=int(head["ts"]),
        actor=head["actor"],
        action=head["action"],
        target=head["target"],
        state=state,
        undone_by=int(undone["by"]) if undone and undone.get("by") is not None else None,
    )
