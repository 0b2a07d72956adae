"""Searches sent straight to the gRPC stub (``DirectSearch``) send what pymilvus sends and read what
pymilvus reads, on a real Milvus Lite and (slow run) a real Milvus server; a reply or client they cannot
read sends searches through pymilvus again (issue 30)."""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
from pymilvus.exceptions import MilvusException

from writing.adapters.milvus.collection import CollectionSpec, MilvusCollection, MilvusConnection, ScalarField
from writing.adapters.milvus.direct_search import DirectSearch, Unsupported
from writing.errors import VectorStoreError

DIM = 8
SPEC = CollectionSpec(
    vector_field="vec",
    fields=(
        ScalarField("text", "varchar", max_length=512),
        ScalarField("label", "varchar", max_length=64),
        ScalarField("n", "int64"),
        ScalarField("weight", "double"),
    ),
)
FIELDS = ["text", "label", "n", "weight"]
ROWS = 40


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def fill(coll: MilvusCollection) -> list[int]:
    rng = np.random.default_rng(7)
    coll.ensure(DIM)
    rows = [
        {
            "vec": v.tolist(),
            "text": f'第{i}段：秋天的西湖，雾气里的雷峰塔 "引号" \\ 斜杠',
            "label": f"l{i % 3}",
            "n": i * 1_000_000_007 - 5,
            "weight": i / 7,
        }
        for i, v in enumerate(unit(rng, ROWS))
    ]
    ids = coll.insert(rows)
    deadline = time.monotonic() + 60
    probe = unit(rng, 1)
    while len(coll.search_through_pymilvus(probe, ROWS, "", [])[0]) < ROWS:  # Bounded: soon
        assert time.monotonic() < deadline, "the rows never became searchable"
        time.sleep(0.2)
    return ids


class Recorder:
    """The stub's Search, recording each request on its way."""

    def __init__(self, stub) -> None:
        self.stub = stub
        self.requests = []

    def __getattr__(self, name):
        return getattr(self.stub, name)

    def Search(self, request, **kwargs):
        self.requests.append(request)
        return self.stub.Search(request, **kwargs)


def compare(coll: MilvusCollection, ids: list[int]) -> None:
    queries = unit(np.random.default_rng(11), 16)
    cases = [
        (queries[:1], 1, ""),
        (queries[:5], 3, ""),
        (list(queries), 3, ""),
        (list(queries), 10, 'label == "l1"'),
        (queries[:4], 5, f"id not in [{ids[0]}, {ids[3]}]"),
        (queries[:3], 3, "n < 0"),  # one row
        (queries[:2], 3, 'label == "none"'),  # nothing
    ]
    handler = coll._client._get_connection()
    recorder = Recorder(handler._stub)
    handler._stub = recorder
    direct = DirectSearch(coll.name, coll.spec.vector_field)
    try:
        for vectors, limit, expr in cases:
            mine = direct.search(coll._client, vectors, limit=limit, filter=expr, output_fields=FIELDS, timeout=10)
            theirs = coll.search_through_pymilvus(vectors, limit, expr, FIELDS)
            assert [[(i, s, row) for i, s, row in hits] for hits in mine] == [
                [(h.id, h.similarity, h.entity) for h in hits] for hits in theirs
            ], (limit, expr)
            assert any(mine) or expr == 'label == "none"'
            sent, pymilvus_sent = recorder.requests[-2:]
            assert sent.SerializeToString(deterministic=True) == pymilvus_sent.SerializeToString(deterministic=True)
    finally:
        handler._stub = recorder.stub
    assert len(recorder.requests) == 2 * len(cases)


def test_direct_search_sends_and_reads_what_pymilvus_does_on_milvus_lite(tmp_path):
    conn = MilvusConnection(lite_path=str(tmp_path / "direct.db"))
    try:
        coll = MilvusCollection(conn, "direct", SPEC)
        compare(coll, fill(coll))
    finally:
        conn.close()


@pytest.mark.slow
def test_direct_search_sends_and_reads_what_pymilvus_does_on_a_milvus_server(milvus_server):
    conn = MilvusConnection(uri=milvus_server.uri, db_name="direct_search")
    try:
        coll = MilvusCollection(conn, "direct", SPEC)
        compare(coll, fill(coll))
    finally:
        conn.client.drop_collection("direct")
        conn.close()


def test_a_collection_searches_through_pymilvus_when_the_direct_path_cannot(tmp_path, monkeypatch):
    conn = MilvusConnection(lite_path=str(tmp_path / "fallback.db"))
    try:
        coll = MilvusCollection(conn, "fallback", SPEC)
        fill(coll)
        query = unit(np.random.default_rng(3), 2)
        expected = coll.search_through_pymilvus(list(query), 3, "", FIELDS)
        assert coll.search_many(list(query), limit=3, output_fields=FIELDS) == expected

        calls = []

        def fails(exc):
            def search(*args, **kwargs):
                calls.append(exc)
                raise exc

            return search

        # a transport error: this search goes through pymilvus, the next tries the direct path again
        monkeypatch.setattr(coll._direct, "search", fails(Boom(grpc.StatusCode.UNAVAILABLE)))
        assert coll.search_many(list(query), limit=3, output_fields=FIELDS) == expected
        assert coll._direct is not None and len(calls) == 1

        # the deadline: no second wait through pymilvus
        monkeypatch.setattr(coll._direct, "search", fails(Boom(grpc.StatusCode.DEADLINE_EXCEEDED)))
        with pytest.raises(VectorStoreError, match="search_many failed"):
            coll.search_many(list(query), limit=3, output_fields=FIELDS)

        # Milvus's status: this search through pymilvus, the direct path kept
        monkeypatch.setattr(coll._direct, "search", fails(MilvusException(1, "rate limited")))
        assert coll.search_many(list(query), limit=3, output_fields=FIELDS) == expected
        assert coll._direct is not None

        # a reply it cannot read, or a failure of the path itself: through pymilvus, and from then on
        for exc in (Unsupported("a nullable field"), AttributeError("no _stub")):
            direct = coll._direct = DirectSearch(coll.name, coll.spec.vector_field)
            monkeypatch.setattr(direct, "search", fails(exc))
            assert coll.search_many(list(query), limit=3, output_fields=FIELDS) == expected
            assert coll._direct is None
            assert coll.search_many(list(query), limit=3, output_fields=FIELDS) == expected
        assert len(calls) == 5
    finally:
        conn.close()


class Boom(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code
