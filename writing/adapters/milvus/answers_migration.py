"""Copy stored answers of 1.3 and before (``<collection>_answers_v2``) into ``<collection>_answers_v3``.

After 1.3 (CHANGELOG.md, "From 1.3") the service stores each answer's ``prompt_hash`` (the exact tier's
key, ``writing.core.exact``), which the v2 collection lacks. ``python ingest.py --migrate-answers``
copies every v2 row with its id, vector, times and hit counts, computing the hash from the stored
prompt; no model is needed. Rows the target holds already (an earlier run, or answers the new version
wrote meanwhile) are left as they are, so the copy can run while the service runs, be interrupted and
be run again. The v2 collection is kept: drop it once the copy is complete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from writing.adapters.milvus.answers import ANSWERS_SPEC, COLLECTION_SUFFIX, VECTOR_FIELD
from writing.adapters.milvus.collection import CollectionSpec, MilvusCollection, MilvusConnection
from writing.text import content_hash

LEGACY_SUFFIX = "_answers_v2"
LEGACY_SPEC = CollectionSpec(
    vector_field=VECTOR_FIELD,
    fields=tuple(f for f in ANSWERS_SPEC.fields if f.name != "prompt_hash"),
    auto_id=False,
)
BATCH = 500


@dataclass
class Copied:
    read: int = 0
    copied: int = 0
    present: int = 0  # in the target already


def migrate_answers(
    connection: MilvusConnection, collection: str, *, progress: Callable[[int], None] | None = None
) -> tuple[Copied, int, int] | None:
    """Copy ``<collection>_answers_v2`` into ``<collection>_answers_v3`` (created when missing). Returns
    (what was done, rows in the source, rows in the target), or None when there is no v2 collection."""
    source = MilvusCollection(connection, f"{collection}{LEGACY_SUFFIX}", LEGACY_SPEC)
    client = connection.connect()
    if not client.has_collection(source.name, timeout=connection.timeout):
        return None
    dim = source.ensure(None)
    target = MilvusCollection(connection, f"{collection}{COLLECTION_SUFFIX}", ANSWERS_SPEC)
    target.ensure(dim)
    done = Copied()
    fields = [VECTOR_FIELD, *LEGACY_SPEC.field_names]
    for rows in source.iterate(["id", *fields], batch_size=BATCH):
        ids = [int(r["id"]) for r in rows]
        present = {int(r["id"]) for r in target.query(f"id in [{', '.join(map(str, ids))}]", ["id"])}
        fresh = [
            {
                "id": int(r["id"]),
                **{k: r[k] for k in LEGACY_SPEC.field_names},
                VECTOR_FIELD: [float(x) for x in r[VECTOR_FIELD]],
                "prompt_hash": content_hash(r.get("prompt", "")),
            }
            for r in rows
            if int(r["id"]) not in present
        ]
        if fresh:
            target.insert(fresh)
        done.read += len(rows)
        done.copied += len(fresh)
        done.present += len(present)
        if progress is not None:
            progress(len(rows))
    target.flush()
    return done, source.count(), target.count()
