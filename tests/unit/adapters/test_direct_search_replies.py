"""Reading a search reply a column at a time (``writing.adapters.milvus.direct_search.read_hits``): the
shapes the service stores are read, any other is ``Unsupported`` (and the search goes through pymilvus)."""

from __future__ import annotations

import numpy as np
import pytest
from pymilvus.grpc_gen import common_pb2, schema_pb2

from writing.adapters.milvus.direct_search import Unsupported, placeholder_group, read_hits


def reply(topks, *, ids=None, scores=None, fields=()) -> schema_pb2.SearchResultData:
    total = sum(topks)
    ids = list(range(100, 100 + total)) if ids is None else ids
    scores = [1.0 - i / 10 for i in range(total)] if scores is None else scores
    return schema_pb2.SearchResultData(
        num_queries=len(topks),
        topks=topks,
        ids=schema_pb2.IDs(int_id=schema_pb2.LongArray(data=ids)),
        scores=scores,
        fields_data=list(fields),
    )


def text(name, values) -> schema_pb2.FieldData:
    return schema_pb2.FieldData(
        field_name=name, scalars=schema_pb2.ScalarField(string_data=schema_pb2.StringArray(data=values))
    )


def longs(name, values) -> schema_pb2.FieldData:
    return schema_pb2.FieldData(
        field_name=name, scalars=schema_pb2.ScalarField(long_data=schema_pb2.LongArray(data=values))
    )


def test_hits_per_query_with_their_rows():
    r = reply([2, 0, 1], fields=[text("content", ["a", "b", "c"]), longs("biz", [1, 2, -3])])
    got = read_hits(r, 3)
    assert [[(i, round(s, 6), row) for i, s, row in hits] for hits in got] == [
        [(100, 1.0, {"content": "a", "biz": 1}), (101, 0.9, {"content": "b", "biz": 2})],
        [],
        [(102, 0.8, {"content": "c", "biz": -3})],
    ]


def test_no_hits_and_no_fields():
    assert read_hits(reply([0, 0]), 2) == [[], []]
    assert [[i for i, _, row in hits if row == {}] for hits in read_hits(reply([1, 1]), 2)] == [[100], [101]]


@pytest.mark.parametrize(
    "bad",
    [
        lambda: (reply([1, 1]), 3),  # a list per query, not fewer
        lambda: (reply([2], ids=[1]), 1),  # ids short of the hits
        lambda: (reply([2], fields=[text("content", ["a"])]), 1),  # a column short of the hits
        lambda: (
            schema_pb2.SearchResultData(
                topks=[1], ids=schema_pb2.IDs(str_id=schema_pb2.StringArray(data=["x"])), scores=[0.5]
            ),
            1,
        ),  # a VARCHAR primary key
        lambda: (
            reply(
                [1], fields=[schema_pb2.FieldData(field_name="n", valid_data=[True], scalars=longs("n", [1]).scalars)]
            ),
            1,
        ),  # a nullable field
        lambda: (
            reply(
                [1],
                fields=[
                    schema_pb2.FieldData(
                        field_name="j", scalars=schema_pb2.ScalarField(json_data=schema_pb2.JSONArray(data=[b"{}"]))
                    )
                ],
            ),
            1,
        ),  # JSON
        lambda: (
            schema_pb2.SearchResultData(
                topks=[1],
                ids=schema_pb2.IDs(int_id=schema_pb2.LongArray(data=[1])),
                scores=[0.5],
                element_indices=schema_pb2.LongArray(data=[0]),
            ),
            1,
        ),  # element-level hits
    ],
)
def test_a_shape_it_does_not_read_is_unsupported(bad):
    results, nq = bad()
    with pytest.raises(Unsupported):
        read_hits(results, nq)


def test_the_vectors_are_packed_as_pymilvus_packs_them():
    from pymilvus.client.prepare import Prepare

    vectors = [np.array([0.1, -2.5, 3.25], dtype=np.float32), np.array([1e-8, 0.0, 7.0], dtype=np.float32)]
    assert placeholder_group(vectors) == Prepare._prepare_placeholder_str([v.tolist() for v in vectors])
    group = common_pb2.PlaceholderGroup.FromString(placeholder_group(vectors))
    assert group.placeholders[0].type == common_pb2.PlaceholderType.FloatVector
