"""The curated corpus in Milvus, through pymilvus: a Milvus server (``MILVUS_URI``) or Milvus Lite.

Collection ``writing`` (configurable): ``id`` INT64 auto, ``content_vector`` FLOAT_VECTOR (the
embedding model's dimension), ``content_full`` VARCHAR, ``biz_id`` VARCHAR, ``content_hash`` VARCHAR
(sha256 of the normalised text, the key that makes ingestion idempotent). COSINE index; searches use
Bounded consistency. All calls are synchronous (pymilvus is); the service runs them in a thread.
"""

from __future__ import annotations

import logging
import os
import threading
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


def _quote(value: str) -> str:
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
        return MilvusClient(self.lite_path)

    @property
    def client(self):
        if self._client is None:
            raise VectorStoreError("vector store is not connected")
        return self._client

    def open(self, dim: int) -> None:
        """Connect, create the collection if missing, check its dimension, load it. Idempotent."""
        with self._lock:
            try:
                if self._client is None:
                    self._client = self._connect()
                self._ensure_collection(dim)
            except DimensionMismatch:
                raise
            except Exception as exc:  # noqa: BLE001
                self._drop_client()
                raise VectorStoreError(f"cannot open {self.kind} at {self.target}: {exc}") from exc
            self.dim = dim

    def _ensure_collection(self, dim: int) -> None:
        from pymilvus import DataType, MilvusClient

        c = self._client
        if not c.has_collection(self.collection, timeout=self.timeout):
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
        if have != dim:
            raise DimensionMismatch(
                f"collection {self.collection!r} holds {have}-dim vectors but the embedding model "
                f"makes {dim}-dim ones; use the model the collection was built with, or set "
                "MILVUS_COLLECTION to a new collection and re-ingest"
            )
        c.load_collection(self.collection, timeout=self.timeout)

    def _drop_client(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001
                pass
        self._client = None

    def close(self) -> None:
        with self._lock:
            self._drop_client()

    # -- reads ----------------------------------------------------------------------------------
    def search(self, vector, limit: int = 1) -> list[Match]:
        try:
            res = self.client.search(
                self.collection,
                data=[list(map(float, vector))],
                anns_field=VECTOR_FIELD,
                limit=limit,
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

    def ids_by_hash(self, hashes: list[str]) -> dict[str, int]:
        """Which of these content hashes are stored already, and under which id."""
        found: dict[str, int] = {}
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            rows = self.client.query(
                self.collection,
                filter=f"{HASH_FIELD} in [{', '.join(_quote(h) for h in chunk)}]",
                output_fields=["id", HASH_FIELD],
                consistency_level="Strong",
                timeout=self.timeout,
            )
            for r in rows:
                found.setdefault(r[HASH_FIELD], int(r["id"]))
        return found

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

    # -- writes ---------------------------------------------------------------------------------
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

    def flush(self) -> None:
        if self.uri:  # Milvus Lite persists on insert; a server needs a flush to seal segments
            self.client.flush(self.collection, timeout=self.timeout)
