"""One store call per batch (writing.core.search.BatchedSearch), with fakes only."""

from __future__ import annotations

import asyncio

import numpy as np

from tests.support.fakes import InMemoryCorpus
from writing.core.search import BatchedSearch
from writing.errors import VectorStoreError


def recording_store():
    calls: list[tuple[object, int]] = []

    def search_many(key, vectors):
        calls.append((key, len(vectors)))
        return [f"hits-of-{v}" for v in vectors]

    return calls, search_many


async def test_searches_asked_for_together_share_one_call_per_key():
    calls, search_many = recording_store()
    batched = BatchedSearch(search_many)
    results = await asyncio.gather(
        *(batched.search("tenant-a" if i % 3 else "tenant-b", i, lambda hits: hits.upper()) for i in range(9))
    )
    assert results == [f"HITS-OF-{i}" for i in range(9)]
    assert sorted(calls, key=str) == sorted([("tenant-a", 6), ("tenant-b", 3)], key=str)
    assert batched.stats.calls == 2 and batched.stats.searches == 9 and batched.stats.largest == 6


async def test_a_lone_search_is_not_kept_waiting_for_company():
    calls, search_many = recording_store()
    batched = BatchedSearch(search_many)
    assert await asyncio.wait_for(batched.search(None, 1, lambda h: h), 1) == "hits-of-1"
    assert await batched.search(None, 2, lambda h: h) == "hits-of-2"
    assert calls == [(None, 1), (None, 1)]  # one after the other: two calls


async def test_one_follow_up_failing_does_not_fail_its_batch_mates():
    _, search_many = recording_store()
    batched = BatchedSearch(search_many)

    def then(hits: str) -> str:
        if hits.endswith("-2"):
            raise ValueError("this request's own check failed")
        return hits

    results = await asyncio.gather(*(batched.search(None, i, then) for i in range(4)), return_exceptions=True)
    assert isinstance(results[2], ValueError)
    assert [r for i, r in enumerate(results) if i != 2] == ["hits-of-0", "hits-of-1", "hits-of-3"]


async def test_a_store_failure_reaches_every_request_of_the_batch():
    corpus = InMemoryCorpus()
    corpus.down = True
    batched = BatchedSearch(lambda _key, vectors: corpus.search_many(vectors, 1))
    vector = np.ones(4, dtype=np.float32)
    results = await asyncio.gather(
        *(batched.search(None, vector, lambda h: h) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, VectorStoreError) for r in results)


async def test_batches_are_capped():
    calls, search_many = recording_store()
    batched = BatchedSearch(search_many, max_batch=4)
    await asyncio.gather(*(batched.search(None, i, lambda h: h) for i in range(10)))
    assert sorted(n for _, n in calls) == [2, 4, 4]
