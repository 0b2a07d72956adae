"""A batch search sent straight to Milvus's gRPC stub, its reply read a column at a time.

``MilvusClient.search`` spends most of a batch search's CPU in Python around Milvus: it rebuilds and
checks the whole request on each call, then decodes the reply one cell at a time through several type
lookups, and builds a dictionary and a ``Hit`` per result. For 16 prompts and 3 hits each (the
curated tier's batch) that took 2.2 ms of CPU on the AVX2 machine, most of it on the search thread.

``DirectSearch`` sends the same request: pymilvus's own ``Prepare`` builds it once per limit, filter
and set of fields, and only the vectors (the placeholder group) and their count change per call (a
filter that changes on every call, like the answer cache's age cutoff, pays for one ``Prepare`` per call,
as through pymilvus). The reply's columns (ids, scores, each output field) are read whole, and each
hit's row is zipped from them.

Only the shapes this service stores take this path: float vectors, an INT64 primary key, and VARCHAR,
INT64 or DOUBLE output fields that are not nullable. A reply of any other shape raises ``Unsupported``,
as does a client without the handle this relies on; ``MilvusCollection`` then searches through
``MilvusClient.search`` again. The tests compare both paths on a real Milvus.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

PLACEHOLDER_TAG = "$0"  # the tag pymilvus gives the one placeholder of a search
MAX_TEMPLATES = 64  # prepared requests kept (a filter changes as tombstones come and go)
COLUMNS = {"string_data", "long_data", "double_data"}  # VARCHAR, INT64, DOUBLE
METRIC = "COSINE"  # every collection's index, and each search's (through this path or pymilvus)
CONSISTENCY = "Bounded"  # every collection's level, and each search's


class Unsupported(Exception):
    """The client or the reply is not of a shape this path reads: search through pymilvus instead."""


class DirectSearch:
    """Prepared search requests of one collection, and the reading of their replies. Thread-safe."""

    def __init__(self, collection: str, anns_field: str) -> None:
        self.collection = collection
        self.anns_field = anns_field
        self._templates: dict[tuple[int, str, tuple[str, ...]], Any] = {}
        self._lock = threading.Lock()

    def search(
        self,
        client,
        vectors: Sequence[Any],
        *,
        limit: int,
        filter: str,  # noqa: A002
        output_fields: Sequence[str],
        timeout: float | None,
    ) -> list[list[tuple[int, float, dict]]]:
        """(id, score, row) per hit, per vector, best first: what ``MilvusClient.search`` reports."""
        from pymilvus.client.utils import check_status
        from pymilvus.grpc_gen import milvus_pb2

        handler = client._get_connection()  # pymilvus's GrpcHandler: the stub and the call's metadata
        stub = getattr(handler, "_stub", None)
        if stub is None:
            raise Unsupported("the client has no gRPC stub")
        request = milvus_pb2.SearchRequest()
        request.CopyFrom(self._template(client, handler, limit, filter, tuple(output_fields)))
        request.nq = len(vectors)
        request.placeholder_group = placeholder_group(vectors)
        context = client._generate_call_context()
        response = stub.Search(request, timeout=timeout, metadata=context.to_grpc_metadata())
        check_status(response.status)
        return read_hits(response.results, len(vectors))

    def _template(self, client, handler, limit: int, filter: str, fields: tuple[str, ...]):  # noqa: A002
        key = (limit, filter, fields)
        template = self._templates.get(key)
        if template is not None:
            return template
        from pymilvus.client import ts_utils
        from pymilvus.client.prepare import Prepare

        options: dict[str, Any] = {"consistency_level": CONSISTENCY}
        db_name = client._generate_call_context().get_db_name()
        use_default = ts_utils.construct_guarantee_ts(
            self.collection, options, getattr(handler, "server_address", ""), db_name
        )
        template = Prepare.search_requests_with_expr(
            collection_name=self.collection,
            anns_field=self.anns_field,
            param={"metric_type": METRIC},
            limit=limit,
            data=[[0.0]],  # replaced on each call
            expr=filter,
            output_fields=list(fields),
            round_decimal=-1,
            use_default_consistency=use_default,
            **options,
        )
        with self._lock:
            if len(self._templates) >= MAX_TEMPLATES:
                self._templates.clear()
            self._templates[key] = template
        return template


def placeholder_group(vectors: Sequence[Any]) -> bytes:
    """The vectors as Milvus reads them: float32 in this machine's byte order, as pymilvus packs them."""
    from pymilvus.grpc_gen import common_pb2

    values = [np.asarray(v, dtype=np.float32).tobytes() for v in vectors]
    value = common_pb2.PlaceholderValue(tag=PLACEHOLDER_TAG, type=common_pb2.PlaceholderType.FloatVector, values=values)
    return common_pb2.PlaceholderGroup(placeholders=[value]).SerializeToString()


def read_hits(results, nq: int) -> list[list[tuple[int, float, dict]]]:
    """A ``SearchResultData`` as hits per query; ``Unsupported`` for a shape this path does not read."""
    topks = list(results.topks)
    if len(topks) != nq:
        raise Unsupported(f"{len(topks)} result lists for {nq} queries")
    if results.HasField("element_indices") or len(results.highlight_results):
        raise Unsupported("element indices or highlights in the reply")
    total = sum(topks)
    if total == 0:
        return [[] for _ in topks]
    if results.ids.WhichOneof("id_field") != "int_id":
        raise Unsupported("the primary key is not INT64")
    ids = list(results.ids.int_id.data)
    scores = list(results.scores)
    names, columns = [], []
    for field in results.fields_data:
        if len(field.valid_data) or field.is_dynamic:
            raise Unsupported(f"field {field.field_name!r} is nullable or dynamic")
        kind = field.scalars.WhichOneof("data")
        if kind not in COLUMNS:
            raise Unsupported(f"field {field.field_name!r} holds {kind}")
        column = list(getattr(field.scalars, kind).data)
        if len(column) != total:
            raise Unsupported(f"field {field.field_name!r} has {len(column)} values for {total} hits")
        names.append(field.field_name)
        columns.append(column)
    if len(ids) != total or len(scores) != total:
        raise Unsupported(f"{len(ids)} ids and {len(scores)} scores for {total} hits")
    rows = (
        [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)] if names else [{} for _ in ids]
    )
    hits = list(zip(ids, scores, rows, strict=True))
    out, start = [], 0
    for k in topks:
        out.append(hits[start : start + k])
        start += k
    return out
