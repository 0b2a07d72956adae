"""The embedding batcher: batching is invisible to callers, the LRU, overload, errors, shutdown.

A deterministic fake model (``tests.support.fakes.FakeQueryModel``) runs inside the batcher, with
delays and failures where a test needs them, so these tests load no model and stay fast. The real
model inside the batcher is covered by tests/integration/test_batcher.py.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from tests.support.corpus import BATCHER_TEXTS
from tests.support.fakes import FakeQueryModel, text_vector
from writing.adapters.embedding.batcher import EmbeddingBatcher, EmbeddingQueueFull
from writing.core.models import QueryVector

TEXTS = BATCHER_TEXTS


# -- (a) batching is invisible --------------------------------------------------------------------
async def test_concurrent_callers_get_their_own_vectors_in_order(make_batcher):
    batcher = make_batcher(FakeQueryModel(), max_batch_size=8, max_wait_ms=50, cache_size=0)
    # distinct texts plus duplicates, interleaved
    texts = TEXTS + [TEXTS[0], TEXTS[4], TEXTS[4], TEXTS[9]]
    vectors = await asyncio.gather(*(batcher.embed_query(t) for t in texts))

    assert len(vectors) == len(texts)
    for text, q in zip(texts, vectors, strict=True):
        assert q.vector.shape == (batcher.dim,) and not q.truncated
        np.testing.assert_allclose(q.vector, text_vector(text), atol=1e-5, err_msg=text)
    # they really were batched, within the size bound, and duplicates were embedded once per batch
    assert batcher.stats.largest_batch > 1
    assert batcher.stats.largest_batch <= 8
    assert batcher.stats.embedded <= len(texts)
    assert batcher.stats.batches < len(texts)
    assert batcher.queue_depth == 0


async def test_batching_preserves_order_under_many_small_waves(make_batcher):
    batcher = make_batcher(FakeQueryModel(), max_batch_size=4, max_wait_ms=5, cache_size=0)
    expected = {t: text_vector(t) for t in TEXTS}
    waves = [TEXTS[i:] + TEXTS[:i] for i in range(0, len(TEXTS), 3)]
    results = await asyncio.gather(*(asyncio.gather(*(batcher.embed_query(t) for t in w)) for w in waves))
    for wave, vecs in zip(waves, results, strict=True):
        for t, q in zip(wave, vecs, strict=True):
            np.testing.assert_allclose(q.vector, expected[t], atol=1e-5)


async def test_a_lone_request_does_not_wait_for_company(make_batcher):
    batcher = make_batcher(FakeQueryModel(), max_wait_ms=400, cache_size=0)
    await batcher.embed_query(TEXTS[5])  # warm-up
    t0 = time.perf_counter()
    await batcher.embed_query(TEXTS[7])
    assert time.perf_counter() - t0 < 0.3  # the model takes milliseconds; max_wait is 0.4 s
    # ...while concurrent requests still share batches
    await asyncio.gather(*(batcher.embed_query(t) for t in TEXTS))
    assert batcher.stats.largest_batch > 1


async def test_prompts_are_normalised_before_embedding(make_batcher):
    batcher = make_batcher(FakeQueryModel(), cache_size=0)
    messy = await batcher.embed_query("  春天来了，\n\t柳树发芽  ")
    clean = await batcher.embed_query("春天来了， 柳树发芽")
    np.testing.assert_allclose(messy.vector, clean.vector, atol=1e-6)


# -- (b) the LRU ------------------------------------------------------------------------------------
async def test_repeat_is_a_cache_hit_with_the_same_vector(make_batcher):
    batcher = make_batcher(FakeQueryModel(), cache_size=16)
    first = await batcher.embed_query(TEXTS[1])
    assert (batcher.stats.cache_hits, batcher.stats.cache_misses, batcher.stats.embedded) == (0, 1, 1)
    again = await batcher.embed_query(TEXTS[1])
    assert batcher.stats.cache_hits == 1
    assert batcher.stats.embedded == 1  # the model did not run again
    np.testing.assert_array_equal(first.vector, again.vector)
    # whitespace variants share the normalised key
    await batcher.embed_query("  " + TEXTS[1] + "\n")
    assert batcher.stats.cache_hits == 2 and batcher.stats.embedded == 1


async def test_lru_evicts_the_least_recently_used(make_batcher):
    batcher = make_batcher(FakeQueryModel(), cache_size=2)
    for t in TEXTS[:2]:
        await batcher.embed_query(t)
    await batcher.embed_query(TEXTS[0])  # TEXTS[0] is now the most recent
    await batcher.embed_query(TEXTS[2])  # evicts TEXTS[1]
    hits = batcher.stats.cache_hits
    await batcher.embed_query(TEXTS[0])
    assert batcher.stats.cache_hits == hits + 1
    await batcher.embed_query(TEXTS[1])
    assert batcher.stats.cache_hits == hits + 1  # a miss: it was evicted


async def test_cache_size_zero_disables_the_cache(make_batcher):
    batcher = make_batcher(FakeQueryModel(), cache_size=0)
    a = await batcher.embed_query(TEXTS[2])
    b = await batcher.embed_query(TEXTS[2])
    assert batcher.stats.cache_hits == 0
    assert batcher.stats.embedded == 2
    np.testing.assert_allclose(a.vector, b.vector, atol=1e-6)


# -- (c) overload ----------------------------------------------------------------------------------
async def test_full_queue_raises_at_once(make_batcher):
    slow = FakeQueryModel(delay=0.3)
    batcher = make_batcher(slow, max_batch_size=4, max_wait_ms=0, queue_size=1, cache_size=0)
    t0 = time.perf_counter()
    results = await asyncio.gather(*(batcher.embed_query(t) for t in TEXTS[:8]), return_exceptions=True)
    rejected = [r for r in results if isinstance(r, EmbeddingQueueFull)]
    served = [(t, r) for t, r in zip(TEXTS[:8], results, strict=True) if isinstance(r, QueryVector)]
    assert len(rejected) + len(served) == 8, results
    # one in the model plus one in the queue at most (the worker may also have grabbed the second)
    assert 1 <= len(served) <= 2
    assert len(rejected) >= 6
    assert batcher.stats.rejected == len(rejected)
    for t, q in served:
        np.testing.assert_allclose(q.vector, text_vector(t), atol=1e-5)
    assert time.perf_counter() - t0 < 2.0  # rejections did not wait for the model

    # capacity comes back once the queue drains
    q = await batcher.embed_query(TEXTS[9])
    np.testing.assert_allclose(q.vector, text_vector(TEXTS[9]), atol=1e-5)


# -- (d) errors ------------------------------------------------------------------------------------
async def test_embedder_exception_reaches_every_waiting_caller(make_batcher):
    failing = FakeQueryModel(failures=7, delay=0.1)  # the batch, then each text alone: a broken model
    batcher = make_batcher(failing, max_batch_size=32, max_wait_ms=50, cache_size=16)
    results = await asyncio.gather(*(batcher.embed_query(t) for t in TEXTS[:6]), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and "injected" in str(r) for r in results), results
    # nothing was cached, and the worker survived: the next call embeds normally
    q = await asyncio.wait_for(batcher.embed_query(TEXTS[0]), 10)
    np.testing.assert_allclose(q.vector, text_vector(TEXTS[0]), atol=1e-5)
    assert batcher.stats.cache_hits == 0


async def test_a_failed_batch_is_retried_text_by_text(make_batcher):
    failing = FakeQueryModel(failures=1, delay=0.2)  # one transient failure of a whole batch
    batcher = make_batcher(failing, max_batch_size=2, max_wait_ms=0, cache_size=0)
    results = await asyncio.gather(*(batcher.embed_query(t) for t in TEXTS[:6]), return_exceptions=True)
    assert all(isinstance(r, QueryVector) for r in results), results


async def test_one_bad_text_fails_alone_never_its_batch_mates(make_batcher):
    bad = "a text the tokenizer cannot take"
    model = FakeQueryModel(poison=bad)
    batcher = make_batcher(model, max_batch_size=8, max_wait_ms=50, cache_size=0)
    texts = [*TEXTS[:5], bad, *TEXTS[5:8]]
    results = await asyncio.gather(*(batcher.embed_query(t) for t in texts), return_exceptions=True)
    assert isinstance(results[5], RuntimeError)
    for text, r in zip(texts, results, strict=True):
        if text != bad:
            np.testing.assert_allclose(r.vector, text_vector(text), atol=1e-5)
    assert any(len(call) > 1 for call in model.calls)  # they were batched together first


async def test_cancelled_caller_does_not_break_the_others(make_batcher):
    slow = FakeQueryModel(delay=0.2)
    batcher = make_batcher(slow, max_batch_size=8, max_wait_ms=20, cache_size=0)
    first = asyncio.create_task(batcher.embed_query(TEXTS[0]))
    others = [asyncio.create_task(batcher.embed_query(t)) for t in TEXTS[1:4]]
    await asyncio.sleep(0.05)
    first.cancel()
    vecs = await asyncio.wait_for(asyncio.gather(*others), 10)
    for t, q in zip(TEXTS[1:4], vecs, strict=True):
        np.testing.assert_allclose(q.vector, text_vector(t), atol=1e-5)
    with pytest.raises(asyncio.CancelledError):
        await first


# -- (e) shutdown ----------------------------------------------------------------------------------
async def test_close_stops_the_thread():
    batcher = EmbeddingBatcher(FakeQueryModel(), cache_size=0)
    await batcher.embed_query(TEXTS[0])
    assert batcher.running
    assert any(t.name == "embedding-batcher" for t in threading.enumerate())
    await asyncio.to_thread(batcher.close)
    assert not batcher.running
    batcher.close()  # idempotent
    assert not any(t.name == "embedding-batcher" for t in threading.enumerate())


async def test_close_finishes_queued_work_first():
    slow = FakeQueryModel(delay=0.1)
    batcher = EmbeddingBatcher(slow, max_batch_size=2, max_wait_ms=0, cache_size=0)
    tasks = [asyncio.create_task(batcher.embed_query(t)) for t in TEXTS[:4]]
    await asyncio.sleep(0.02)
    await asyncio.to_thread(batcher.close)
    vecs = await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert len(vecs) == 4 and not batcher.running


async def test_embed_after_close_fails_instead_of_hanging():
    batcher = EmbeddingBatcher(FakeQueryModel(), cache_size=0)
    await asyncio.to_thread(batcher.close)
    with pytest.raises(EmbeddingQueueFull):
        await asyncio.wait_for(batcher.embed_query(TEXTS[0]), 5)


# -- (f) the window check and the thread the model runs in -----------------------------------------
async def test_a_prompt_longer_than_the_window_is_flagged_from_the_same_pass(make_batcher):
    model = FakeQueryModel(max_chars=20)
    batcher = make_batcher(model, cache_size=0)
    short, long = await asyncio.gather(batcher.embed_query("短的提示"), batcher.embed_query("长" * 21))
    assert not short.truncated and long.truncated
    assert sum(len(c) for c in model.calls) == 2  # one model call per text: no separate token count


async def test_the_model_runs_in_the_batcher_thread_never_on_the_loop(make_batcher):
    model = FakeQueryModel()
    batcher = make_batcher(model, cache_size=0)
    await asyncio.gather(*(batcher.embed_query(t) for t in TEXTS))
    assert model.threads == {"embedding-batcher"}


# -- other work on the model shares the queue (corpus writes) ------------------------------------------------
async def test_run_blocking_runs_on_the_worker_and_a_full_queue_refuses_it(make_batcher):
    batcher = make_batcher(FakeQueryModel(), max_batch_size=4, queue_size=1, cache_size=0)
    release = threading.Event()
    names: list[str] = []

    def hold() -> str:
        names.append(threading.current_thread().name)
        release.wait(5)
        return "done"

    first = asyncio.create_task(asyncio.to_thread(batcher.run_blocking, hold))
    deadline = time.monotonic() + 5
    while not names and time.monotonic() < deadline:  # the worker is busy with it
        await asyncio.sleep(0.01)
    queued = asyncio.create_task(asyncio.to_thread(batcher.run_blocking, lambda: "second"))
    await asyncio.sleep(0.05)  # fills the one slot of the queue
    with pytest.raises(EmbeddingQueueFull):
        batcher.run_blocking(lambda: "refused")
    release.set()
    assert await first == "done" and await queued == "second"
    assert names == ["embedding-batcher"]  # on the model's own thread, not the caller's


# -- several workers (EMBEDDING_WORKERS) --------------------------------------------------------------
async def test_two_workers_share_the_queue_and_each_caller_gets_its_vector(make_batcher):
    model = FakeQueryModel(delay=0.02)
    batcher = make_batcher(model, max_batch_size=4, max_wait_ms=5, cache_size=0, workers=2)
    assert batcher.workers == 2
    texts = TEXTS * 3
    # three keys: one key holds at most one of the two workers (the other stays free for the rest)
    vectors = await asyncio.gather(*(batcher.embed_query(t, f"key{i % 3}") for i, t in enumerate(texts)))
    for t, q in zip(texts, vectors, strict=True):
        np.testing.assert_allclose(q.vector, text_vector(t), atol=1e-5)
    assert model.threads == {"embedding-batcher", "embedding-batcher-2"}  # both ran passes
    assert batcher.stats.largest_batch <= 4
    assert batcher.stats.embedded == sum(len(set(c)) for c in model.calls)


async def test_two_workers_overlap_their_passes():
    """While one worker's pass runs, the other takes the next batch (another key's): two slow passes take
    one's time."""
    model = FakeQueryModel(delay=0.3)
    batcher = EmbeddingBatcher(model, max_batch_size=2, max_wait_ms=0, cache_size=0, workers=2)
    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(batcher.embed_query(t, f"key{i}") for i, t in enumerate(TEXTS[:4])))
        assert time.perf_counter() - t0 < 0.55  # one after the other: 0.6 s
    finally:
        await asyncio.to_thread(batcher.close)


async def test_close_stops_every_worker_and_finishes_their_work():
    slow = FakeQueryModel(delay=0.1)
    batcher = EmbeddingBatcher(slow, max_batch_size=2, max_wait_ms=0, cache_size=0, workers=3)
    tasks = [asyncio.create_task(batcher.embed_query(t)) for t in TEXTS[:8]]
    await asyncio.sleep(0.02)
    await asyncio.to_thread(batcher.close)
    vecs = await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert len(vecs) == 8 and not batcher.running
    assert not any(t.name.startswith("embedding-batcher") for t in threading.enumerate())
    with pytest.raises(EmbeddingQueueFull):
        await batcher.embed_query(TEXTS[9])


async def test_a_wave_that_trickles_in_is_one_batch(make_batcher):
    """Requests arriving one after another, each within max_wait of the last, share a pass."""
    model = FakeQueryModel()
    batcher = make_batcher(model, max_batch_size=16, max_wait_ms=30, cache_size=0)
    await asyncio.gather(batcher.embed_query(TEXTS[0]), batcher.embed_query(TEXTS[1]))  # under load now

    async def later(i: int):
        await asyncio.sleep(0.01 * i)  # 10 ms apart: longer than nothing, shorter than max_wait
        return await batcher.embed_query(TEXTS[2 + i])

    model.calls.clear()
    await asyncio.gather(*(later(i) for i in range(6)))
    assert max(len(c) for c in model.calls) >= 5, model.calls


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="workers"):
        EmbeddingBatcher(FakeQueryModel(), workers=0)
