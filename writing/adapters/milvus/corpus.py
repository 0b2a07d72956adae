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

**A collection made by the reference** (auto ``id``, ``content_vector``, ``content_full``, ``biz_id``
INT64, no ``content_hash``) is served as it is: searches, reads and exports work, biz_ids come back
as the integers they are, and every write gets ``ReadOnlyCollection`` (409) saying how to copy it into
a collection of this schema without re-embedding (``python ingest.py --migrate``). A filter by a
biz_id that is not an integer gets 422 there.

The collection's layout (fields, retrieval keys, the reference's schema) is
``writing.adapters.milvus.corpus_schema``; the ids deleted a moment ago that searches leave out are
``writing.adapters.milvus.tombstones``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from writing.adapters.milvus.collection import QUERY_WINDOW, MilvusCollection, MilvusConnection, quote
from writing.adapters.milvus.corpus_schema import (
    BIZ_FIELD,
    CONTENT_FIELD,
    CORPUS_SPEC,
    HASH_FIELD,
    KEY_PREFIX,
    PASSAGE_FIELDS,
    PASSAGES_ONLY,
    VECTOR_FIELD,
    ReadOnlyCollection,
    biz_filter,
    contains_filter,
    exact_row,
    key_hash,
    keys_of,
    matches,
    passage_row,
    read_only_error,
)
from writing.adapters.milvus.tombstones import TOMBSTONE_SECONDS, Tombstones
from writing.core.exact import ExactRow
from writing.core.models import Match, Passage
from writing.core.ports import StoreWatcher
from writing.text import content_hash

__all__ = [  # the layout's names stay importable from here
    "BIZ_FIELD",
    "CONTENT_FIELD",
    "CORPUS_SPEC",
    "HASH_FIELD",
    "HASH_QUERY_CHUNK",
    "KEY_PREFIX",
    "PASSAGES_ONLY",
    "PASSAGE_FIELDS",
    "TOMBSTONE_SECONDS",
    "VECTOR_FIELD",
    "MilvusStore",
    "ReadOnlyCollection",
]

HASH_QUERY_CHUNK = 500
EXACT_BATCH = 2000  # rows per read while the exact tier's index loads


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
        self._tombstones = Tombstones()
        self._server_version: str | None = None  # "lite", or what a server says it runs
        self._domains: list[MilvusConnection] = []
        self.watcher: StoreWatcher | None = None  # told of this store's writes (the exact tier's index)

    # -- the schema the open collection has --------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        """True for a collection made by the reference (no content hash): served, never written."""
        return bool(self._coll.field_kinds) and HASH_FIELD not in self._coll.field_kinds

    @property
    def integer_biz_ids(self) -> bool:
        return self._coll.field_kinds.get(BIZ_FIELD) == "int64"

    def _writable(self) -> None:
        if self.read_only:
            raise read_only_error(self.collection)

    def _passages_only(self) -> str:
        return "id >= 0" if self.read_only else PASSAGES_ONLY

    def _biz_filter(self, biz_id: str | int) -> str:
        return biz_filter(biz_id, integer=self.integer_biz_ids, collection=self.collection)

    def _output_fields(self, *fields: str) -> list[str]:
        return [f for f in fields if f != HASH_FIELD or not self.read_only]

    def domain_connection(self) -> MilvusConnection:
        """A connection of its own to the same Milvus, for another failure domain (answers, records,
        settings): its own client, reset on its own; closed with this store."""
        conn = self.connection.sibling()
        self._domains.append(conn)
        return conn

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
        for conn in self._domains:
            conn.close()
        self._domains.clear()
        if self._owns_connection:
            self.connection.close()

    def ping(self) -> None:
        self._coll.ping()

    # -- reads -------------------------------------------------------------------------------------------
    def search(self, vector, limit: int = 1) -> list[Match]:
        return self.search_many([vector], limit)[0]

    def search_many(self, vectors, limit: int = 1) -> list[list[Match]]:
        """One Milvus call for a batch of prompts: the matches of each, best first."""
        per_vector = self._coll.search_many(
            vectors,
            limit=limit,
            filter=self._tombstones.search_filter(),
            output_fields=self._output_fields(CONTENT_FIELD, BIZ_FIELD, HASH_FIELD),
        )
        return [matches(hits) for hits in per_vector]

    def ids_by_hash(self, hashes: Sequence[str]) -> dict[str, int]:
        """Which of these content hashes are stored already, and under which id (the lowest, should a
        concurrent add have stored one twice for a moment)."""
        return {h: min(ids) for h, ids in self._rows_by_hash(hashes).items()}

    def _rows_by_hash(self, hashes: Sequence[str]) -> dict[str, list[int]]:
        self._writable()  # a reference collection has no hashes: only writers ask
        found: dict[str, list[int]] = {}
        hashes = list(hashes)
        for start in range(0, len(hashes), HASH_QUERY_CHUNK):
            chunk = hashes[start : start + HASH_QUERY_CHUNK]
            rows = self._coll.query(f"{HASH_FIELD} in [{', '.join(quote(h) for h in chunk)}]", ["id", HASH_FIELD])
            for r in rows:
                found.setdefault(r[HASH_FIELD], []).append(int(r["id"]))
        return found

    def settle_duplicates(self, hashes: Sequence[str]) -> dict[str, int]:
        """After an insert: where concurrent adds (threads or workers) stored one text more than once, keep
        the lowest id and delete the others. Every writer reaches the same choice, so they converge.
        Returns hash -> the id that stays."""
        rows = self._rows_by_hash(hashes)
        extra = [i for ids in rows.values() for i in sorted(ids)[1:]]
        if extra:
            self._coll.delete(ids=extra)
            self._tombstones.add(extra)
            self._removed(extra)
            self.flush()
        return {h: min(ids) for h, ids in rows.items()}

    def iter_passages(self, batch_size: int = 500) -> Iterator[list[Passage]]:
        """Every stored passage, in batches (for re-embedding and export); biz_ids as stored."""
        for rows in self._coll.iterate([CONTENT_FIELD, BIZ_FIELD], batch_size, expr=self._passages_only()):
            yield [Passage(content=r[CONTENT_FIELD], biz_id=r.get(BIZ_FIELD, "")) for r in rows]

    def iter_rows(self, batch_size: int = 500) -> Iterator[list[tuple[Passage, list[float]]]]:
        """Every passage with its stored vector, in batches (to migrate without re-embedding)."""
        fields = [CONTENT_FIELD, BIZ_FIELD, VECTOR_FIELD]
        for rows in self._coll.iterate(fields, batch_size, expr=self._passages_only()):
            yield [(Passage(content=r[CONTENT_FIELD], biz_id=r.get(BIZ_FIELD, "")), r[VECTOR_FIELD]) for r in rows]

    def passage_hashes(self) -> dict[str, int]:
        """hash -> id of every passage (computed from the text in a reference collection)."""
        field = CONTENT_FIELD if self.read_only else HASH_FIELD
        found: dict[str, int] = {}
        for rows in self._coll.iterate(["id", field], 1000, expr=self._passages_only()):
            for r in rows:
                key = content_hash(r[field]) if self.read_only else r[field]
                found.setdefault(key, int(r["id"]))
        return found

    def exact_ids(self) -> Iterator[list[int]]:
        """Every row's id, passages and retrieval keys (the exact tier's reload)."""
        for rows in self._coll.iterate(["id"], EXACT_BATCH):
            yield [int(r["id"]) for r in rows]

    def exact_rows(self, ids: Sequence[int] | None = None) -> Iterator[list[ExactRow]]:
        """Rows as the exact tier's index holds them: every passage and retrieval key, or those ids."""
        text = self._output_fields("id", HASH_FIELD, CONTENT_FIELD, BIZ_FIELD)
        if ids is not None:
            for start in range(0, len(ids), EXACT_BATCH):
                chunk = ids[start : start + EXACT_BATCH]
                yield [exact_row(r) for r in self._coll.query(f"id in [{', '.join(map(str, chunk))}]", text)]
            return
        for rows in self._coll.iterate(text, EXACT_BATCH, expr=self._passages_only()):
            yield [exact_row(r) for r in rows]
        if not self.read_only:  # retrieval keys: their hash says all, the passage holds the text
            for rows in self._coll.iterate(["id", HASH_FIELD], EXACT_BATCH, expr=f'{HASH_FIELD} >= "{KEY_PREFIX}"'):
                yield [exact_row(r) for r in rows]

    def count(self) -> int:
        return self._coll.count(self._passages_only())

    def get_passages(self, ids: list[int]) -> list[dict]:
        if not ids:
            return []
        rows = self._coll.get(ids, self._output_fields(*PASSAGE_FIELDS, HASH_FIELD))
        return [passage_row(r) for r in rows if not r.get(HASH_FIELD, "").startswith(KEY_PREFIX)]

    def _list_filter(self, biz_id: str | None, text: str | None = None) -> str:
        parts = [self._passages_only()]
        if biz_id is not None:
            parts.append(self._biz_filter(biz_id))
        if text is not None:  # a substring of the passage
            parts.append(contains_filter(text))
        return " and ".join(parts)

    def list_passages(self, *, biz_id: str | None = None, limit: int = 20, offset: int = 0) -> list[dict]:
        """One page of passages (of one biz_id), in id order within the page."""
        return self.find_passages(biz_id=biz_id, limit=limit, offset=offset, count=False)[0]

    def find_passages(
        self, *, biz_id: str | None = None, text: str | None = None, limit: int = 20, offset: int = 0, count=True
    ) -> tuple[list[dict], int | None]:
        """One page of passages (of one biz_id, holding ``text``) and, with ``count``, how many match.

        Milvus matches ``LIKE "%text%"`` from 2.4.3 on (Lite included); an older server matches only
        prefixes, so there the passages are read and filtered here, up to QUERY_WINDOW matches."""
        if offset + limit > QUERY_WINDOW:
            raise ValueError(f"offset + limit must not exceed {QUERY_WINDOW}")
        if text is not None and not self._infix_like():
            found: list[dict] = []
            for rows in self._coll.iterate(PASSAGE_FIELDS, 1000, expr=self._list_filter(biz_id)):
                found += [passage_row(r) for r in rows if text in r.get(CONTENT_FIELD, "")]
                if len(found) >= QUERY_WINDOW:
                    break
            found.sort(key=lambda r: r["id"])
            return found[offset : offset + limit], len(found) if count else None
        expr = self._list_filter(biz_id, text)
        rows = self._coll.query(expr, PASSAGE_FIELDS, limit=limit, offset=offset)
        return sorted((passage_row(r) for r in rows), key=lambda r: r["id"]), self._coll.count(expr) if count else None

    def _infix_like(self) -> bool:
        if self._server_version is None:
            version = "lite" if not self.uri else str(self._coll.server_version())
            self._server_version = version
        numbers = re.findall(r"\d+", self._server_version)[:3]
        return self._server_version == "lite" or tuple(map(int, numbers)) >= (2, 4, 3) or len(numbers) < 2

    def stats(self) -> dict:
        return {
            "collection": self.collection,
            "store": self.kind,
            "count": self.count(),
            "read_only": self.read_only,
            **self._coll.describe(),
        }

    # -- writes -------------------------------------------------------------------------------------------
    def check_writable(self) -> None:
        """``ReadOnlyCollection`` (409) for a collection of the reference's schema: a change is refused
        before its undo journal entry is begun."""
        self._writable()

    def passages_of(self, biz_id: str) -> list[dict]:
        """Every passage under this biz_id, whole (what a delete by biz_id removes), in id order."""
        self._writable()  # asked before a delete only
        rows = self._coll.query(f"{self._biz_filter(biz_id)} and {PASSAGES_ONLY}", PASSAGE_FIELDS)
        return sorted((passage_row(r) for r in rows), key=lambda r: r["id"])

    def delete_passages(self, *, ids: list[int] | None = None, biz_id: str | None = None) -> int:
        """Delete by ids or by biz_id; returns how many passages were deleted."""
        self._writable()
        if biz_id is not None:
            ids = [r["id"] for r in self.passages_of(biz_id)]
        if not ids:
            return 0
        existing = [
            int(r["id"]) for r in self._coll.query(f"id in [{', '.join(map(str, ids))}] and {PASSAGES_ONLY}", ["id"])
        ]
        if not existing:
            return 0
        keys = [int(r["id"]) for passage_id in existing for r in self._coll.query(keys_of(passage_id), ["id"])]
        self._coll.delete(ids=existing + keys)
        self._tombstones.add(existing + keys)
        self._removed(existing + keys)
        self.flush()
        return len(existing)

    def _removed(self, ids: list[int]) -> None:
        if self.watcher is not None:
            self.watcher.removed(ids)

    def _added(self, rows: list[dict]) -> None:
        if self.watcher is not None:
            self.watcher.added([exact_row(r) for r in rows])

    def delete_hashes(self, hashes: Sequence[str]) -> int:
        """Delete the passages with these content hashes (and their retrieval keys)."""
        ids = [i for ids in self._rows_by_hash(hashes).values() for i in ids]
        return self.delete_passages(ids=ids) if ids else 0

    def add_retrieval_key(self, passage_id: int, prompt: str, vector) -> int:
        """Let ``prompt`` (embedded as ``vector``) find passage ``passage_id``; idempotent per prompt."""
        self._writable()
        rows = self.get_passages([passage_id])
        if not rows:
            raise KeyError(passage_id)
        key = key_hash(passage_id, prompt)
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
        self._added([{"id": key_id, HASH_FIELD: key}])
        self.flush()
        return key_id

    def delete_retrieval_key(self, passage_id: int, prompt: str) -> bool:
        """Remove the retrieval key that lets ``prompt`` find passage ``passage_id`` (undo of a promote)."""
        self._writable()
        found = [
            int(r["id"]) for r in self._coll.query(f"{HASH_FIELD} == {quote(key_hash(passage_id, prompt))}", ["id"])
        ]
        if not found:
            return False
        self._coll.delete(ids=found)
        self._tombstones.add(found)
        self._removed(found)
        self.flush()
        return True

    def insert(self, passages: Sequence[Passage], vectors) -> list[int]:
        self._writable()
        rows = [
            {
                VECTOR_FIELD: list(map(float, v)),
                CONTENT_FIELD: p.content,
                BIZ_FIELD: str(p.biz_id),
                HASH_FIELD: p.content_hash,
            }
            for p, v in zip(passages, vectors, strict=True)
        ]
        ids = self._coll.insert(rows)
        self._added([{**row, "id": i} for i, row in zip(ids, rows, strict=True)])
        return ids

    def flush(self) -> None:
        self._coll.flush()
