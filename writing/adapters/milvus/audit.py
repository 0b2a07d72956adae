"""The audit log of admin actions in Milvus (``<collection>_audit``): append an entry, page through them.

Shared by every worker and replica and kept across restarts; ids sort by time across workers.
"""

from __future__ import annotations

import json
import time

from writing.adapters.milvus.collection import CollectionSpec, MilvusCollection, MilvusConnection, ScalarField, quote
from writing.adapters.milvus.records_base import id_page, marker_vector, open_once
from writing.core.ids import time_ordered_id
from writing.core.reports import AuditEntry

AUDIT_SUFFIX = "_audit"
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


def summary(detail: dict, chars: int) -> dict:
    """An over-long detail as valid JSON: its short scalar fields and list sizes, and its size."""
    out: dict = {"truncated": True, "chars": chars}
    for k, v in detail.items():
        if isinstance(v, (bool, int, float)) or v is None or (isinstance(v, str) and len(v) <= 200):
            out[k] = v
        elif isinstance(v, (list, dict)):
            out[f"{k}_count"] = len(v)
    return out


class MilvusAuditLog:
    def __init__(self, connection: MilvusConnection, collection: str) -> None:
        self._coll = MilvusCollection(connection, collection, AUDIT_SPEC)

    def open(self) -> None:
        open_once(self._coll)  # made and loaded once per process

    def record(self, actor: str, action: str, target: str, detail: dict, entry_id: int | None = None) -> int:
        """Append an entry (under ``entry_id``: the undo journal's entry of the same change, when it has one)."""
        entry_id = time_ordered_id() if entry_id is None else entry_id
        text = json.dumps(detail, ensure_ascii=False, default=str)
        if len(text) > MAX_DETAIL_CHARS:  # valid JSON still; what undoes the change is in the journal, whole
            text = json.dumps(summary(detail, len(text)), ensure_ascii=False, default=str)
        row = {
            "id": entry_id,
            "v": marker_vector(),
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
        return id_page(self._coll, AUDIT_FIELDS, " and ".join(parts), limit, _entry)


def _entry(r: dict) -> AuditEntry:
    return AuditEntry(int(r["id"]), int(r["ts"]), r["actor"], r["action"], r["target"], json.loads(r["detail"] or "{}"))
