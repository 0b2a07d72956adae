"""Hit counts from several processes (replicas) on one answer store: none is lost, none brings an answer back.

Two answer stores over one Milvus Lite file stand for two replicas: each is a writer of its own in the
hit ledger (``writing.adapters.milvus.hit_ledger``), as each replica process is. The fleet test
(tests/e2e/test_fleet.py) checks the same across real replicas on a Milvus server.
"""

from __future__ import annotations

import threading

import pytest

from writing.adapters.milvus.answers import MilvusAnswerStore
from writing.adapters.milvus.connection import MilvusConnection
from writing.core.models import AnswerKey

DIM = 8
KEY = AnswerKey(tenant="t", model="m", context="c", max_tokens=64)


def vector(i: int) -> list[float]:
    return [1.0 if j == i % DIM else 0.01 for j in range(DIM)]


@pytest.fixture
def replicas(tmp_path):
    """Two answer stores on one collection, each its own writer (as two replicas are)."""
    conn = MilvusConnection(lite_path=str(tmp_path / "hits.db"))
    stores = [
        MilvusAnswerStore(c, "ledger_answers_v3", threshold=0.9, ttl_seconds=0)
        for c in (conn.sibling(), conn.sibling())
    ]
    for s in stores:
        s.open(DIM)
    yield stores
    conn.close()


def test_concurrent_flushes_lose_no_hit(replicas):
    a, b = replicas
    answer_id = a.put(vector(1), prompt="p", content="c", key=KEY, stops=(), completion_tokens=3)
    rounds = 40

    def hit_and_flush(store: MilvusAnswerStore, start: threading.Barrier) -> None:
        start.wait()
        for _ in range(rounds):
            store.record_hit(answer_id)
            store.flush_hits()

    start = threading.Barrier(2)
    threads = [threading.Thread(target=hit_and_flush, args=(s, start)) for s in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for store in replicas:
        got = store.get_answer(answer_id)
        assert got is not None and got.hits == 2 * rounds and got.last_hit > 0
    assert {r["id"]: r["hits"] for r in a.export_rows(ids=[answer_id])} == {answer_id: 2 * rounds}


def test_a_flush_after_a_deletion_brings_nothing_back(replicas):
    a, b = replicas
    answer_id = a.put(vector(2), prompt="p", content="c", key=KEY, stops=(), completion_tokens=3)
    a.record_hit(answer_id)  # counted on one replica
    assert b.delete_answer(answer_id)  # deleted through another before the first writes its count out
    a.flush_hits()
    assert a.get_answer(answer_id) is None and b.get_answer(answer_id) is None
    assert a.existing_ids([answer_id]) == set()
    assert a.ledger.counts([answer_id]) == {answer_id: (1, a.ledger.counts([answer_id])[answer_id][1])}
    assert b.maintain()["ledger_swept"] == 1  # the upkeep removes the count the flush left behind
    assert a.ledger.counts([answer_id]) == {}


def test_hits_order_evictions_and_go_with_their_answer(replicas):
    a, b = replicas
    old, new = (a.put(vector(i), prompt=f"p{i}", content="c", key=KEY, stops=(), completion_tokens=3) for i in (3, 4))
    b.record_hit(old)  # the older answer was hit since, on the other replica: the newer one is evicted
    b.flush_hits()
    a.max_entries = 1
    assert a.evict() == 1
    assert a.existing_ids([old, new]) == {old}
    assert a.delete_ids([old]) == 1
    assert b.ledger.counts([old]) == {}


def test_an_undone_deletion_counts_each_hit_once(replicas):
    a, b = replicas
    answer_id = a.put(vector(5), prompt="p5", content="c", key=KEY, stops=(), completion_tokens=3)
    for _ in range(5):
        a.record_hit(answer_id)
    a.flush_hits()
    exported = b.export_rows(ids=[answer_id])  # what the undo journal keeps: the row with its 5 hits
    assert exported[0]["hits"] == 5
    assert b.delete_ids([answer_id]) == 1
    b.restore_rows(exported, [vector(5)])  # the deletion undone through the other replica
    a.record_hit(answer_id)  # one more hit on the replica that counted the first five
    a.flush_hits()
    assert b.get_answer(answer_id).hits == 6  # not 11: the five went into the restored row
    a.record_hit(answer_id)
    a.flush_hits()
    assert b.get_answer(answer_id).hits == 7


def test_a_replica_drops_the_totals_of_answers_deleted_elsewhere(replicas):
    a, b = replicas
    answer_id = a.put(vector(6), prompt="p6", content="c", key=KEY, stops=(), completion_tokens=3)
    a.record_hit(answer_id)
    a.flush_hits()
    assert b.delete_answer(answer_id)
    a.maintain()
    assert answer_id not in a.ledger._totals
