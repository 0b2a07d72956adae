"""Run-time settings in Milvus (``<collection>_settings``): values an admin sets while the service runs
(a threshold), one row per name, replaced in place; shared by every worker and replica, kept across
restarts.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

from writing.adapters.milvus.collection import CollectionSpec, MilvusCollection, MilvusConnection, ScalarField
from writing.adapters.milvus.records_base import marker_vector, open_once

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
        open_once(self._coll)

    def all(self) -> dict[str, StoredSetting]:
        self.open()
        rows = self._coll.query("id > 0", SETTINGS_FIELDS, limit=1000)
        return {r["name"]: StoredSetting(r["name"], json.loads(r["value"]), int(r["ts"]), r["actor"]) for r in rows}

    def put(self, name: str, value: object, actor: str) -> StoredSetting:
        self.open()
        stored = StoredSetting(name, value, int(time.time()), actor[:64])
        row = {"id": setting_id(name), "v": marker_vector(), "name": name, "value": json.dumps(value), "ts": stored.ts}
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
