"""The audit log of admin actions in Milvus (``<collection>_audit``): append an entry, page through them.

Shared by every worker and replica and kept across restarts; ids sort by time across workers.
"""

from __future__ import annotations

import json
import secrets
import time

from writing.adapters.milvus.collection import CollectionSpec, MilvusCollection, MilvusConnection, ScalarField, quote
from writing.adapters.milvus.records_base import id_page, marker_vector, open_once
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


def time_ordered_id() -> int:
    """Microseconds since the epoch, shifted, plus random low bits: ids sort by time across workers."""
    return (time.time_ns() // 1000) << 8 | secrets.randbits(8)


class MilvusAuditLog:
    def __init__(self, connection: MilvusConnection, collection: str) -> None:
        self._coll = MilvusCollection(connection, collection, AUDIT_SPEC)

    def open(self) -> None:
        open_once(self._coll)  # made and loaded once per process

    def record(self, actor: str, action: str, target: str, detail: dict) -> int:
        entry_id = time_ordered_id()
        text = json.dumps(detail, ensure_ascii=False, default=str)
        if len(text) > MAX_DETAIL_CHARS:
            text = json.dumps({"truncated": True, "detail": text[:MAX_DETAIL_CHARS]}, ensure_ascii=False)
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
