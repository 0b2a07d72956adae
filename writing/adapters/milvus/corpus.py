"""The curated corpus in Milvus, through pymilvus: a Milvus server (``MILVUS_URI``) or Milvus Lite.

Collection ``writing`` (configurable): ``id`` INT64 auto, ``content_vector`` FLOAT_VECTOR (the
embedding model's dimension), ``content_full`` VARCHAR, ``biz_id`` VARCHAR, ``content_hash`` VARCHAR
(sha256 of the normalised text, the key that makes ingestion idempotent). COSINE index; searches use
Bounded consistency. All calls are synchronous (pymilvus is); the service runs them in a thread.
Implements ``writing.core.ports.CorpusStore``.

A passage can also carry *retrieval keys*: extra rows holding the passage's text under the vector of a
prompt it answers (``POST /v1/answers/{id}/promote`` adds the prompt that produced a promoted answer),
so that prompt hits the passage even when the passage's own vector is far from it. Such a row's
``content_hash`` is ``k:<passage id>:<prompt hash>``; a hit on it is reported as the passage itself,
and counting, listing and exporting see passages only (their hashes are hex, all below "g").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

from writing.adapters.milvus.collection import (
    QUERY_WINDOW,
    CollectionSpec,
    MilvusCollection,
    MilvusConnection,
    ScalarField,
    quote,
)
from writing.core.models import Match, Passage
from writing.text import content_hash

VECTOR_FIELD = "content_vector"
CONTENT_FIELD = "content_full"
BIZ_FIELD = "biz_id"
HASH_FIELD = "content_hash"
TOMBSTONE_SECONDS = 120.0  # deleted ids are filtered out of searches while replicas may lag
HASH_QUERY_CHUNK = 500

CORPUS_SPEC = CollectionSpec(
    vector_field=VECTOR_FIELD,
    fields=(
        ScalarField(CONTENT_FIELD, "varchar", 65535),  # bytes: MAX_CONTENT_CHARS of CJK fit
        ScalarField(BIZ_FIELD, "varchar", 1024),  # bytes: MAX_BIZ_ID_CHARS of CJK fit
        ScalarField(HASH_FIELD, "varchar", 64),
    ),
)
PASSAGE_FIELDS = ["id", BIZ_FIELD, CONTENT_FIELD]
PASSAGES_ONLY = f'{HASH_FIELD} < "g"'  # hex content hashes; retrieval keys start with "k:"
KEY_PREFIX = "k:"


def _key_hash(passage_id: int, prompt: str) -> str:
    return f"{KEY_PREFIX}{passage_id}:{content_hash(prompt)[:40]}"


def _passage_id(row_id: int, row_hash: str) -> int:
    """The passage a row stands for: itself, or the passage a retrieval key points at."""
    if row_hash.startswith(KEY_PREFIX):
        return int(row_hash.split(":")[1])
    return row_id


class MilvusStore:
    """The curated corpus: one collection over a connection this store owns (or shares, see ``sibling``)."""

    def __init__(
        self,
        *,
        uri: str = "",
        lite_path: str = "./data/milvus.db",
        token: str = "",
        db_name: str = "",
        collection: str = "writing",
        timeout: float = 5.0,
        connection: MilvusConnection | None = None,
    ) -> None:
        self._owns_connection = connection is None
        self.connection = connection or MilvusConnection(
            uri=uri, lite_path=lite_path, token=token, db_name=db_name, timeout=timeout
        )
        self.collection = collection
        self._coll = MilvusCollection(self.connection, collection, CORPUS_SPEC)
        self._tombstones: dict[int, float] = {}
        self._tombstone_lock = threading.Lock()

    def sibling(self, collection: str) -> MilvusStore:
        """A store for another collection over this one's connection (a Lite file has one owner)."""
        return MilvusStore(collection=collection, connection=self.connection)

    @property
    def kind(self) -> str:
        return self.connection.kind

    @property
    def target(self) -> str:
        return self.connection.target

    @property
    def uri(self) -> str:
        return self.connection.uri

    @property
    def dim(self) -> int | None:
        return self._coll.dim

    # -- lifecycle ---------------------------------------------------------------------------------------
    def open(self, dim: int | None) -> None:
        """Connect, create the collection if missing, check its dimension, load it. Idempotent.

        ``dim=None`` opens an existing collection whatever its dimension (to read it, e.g. to re-embed)."""
        try:
            self._coll.ensure(dim)
        except Exception:
            self.connection.reset()
            raise

    def reset(self) -> None:
        self.connection.reset()

    def close(self) -> None:
        if self._owns_connection:
            self.connection.close()

    def ping(self) -> None:
        self._coll.ping()

    # -- reads -------------------------------------------------------------------------------------------
    def _tombstone_filter(self) -> str:
        now = time.monotonic()
        with self._tombstone_lock:
            for i in [i for i, t in self._tombstones.items() if now - t > TOMBSTONE_SECONDS]:
                del self._tombstones[i]
            ids = list(self._tombstones)
        return f"id not in [{', '.join(map(str, ids))}]" if ids else ""

    def search(self, vector, limit: int = 1) -> list[Match]:
        hits = self._coll.search(
            vector, limit=limit, filter=self._tombstone_filter(), output_fields=[CONTENT_FIELD, BIZ_FIELD, HASH_FIELD]
        )
        matches, seen = [], set()
        for h in hits:  # a passage and its retrieval key can both come back: the best one counts
            passage_id = _passage_id(h.id, h.entity.get(HASH_FIELD, ""))
            if passage_id in seen:
                continue
            seen.add(passage_id)
            matches.append(
                Match(
                    id=passage_id,
                    biz_id=h.entity.get(BIZ_FIELD, ""),
                    content=h.entity.get(CONTENT_FIELD, ""),
                    similarity=h.similarity,
                )
            )
        return matches

    def ids_by_hash(self, hashes: Sequence[str]) -> dict[str, int]:
        """Which of these content hashes are stored already, and under which id."""
        found: dict[str, int] = {}
        hashes = list(hashes)
        for start in range(0, len(hashes), HASH_QUERY_CHUNK):
            chunk = hashes[start : start + HASH_QUERY_CHUNK]
            rows = self._coll.query(f"{HASH_FIELD} in [{', '.join(quote(h) for h in chunk)}]", ["id", HASH_FIELD])
            for r in rows:
                found.setdefault(r[HASH_FIELD], int(r["id"]))
        return found

    def iter_passages(self, batch_size: int = 500) -> Iterator[list[Passage]]:
        """Every stored passage, in batches (for re-embedding)."""
        for rows in self._coll.iterate([CONTENT_FIELD, BIZ_FIELD], batch_size, expr=PASSAGES_ONLY):
            yield [Passage(content=r[CONTENT_FIELD], biz_id=r.get(BIZ_FIELD, "")) for r in rows]

    def count(self) -> int:
        return self._coll.count(PASSAGES_ONLY)

    def get_passages(self, ids: list[int]) -> list[dict]:
        if not ids:
            return []
        rows = self._coll.get(ids, [*PASSAGE_FIELDS, HASH_FIELD])
        return [_row(r) for r in rows if not r.get(HASH_FIELD, "").startswith(KEY_PREFIX)]

    def list_passages(self, *, biz_id: str | None = None, limit: int = 20, offset: int = 0) -> list[dict]:
        if offset + limit > QUERY_WINDOW:
            raise ValueError(f"offset + limit must not exceed {QUERY_WINDOW}")
        expr = f"{BIZ_FIELD} == {quote(biz_id)} and {PASSAGES_ONLY}" if biz_id is not None else PASSAGES_ONLY
        rows = self._coll.query(expr, PASSAGE_FIELDS, limit=limit, offset=offset)
        return sorted((_row(r) for r in rows), key=lambda r: r["id"])

    def stats(self) -> dict:
        return {"collection": self.collection, "store": self.kind, "count": self.count(), **self._coll.describe()}

    # -- writes -------------------------------------------------------------------------------------------
    def delete_passages(self, *, ids: list[int] | None = None, biz_id: str | None = None) -> int:
        """Delete by ids or by biz_id; returns how many passages were deleted."""
        if biz_id is not None:
            ids = [r["id"] for r in self._coll.query(f"{BIZ_FIELD} == {quote(biz_id)} and {PASSAGES_ONLY}", ["id"])]
        if not ids:
            return 0
        existing = [
            int(r["id"]) for r in self._coll.query(f"id in [{', '.join(map(str, ids))}] and {PASSAGES_ONLY}", ["id"])
        ]
        if not existing:
            return 0
        keys = [
            int(r["id"])
            for passage_id in existing
            for r in self._coll.query(f'{HASH_FIELD} like "{KEY_PREFIX}{passage_id}:%"', ["id"])
        ]
        self._coll.delete(ids=existing + keys)
        now = time.monotonic()
        with self._tombstone_lock:
            self._tombstones.update({i: now for i in existing + keys})
        self.flush()
        return len(existing)

    def add_retrieval_key(self, passage_id: int, prompt: str, vector) -> int:
        """Let ``prompt`` (embedded as ``vector``) find passage ``passage_id``; idempotent per prompt."""
        rows = self.get_passages([passage_id])
        if not rows:
            raise KeyError(passage_id)
        key = _key_hash(passage_id, prompt)
        found = self._coll.query(f"{HASH_FIELD} == {quote(key)}", ["id"])
        if found:
            return int(found[0]["id"])
        row = {
            VECTOR_FIELD: list(map(float, vector)),
            CONTENT_FIELD: rows[0]["content"],
            BIZ_FIELD: rows[0]["biz_id"],
            HASH_FIELD: key,
        }
        (key_id,) = self._coll.insert([row])
        self.flush()
        return key_id

    def insert(self, passages: Sequence[Passage], vectors) -> list[int]:
        rows = [
            {
                VECTOR_FIELD: list(map(float, v)),
                CONTENT_FIELD: p.content,
                BIZ_FIELD: p.biz_id,
                HASH_FIELD: p.content_hash,
            }
            for p, v in zip(passages, vectors, strict=True)
        ]
        return self._coll.insert(rows)

    def flush(self) -> None:
        self._coll.flush()


def _row(r: dict) -> dict:
    return {"id": int(r["id"]), "biz_id": r.get(BIZ_FIELD, ""), "content": r.get(CONTENT_FIELD, "")}
