"""One Milvus collection of the service, over a shared connection.

``MilvusCollection`` is one collection: its schema (an INT64 id, one COSINE-indexed float vector, scalar
fields), creation when missing, the dimension check, loading, searches mapped to ``Match``-ready hits,
and every failure wrapped as ``VectorStoreError``. The curated corpus, the answer cache and the records
are all built on it. The connection it runs over (``MilvusConnection``, re-exported here) is
``writing.adapters.milvus.connection``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass

from writing.adapters.milvus.connection import LITE_START_TIMEOUT as LITE_START_TIMEOUT
from writing.adapters.milvus.connection import MilvusConnection as MilvusConnection
from writing.adapters.milvus.direct_search import CONSISTENCY, METRIC, DirectSearch, Unsupported
from writing.core.corpus import QUERY_WINDOW as QUERY_WINDOW  # Milvus refuses a query past it (offset + limit)
from writing.errors import DimensionMismatch, StoreLocked, VectorStoreError
from writing.text import CONTROL_CHARS

logger = logging.getLogger(__name__)

LOAD_TIMEOUT = 120.0  # loading a collection into memory can take far longer than one call


def wrap_store_errors(method):
    """Any failure of a Milvus call surfaces as VectorStoreError (HTTP 503, and a reconnect)."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except (VectorStoreError, DimensionMismatch, StoreLocked):
            raise
        except Exception as exc:
            raise VectorStoreError(f"{method.__name__} failed: {exc}") from exc

    return wrapper


def quote(value: str) -> str:
    """A string literal for a Milvus filter expression (control characters are refused upstream)."""
    if any(ch in CONTROL_CHARS for ch in value):
        raise ValueError("control characters cannot appear in a filter value")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def clamp_similarity(distance: float) -> float:
    """COSINE distances come back as similarity; float error can overshoot 1.0."""
    return max(-1.0, min(1.0, float(distance)))


def _call_failed(exc: BaseException) -> bool:
    """A failure of the search call itself (gRPC's, or Milvus's status), not of the code around it."""
    import grpc
    from pymilvus.exceptions import MilvusException

    return isinstance(exc, (grpc.RpcError, MilvusException))


def _deadline(exc: BaseException) -> bool:
    """A gRPC call that ran out of time: retrying it through pymilvus would only double the wait."""
    code = getattr(exc, "code", None)
    return callable(code) and getattr(code(), "name", "") == "DEADLINE_EXCEEDED"


def _kind(data_type) -> str:
    """A pymilvus DataType as this module names field kinds ("int64", "varchar", "double", ...)."""
    name = getattr(data_type, "name", str(data_type))
    return name.lower()


@dataclass(frozen=True)
class ScalarField:
    name: str
    kind: str  # "varchar" | "int64" | "double"
    max_length: int = 0  # varchar only (bytes)
    optional: bool = False  # an existing collection may lack it (created with it all the same)


@dataclass(frozen=True)
class CollectionSpec:
    vector_field: str
    fields: tuple[ScalarField, ...]
    auto_id: bool = True  # False: the caller chooses ids (needed to upsert a row in place)

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]


@dataclass(frozen=True)
class Hit:
    id: int
    similarity: float
    entity: dict


class MilvusCollection:
    """One collection of the service over a shared connection."""

    def __init__(self, connection: MilvusConnection, name: str, spec: CollectionSpec) -> None:
        self.connection = connection
        self.name = name
        self.spec = spec
        self.dim: int | None = None
        self.field_kinds: dict[str, str] = {}  # the open collection's scalar fields: name -> "int64", "varchar", ...
        self._direct: DirectSearch | None = DirectSearch(name, spec.vector_field)

    @property
    def timeout(self) -> float:
        return self.connection.timeout

    @property
    def _client(self):
        return self.connection.client

    def ensure(self, dim: int | None) -> int:
        """Create the collection if missing (``dim`` given), check its fields and dimension, load it.

        ``dim=None`` opens an existing collection whatever its dimension (to read it, e.g. to re-embed).
        Returns the collection's dimension."""
        try:
            have = self._ensure(dim)
        except (DimensionMismatch, StoreLocked, VectorStoreError):
            raise
        except Exception as exc:
            raise VectorStoreError(
                f"cannot open collection {self.name!r} in {self.connection.kind} at {self.connection.target}: {exc}"
            ) from exc
        self.dim = have
        return have

    def _ensure(self, dim: int | None) -> int:
        c = self.connection.connect()
        where = f"{self.connection.kind} at {self.connection.target}"
        if not c.has_collection(self.name, timeout=self.timeout):
            if dim is None:
                raise VectorStoreError(f"collection {self.name!r} does not exist in {where}")
            self._create(c, dim)
        desc = c.describe_collection(self.name, timeout=self.timeout)
        fields = {f["name"]: f for f in desc["fields"]}
        required = {self.spec.vector_field, *(f.name for f in self.spec.fields if not f.optional)}
        missing = required - set(fields)
        if missing:
            raise DimensionMismatch(
                f"collection {self.name!r} lacks fields {sorted(missing)}; "
                "point MILVUS_COLLECTION at a new name or re-create it"
            )
        have = int(fields[self.spec.vector_field]["params"]["dim"])
        if dim is not None and have != dim:
            raise DimensionMismatch(
                f"collection {self.name!r} holds {have}-dim vectors but the embedding model "
                f"makes {dim}-dim ones; use the model the collection was built with, or set "
                "MILVUS_COLLECTION to a new collection and re-ingest"
            )
        c.load_collection(self.name, timeout=max(self.timeout, LOAD_TIMEOUT))
        self.field_kinds = {name: _kind(f.get("type")) for name, f in fields.items()}
        return have

    def _create(self, c, dim: int) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=self.spec.auto_id, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field(self.spec.vector_field, DataType.FLOAT_VECTOR, dim=dim)
        for f in self.spec.fields:
            if f.kind == "varchar":
                schema.add_field(f.name, DataType.VARCHAR, max_length=f.max_length)
            elif f.kind == "double":
                schema.add_field(f.name, DataType.DOUBLE)
            else:
                schema.add_field(f.name, DataType.INT64)
        index = c.prepare_index_params()
        index.add_index(self.spec.vector_field, index_type="AUTOINDEX", metric_type=METRIC)
        c.create_collection(
            self.name, schema=schema, index_params=index, consistency_level=CONSISTENCY, timeout=self.timeout
        )
        logger.info("created collection %s (dim %d) in %s", self.name, dim, self.connection.kind)

    # -- reads ------------------------------------------------------------------------------------------
    def search(self, vector, *, limit: int, filter: str = "", output_fields: list[str]) -> list[Hit]:  # noqa: A002
        return self.search_many([vector], limit=limit, filter=filter, output_fields=output_fields)[0]

    @wrap_store_errors
    def search_many(
        self,
        vectors,
        *,
        limit: int,
        filter: str = "",  # noqa: A002
        output_fields: list[str],
    ) -> list[list[Hit]]:
        """One search call for several query vectors (a batch), under one filter: hits per vector.

        Sent through ``DirectSearch`` while it reads this Milvus's replies; through ``MilvusClient.search``
        when it cannot (a reply it does not read, or a failure of its own: then for good), or when its
        call failed for a reason other than the deadline (that search: pymilvus's retries and messages
        apply)."""
        direct = self._direct
        if direct is not None and len(vectors):
            try:
                found = direct.search(
                    self._client, vectors, limit=limit, filter=filter, output_fields=output_fields, timeout=self.timeout
                )
            except Unsupported as exc:
                logger.info("searches of %s go through pymilvus: %s", self.name, exc)
                self._direct = None
            except Exception as exc:
                if not _call_failed(exc):  # not the call: this path does not fit the installed pymilvus
                    logger.warning(
                        "searches of %s go through pymilvus: the direct path failed", self.name, exc_info=True
                    )
                    self._direct = None
                elif _deadline(exc):
                    raise
                else:  # the call failed: once more through pymilvus
                    logger.debug("direct search of %s failed, retrying through pymilvus", self.name, exc_info=True)
            else:
                return [[Hit(id=i, similarity=clamp_similarity(s), entity=row) for i, s, row in hits] for hits in found]
        return self.search_through_pymilvus(vectors, limit, filter, output_fields)

    def search_through_pymilvus(self, vectors, limit: int, expr: str, fields: list[str]) -> list[list[Hit]]:
        """``search_many`` through ``MilvusClient.search``, as every search went before ``DirectSearch``."""
        res = self._client.search(
            self.name,
            data=[v.tolist() if hasattr(v, "tolist") else list(map(float, v)) for v in vectors],
            anns_field=self.spec.vector_field,
            limit=limit,
            filter=expr,
            output_fields=fields,
            search_params={"metric_type": METRIC},
            consistency_level=CONSISTENCY,
            timeout=self.timeout,
        )
        out = []
        for i in range(len(vectors)):
            hits = res[i] if res is not None and i < len(res) else []
            out.append(
                [Hit(id=int(h["id"]), similarity=clamp_similarity(h["distance"]), entity=h["entity"]) for h in hits]
            )
        return out

    @wrap_store_errors
    def query(self, expr: str, output_fields: list[str], *, limit: int | None = None, offset: int = 0) -> list[dict]:
        kwargs = {"limit": limit, "offset": offset} if limit is not None else {}
        return self._client.query(
            self.name,
            filter=expr,
            output_fields=output_fields,
            consistency_level="Strong",
            timeout=self.timeout,
            **kwargs,
        )

    @wrap_store_errors
    def get(self, ids: list[int], output_fields: list[str]) -> list[dict]:
        if self.spec.vector_field in output_fields:
            # Milvus Lite 2.5 fails a get of the vector for an id it does not hold ("Growing segment loss
            # raw data"): ask for the ids that exist first
            ids = [int(r["id"]) for r in self.query(f"id in [{', '.join(map(str, ids))}]", ["id"])]
            if not ids:
                return []
        return self._client.get(self.name, ids=ids, output_fields=output_fields, timeout=self.timeout)

    @wrap_store_errors
    def count(self, expr: str = "id >= 0") -> int:
        rows = self.query(expr, ["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def iterate(self, output_fields: list[str], batch_size: int = 500, expr: str = "id >= 0"):
        """Every row (matching ``expr``), in batches, in id order (re-embedding, export, eviction)."""
        try:
            it = self._client.query_iterator(
                self.name,
                batch_size=batch_size,
                filter=expr,
                output_fields=output_fields,
                timeout=self.timeout,
                consistency_level="Strong",  # what another worker wrote a moment ago is read too
            )
        except Exception as exc:
            raise VectorStoreError(f"iterate failed: {exc}") from exc
        try:
            while True:
                try:
                    rows = it.next()
                except Exception as exc:
                    raise VectorStoreError(f"iterate failed: {exc}") from exc
                if not rows:
                    return
                yield rows
        finally:
            with contextlib.suppress(Exception):
                it.close()

    @wrap_store_errors
    def server_version(self) -> str:
        return self._client.get_server_version(timeout=self.timeout)

    @wrap_store_errors
    def ping(self) -> None:
        self._client.has_collection(self.name, timeout=self.timeout)

    @wrap_store_errors
    def describe(self) -> dict:
        desc = self._client.describe_collection(self.name, timeout=self.timeout)
        index = {}
        with contextlib.suppress(Exception):  # index details are informative only
            index = self._client.describe_index(self.name, self.spec.vector_field, timeout=self.timeout) or {}
        return {
            "dimension": next(int(f["params"]["dim"]) for f in desc["fields"] if f["name"] == self.spec.vector_field),
            "index_type": index.get("index_type"),
            "metric_type": index.get("metric_type"),
        }

    # -- writes -------------------------------------------------------------------------------------------
    @wrap_store_errors
    def insert(self, rows: list[dict]) -> list[int]:
        res = self._client.insert(self.name, rows, timeout=self.timeout)
        return [int(i) for i in res["ids"]]

    @wrap_store_errors
    def upsert(self, rows: list[dict]) -> None:
        """Replace rows by id (collections with ``auto_id=False``); every field must be given."""
        self._client.upsert(self.name, rows, timeout=self.timeout)

    @wrap_store_errors
    def delete(self, *, ids: list[int] | None = None, expr: str | None = None) -> int:
        if ids is not None:
            res = self._client.delete(self.name, ids=ids, timeout=self.timeout)
        else:
            res = self._client.delete(self.name, filter=expr, timeout=self.timeout)
        return int(res.get("delete_count", 0)) if isinstance(res, dict) else 0

    @wrap_store_errors
    def flush(self) -> None:
        if self.connection.uri:  # Milvus Lite persists on insert; a server needs a flush to seal segments
            self._client.flush(self.name, timeout=self.timeout)
