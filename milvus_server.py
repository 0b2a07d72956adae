"""The curated corpus in Milvus, through pymilvus: a Milvus server (``MILVUS_URI``) or Milvus Lite.

Collection ``writing`` (configurable): ``id`` INT64 auto, ``content_vector`` FLOAT_VECTOR (the
embedding model's dimension), ``content_full`` VARCHAR, ``biz_id`` VARCHAR, ``content_hash`` VARCHAR
(sha256 of the normalised text, the key that makes ingestion idempotent). COSINE index; searches use
Bounded consistency. All calls are synchronous (pymilvus is); the service runs them in a thread.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from textutil import content_hash

logger = logging.getLogger(__name__)

VECTOR_FIELD = "content_vector"
CONTENT_FIELD = "content_full"
BIZ_FIELD = "biz_id"
HASH_FIELD = "content_hash"
MAX_CONTENT_CHARS = 16000  # VARCHAR max_length counts bytes; 16k CJK chars * 3 bytes < 65535
MAX_BIZ_ID_CHARS = 256


class VectorStoreError(RuntimeError):
    """The vector store could not be reached or answered with an error."""


class DimensionMismatch(RuntimeError):
    """The collection was built for another embedding dimension."""


class StoreLocked(RuntimeError):
    """Another process owns the Milvus Lite file."""


TOMBSTONE_SECONDS = 120.0  # deleted ids are filtered out of searches while replicas may lag


@dataclass(frozen=True)
class Match:
    id: int
    biz_id: str
    content: str
    similarity: float


@dataclass(frozen=True)
class Passage:
    content: str
    biz_id: str

    @property
    def content_hash(self) -> str:
        return content_hash(self.content)


QUERY_WINDOW = 16384  # Milvus refuses a query whose offset + limit exceeds this
LOAD_TIMEOUT = 120.0  # loading a collection into memory can take far longer than one call
CONTROL_CHARS = {chr(c) for c in range(32)} | {chr(127)}


def store_call(method):
    """Any failure of a store call surfaces as VectorStoreError (HTTP 503, and a reconnect)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except VectorStoreError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise VectorStoreError(f"{method.__name__} failed: {exc}") from exc

    return wrapper


def quote(value: str) -> str:
    """A string literal for a Milvus filter expression (control characters are refused upstream)."""
    if any(ch in CONTROL_CHARS for ch in value):
        raise ValueError("control characters cannot appear in a filter value")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MilvusStore:
    """One client per process, reused for every call."""

    def __init__(
        self,
        *,
        uri: str = "",
        lite_path: str = "./data/milvus.db",
        token: str = "",
        db_name: str = "",
        collection: str = "writing",
        timeout: float = 5.0,
    ) -> None:
        self.uri = uri
        self.lite_path = lite_path
        self.token = token
        self.db_name = db_name
        self.collection = collection
        self.timeout = timeout
        self.dim: int | None = None
        self._client = None
        self._lock = threading.Lock()
        self._lite_lock = None  # the open lock file that marks this process as the Lite file's owner
        self._tombstones: dict[int, float] = {}
        self._borrowed = False  # a sibling's connection belongs to the store it came from

    def sibling(self, collection: str) -> "MilvusStore":
        """A store for another collection over this one's connection (a Lite file has one owner)."""
        if self._client is None:
            raise VectorStoreError("open this store before making a sibling")
        other = MilvusStore(
            uri=self.uri, lite_path=self.lite_path, token=self.token, db_name=self.db_name,
            collection=collection, timeout=self.timeout,
        )
        other._client = self._client
        other._borrowed = True
        return other

    @property
    def kind(self) -> str:
        return "milvus-server" if self.uri else "milvus-lite"

    @property
    def target(self) -> str:
        return self.uri or os.path.abspath(self.lite_path)

    # -- connection and schema -------------------------------------------------------------------
    def _connect(self):
        from pymilvus import MilvusClient

        if self.uri:
            kwargs = {"uri": self.uri, "timeout": self.timeout}
            if self.token:
                kwargs["token"] = self.token
            if self.db_name:
                # create the database on first use (needs the server's default db to be reachable)
                admin = MilvusClient(**kwargs)
                try:
                    if self.db_name not in admin.list_databases(timeout=self.timeout):
                        admin.create_database(self.db_name, timeout=self.timeout)
                finally:
                    admin.close()
                kwargs["db_name"] = self.db_name
            return MilvusClient(**kwargs)
        Path(self.lite_path).parent.mkdir(parents=True, exist_ok=True)
        self._own_lite_file()
        return MilvusClient(self.lite_path)

    def _own_lite_file(self) -> None:
        """One process owns a Milvus Lite file; a second one gets a message saying why it cannot start."""
        import fcntl

        if self._lite_lock is not None:
            return
        fh = open(f"{self.lite_path}.owner.lock", "a+")  # noqa: SIM115
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise StoreLocked(
                f"the Milvus Lite file {os.path.abspath(self.lite_path)} is in use by another process "
                "(one process owns a Lite file: run one worker, stop the other process, or use a Milvus "
                "server via MILVUS_URI for several workers)"
            ) from None
        self._lite_lock = fh

    @property
    def client(self):
        if self._client is None:
            raise VectorStoreError("vector store is not connected")
        return self._client

    def open(self, dim: int | None) -> None:
        """Connect, create the collection if missing, check its dimension, load it. Idempotent.

        ``dim=None`` opens an existing collection whatever its dimension (to read it, e.g. to re-embed)."""
        with self._lock:
            try:
                if self._client is None:
                    self._client = self._connect()
                have = self._ensure_collection(dim)
            except (DimensionMismatch, StoreLocked, VectorStoreError):
                self._drop_client()
                raise
            except Exception as exc:  # noqa: BLE001
                self._drop_client()
                raise VectorStoreError(f"cannot open {self.kind} at {self.target}: {exc}") from exc
            self.dim = dim or have

    def _ensure_collection(self, dim: int | None) -> int:
        from pymilvus import DataType, MilvusClient

        c = self._client
        exists = c.has_collection(self.collection, timeout=self.timeout)
        if not exists and dim is None:
            raise VectorStoreError(f"collection {self.collection!r} does not exist in {self.kind} at {self.target}")
        if not exists:
            schema = MilvusClient.create_schema(auto_id=True, enable_dynamic_field=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=dim)
            schema.add_field(CONTENT_FIELD, DataType.VARCHAR, max_length=65535)
            schema.add_field(BIZ_FIELD, DataType.VARCHAR, max_length=1024)
            schema.add_field(HASH_FIELD, DataType.VARCHAR, max_length=64)
            index = c.prepare_index_params()
            index.add_index(VECTOR_FIELD, index_type="AUTOINDEX", metric_type="COSINE")
            c.create_collection(
                self.collection,
                schema=schema,
                index_params=index,
                consistency_level="Bounded",
                timeout=self.timeout,
            )
            logger.info("created collection %s (dim %d) in %s", self.collection, dim, self.kind)
        desc = c.describe_collection(self.collection, timeout=self.timeout)
        fields = {f["name"]: f for f in desc["fields"]}
        missing = {VECTOR_FIELD, CONTENT_FIELD, BIZ_FIELD, HASH_FIELD} - set(fields)
        if missing:
            raise DimensionMismatch(
                f"collection {self.collection!r} lacks fields {sorted(missing)}; "
                "point MILVUS_COLLECTION at a new name or re-create it"
            )
        have = int(fields[VECTOR_FIELD]["params"]["dim"])
        if dim is not None and have != dim:
            raise DimensionMismatch(
                f"collection {self.collection!r} holds {have}-dim vectors but the embedding model "
                f"makes {dim}-dim ones; use the model the collection was built with, or set "
                "MILVUS_COLLECTION to a new collection and re-ingest"
            )
        c.load_collection(self.collection, timeout=max(self.timeout, LOAD_TIMEOUT))
        return have

    def _drop_client(self) -> None:
        if self._client is not None and not self._borrowed:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001
                pass
        self._client = None

    def reset(self) -> None:
        """Forget a connection that failed; the next ``open`` connects afresh. Never waits: when a
        (re)connection holds the lock, that one is replacing the connection anyway."""
        if self._lock.acquire(blocking=False):
            try:
                self._drop_client()
            finally:
                self._lock.release()

    def close(self) -> None:
        with self._lock:
            self._drop_client()
            if self._lite_lock is not None:
                self._lite_lock.close()
                self._lite_lock = None

    # -- reads ----------------------------------------------------------------------------------
    def _tombstone_filter(self) -> str:
        now = time.monotonic()
        for i in [i for i, t in self._tombstones.items() if now - t > TOMBSTONE_SECONDS]:
            self._tombstones.pop(i, None)
        ids = list(self._tombstones)
        return f"id not in [{', '.join(map(str, ids))}]" if ids else ""

    def search(self, vector, limit: int = 1) -> list[Match]:
        try:
            res = self.client.search(
                self.collection,
                data=[list(map(float, vector))],
                anns_field=VECTOR_FIELD,
                limit=limit,
                filter=self._tombstone_filter(),
                output_fields=[CONTENT_FIELD, BIZ_FIELD],
                search_params={"metric_type": "COSINE"},
                consistency_level="Bounded",
                timeout=self.timeout,
            )
        except Exception as exc:  # noqa: BLE001
            raise VectorStoreError(f"search failed: {exc}") from exc
        hits = res[0] if res else []
        return [
            Match(
                id=int(h["id"]),
                biz_id=h["entity"].get(BIZ_FIELD, ""),
                content=h["entity"].get(CONTENT_FIELD, ""),
                # COSINE distances come back as similarity; float error can overshoot 1.0
                similarity=max(-1.0, min(1.0, float(h["distance"]))),
            )
            for h in hits
        ]

    @store_call
    def ids_by_hash(self, hashes: list[str]) -> dict[str, int]:
        """Which of these content hashes are stored already, and under which id."""
        found: dict[str, int] = {}
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            rows = self.client.query(
                self.collection,
                filter=f"{HASH_FIELD} in [{', '.join(quote(h) for h in chunk)}]",
                output_fields=["id", HASH_FIELD],
                consistency_level="Strong",
                timeout=self.timeout,
            )
            for r in rows:
                found.setdefault(r[HASH_FIELD], int(r["id"]))
        return found

    def iter_passages(self, batch_size: int = 500):
        """Every stored passage, in batches (for re-embedding)."""
        it = self.client.query_iterator(
            self.collection, batch_size=batch_size, filter="id >= 0", output_fields=[CONTENT_FIELD, BIZ_FIELD],
            timeout=self.timeout,
        )
        try:
            while rows := it.next():
                yield [Passage(content=r[CONTENT_FIELD], biz_id=r.get(BIZ_FIELD, "")) for r in rows]
        finally:
            it.close()

    @store_call
    def count(self) -> int:
        rows = self.client.query(
            self.collection,
            filter="id >= 0",
            output_fields=["count(*)"],
            consistency_level="Strong",
            timeout=self.timeout,
        )
        return int(rows[0]["count(*)"]) if rows else 0

    def ping(self) -> None:
        try:
            self.client.has_collection(self.collection, timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001
            raise VectorStoreError(f"{self.kind} does not answer: {exc}") from exc

    @store_call
    def get(self, ids: list[int]) -> list[dict]:
        if not ids:
            return []
        rows = self.client.get(
            self.collection, ids=ids, output_fields=["id", BIZ_FIELD, CONTENT_FIELD], timeout=self.timeout
        )
        return [_row(r) for r in rows]

    @store_call
    def list(self, *, biz_id: str | None = None, limit: int = 20, offset: int = 0) -> list[dict]:
        if offset + limit > QUERY_WINDOW:
            raise ValueError(f"offset + limit must not exceed {QUERY_WINDOW}")
        rows = self.client.query(
            self.collection,
            filter=f"{BIZ_FIELD} == {quote(biz_id)}" if biz_id is not None else "id >= 0",
            output_fields=["id", BIZ_FIELD, CONTENT_FIELD],
            limit=limit,
            offset=offset,
            consistency_level="Strong",
            timeout=self.timeout,
        )
        return sorted((_row(r) for r in rows), key=lambda r: r["id"])

    @store_call
    def delete(self, *, ids: list[int] | None = None, biz_id: str | None = None) -> int:
        """Delete by ids or by biz_id; returns how many passages were deleted."""
        if biz_id is not None:
            ids = [r["id"] for r in self._ids_where(f"{BIZ_FIELD} == {quote(biz_id)}")]
        if not ids:
            return 0
        existing = [r["id"] for r in self._ids_where(f"id in [{', '.join(map(str, ids))}]")]
        if not existing:
            return 0
        self.client.delete(self.collection, ids=existing, timeout=self.timeout)
        now = time.monotonic()
        self._tombstones.update({i: now for i in existing})
        self.flush()
        return len(existing)

    def _ids_where(self, expr: str) -> list[dict]:
        return self.client.query(
            self.collection, filter=expr, output_fields=["id"], consistency_level="Strong", timeout=self.timeout
        )

    @store_call
    def stats(self) -> dict:
        desc = self.client.describe_collection(self.collection, timeout=self.timeout)
        index = {}
        try:
            index = self.client.describe_index(self.collection, VECTOR_FIELD, timeout=self.timeout) or {}
        except Exception:  # noqa: BLE001 - index details are informative only
            pass
        return {
            "collection": self.collection,
            "store": self.kind,
            "count": self.count(),
            "dimension": next(int(f["params"]["dim"]) for f in desc["fields"] if f["name"] == VECTOR_FIELD),
            "index_type": index.get("index_type"),
            "metric_type": index.get("metric_type"),
        }

    # -- writes ---------------------------------------------------------------------------------

    @store_call
    def insert(self, passages: list[Passage], vectors) -> list[int]:
        rows = [
            {
                VECTOR_FIELD: list(map(float, v)),
                CONTENT_FIELD: p.content,
                BIZ_FIELD: p.biz_id,
                HASH_FIELD: p.content_hash,
            }
            for p, v in zip(passages, vectors)
        ]
        res = self.client.insert(self.collection, rows, timeout=self.timeout)
        return [int(i) for i in res["ids"]]

    @store_call
    def flush(self) -> None:
        if self.uri:  # Milvus Lite persists on insert; a server needs a flush to seal segments
            self.client.flush(self.collection, timeout=self.timeout)


def _row(r: dict) -> dict:
    return {"id": int(r["id"]), "biz_id": r.get(BIZ_FIELD, ""), "content": r.get(CONTENT_FIELD, "")}
