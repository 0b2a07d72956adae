"""The embedding batcher: batching is invisible to callers, the LRU, overload (503), errors, shutdown.

The real packaged model (the session ``embedder`` fixture) runs inside the batcher; "slow" and
"failing" embedders wrap it, so the tests stay fast and deterministic.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
from conftest import running_app
from fake_llm import FakeLLM

from embedding_batcher import EmbeddingBatcher, EmbeddingQueueFull

TEXTS = [
    "春天来了，柳树发芽",
    "夏天的太阳像一团火",
    "秋天是一位调色的画家，她把枫叶染成火红",
    "冬天的早晨，窗户上结满了冰花",
    "请用三句话解释TCP三次握手的过程",
    "我的妈妈",
    "来广州，一定要先去喝一次早茶，虾饺、叉烧包、肠粉配一壶热茶",
    "a short English prompt",
    "毕业典礼那天，礼堂里坐满了穿着校服的同学",
    "写一篇关于友谊的作文",
    "如何保护环境",
    "西湖的美景",
]


class SlowEmbedder:
    """The real embedder, but every forward pass takes at least ``delay`` seconds."""

    def __init__(self, inner, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.dim = inner.dim
        self.calls: list[list[str]] = []

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        time.sleep(self.delay)
        return self.inner.embed_queries(texts)


class FailingEmbedder:
    """Fails the first ``failures`` forward passes (after a short pause, so callers pile up)."""

    def __init__(self, inner, failures: int = 1, delay: float = 0.05) -> None:
        self.inner = inner
        self.failures = failures
        self.delay = delay
        self.dim = inner.dim

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        time.sleep(self.delay)
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("injected embedder failure")
        return self.inner.embed_queries(texts)


@pytest.fixture
def make_batcher():
    made: list[EmbeddingBatcher] = []

    def make(embedder, **kwargs) -> EmbeddingBatcher:
        b = EmbeddingBatcher(embedder, **kwargs)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


# -- (a) batching is invisible --------------------------------------------------------------------
async def test_concurrent_callers_get_their_own_vectors_in_order(embedder, make_batcher):
    batcher = make_batcher(embedder, max_batch_size=8, max_wait_ms=50, cache_size=0)
    # distinct texts plus duplicates, interleaved
    texts = TEXTS + [TEXTS[0], TEXTS[4], TEXTS[4], TEXTS[9]]
    vectors = await asyncio.gather(*(batcher.embed_query(t) for t in texts))

    assert len(vectors) == len(texts)
    for text, vec in zip(texts, vectors):
        expected = embedder.embed_queries([text])[0]
        assert vec.shape == (embedder.dim,)
        np.testing.assert_allclose(vec, expected, atol=1e-5, err_msg=text)
    # they really were batched, within the size bound, and duplicates were embedded once per batch
    assert batcher.stats.largest_batch > 1
    assert batcher.stats.largest_batch <= 8
    assert batcher.stats.embedded <= len(texts)
    assert batcher.stats.batches < len(texts)
    assert batcher.queue_depth == 0


async def test_batching_preserves_order_under_many_small_waves(embedder, make_batcher):
    batcher = make_batcher(embedder, max_batch_size=4, max_wait_ms=5, cache_size=0)
    expected = {t: embedder.embed_queries([t])[0] for t in TEXTS}
    waves = [TEXTS[i:] + TEXTS[:i] for i in range(0, len(TEXTS), 3)]
    results = await asyncio.gather(*(asyncio.gather(*(batcher.embed_query(t) for t in w)) for w in waves))
    for wave, vecs in zip(waves, results):
        for t, v in zip(wave, vecs):
            np.testing.assert_allclose(v, expected[t], atol=1e-5)


async def test_a_lone_request_does_not_wait_for_company(embedder, make_batcher):
    batcher = make_batcher(embedder, max_wait_ms=400, cache_size=0)
    await batcher.embed_query(TEXTS[5])  # warm-up
    t0 = time.perf_counter()
    await batcher.embed_query(TEXTS[7])
    assert time.perf_counter() - t0 < 0.3  # the model takes milliseconds; max_wait is 0.4 s
    # ...while concurrent requests still share batches
    await asyncio.gather(*(batcher.embed_query(t) for t in TEXTS))
    assert batcher.stats.largest_batch > 1


async def test_prompts_are_normalised_before_embedding(embedder, make_batcher):
    batcher = make_batcher(embedder, cache_size=0)
    messy = await batcher.embed_query("  春天来了，\n\t柳树发芽  ")
    clean = await batcher.embed_query("春天来了， 柳树发芽")
    np.testing.assert_allclose(messy, clean, atol=1e-6)


# -- (b) the LRU ------------------------------------------------------------------------------------
async def test_repeat_is_a_cache_hit_with_the_same_vector(embedder, make_batcher):
    batcher = make_batcher(embedder, cache_size=16)
    first = await batcher.embed_query(TEXTS[1])
    assert (batcher.stats.cache_hits, batcher.stats.cache_misses, batcher.stats.embedded) == (0, 1, 1)
    again = await batcher.embed_query(TEXTS[1])
    assert batcher.stats.cache_hits == 1
    assert batcher.stats.embedded == 1  # the model did not run again
    np.testing.assert_array_equal(first, again)
    # whitespace variants share the normalised key
    await batcher.embed_query("  " + TEXTS[1] + "\n")
    assert batcher.stats.cache_hits == 2 and batcher.stats.embedded == 1


async def test_lru_evicts_the_least_recently_used(embedder, make_batcher):
    batcher = make_batcher(embedder, cache_size=2)
    for t in TEXTS[:2]:
        await batcher.embed_query(t)
    await batcher.embed_query(TEXTS[0])  # TEXTS[0] is now the most recent
    await batcher.embed_query(TEXTS[2])  # evicts TEXTS[1]
    hits = batcher.stats.cache_hits
    await batcher.embed_query(TEXTS[0])
    assert batcher.stats.cache_hits == hits + 1
    await batcher.embed_query(TEXTS[1])
    assert batcher.stats.cache_hits == hits + 1  # a miss: it was evicted


async def test_cache_size_zero_disables_the_cache(embedder, make_batcher):
    batcher = make_batcher(embedder, cache_size=0)
    a = await batcher.embed_query(TEXTS[2])
    b = await batcher.embed_query(TEXTS[2])
    assert batcher.stats.cache_hits == 0
    assert batcher.stats.embedded == 2
    np.testing.assert_allclose(a, b, atol=1e-6)


# -- (c) overload ----------------------------------------------------------------------------------
async def test_full_queue_raises_at_once(embedder, make_batcher):
    slow = SlowEmbedder(embedder, delay=0.3)
    batcher = make_batcher(slow, max_batch_size=4, max_wait_ms=0, queue_size=1, cache_size=0)
    t0 = time.perf_counter()
    results = await asyncio.gather(*(batcher.embed_query(t) for t in TEXTS[:8]), return_exceptions=True)
    rejected = [r for r in results if isinstance(r, EmbeddingQueueFull)]
    served = [(t, r) for t, r in zip(TEXTS[:8], results) if isinstance(r, np.ndarray)]
    assert len(rejected) + len(served) == 8, results
    # one in the model plus one in the queue at most (the worker may also have grabbed the second)
    assert 1 <= len(served) <= 2
    assert len(rejected) >= 6
    assert batcher.stats.rejected == len(rejected)
    for t, v in served:
        np.testing.assert_allclose(v, embedder.embed_queries([t])[0], atol=1e-5)
    assert time.perf_counter() - t0 < 2.0  # rejections did not wait for the model

    # capacity comes back once the queue drains
    v = await batcher.embed_query(TEXTS[9])
    np.testing.assert_allclose(v, embedder.embed_queries([TEXTS[9]])[0], atol=1e-5)


async def test_overload_is_503_with_retry_after_never_500(make_settings):
    with FakeLLM() as fake:
        settings = make_settings(
            llm_base_url=fake.base_url,
            embedding_queue_size=1,
            embedding_batch_wait_ms=0,
            log_level="WARNING",
        )
        async with running_app(settings) as client:
            batcher = client.app.state.batcher
            real = batcher.embedder.embed_queries

            def slow(texts):
                time.sleep(0.3)
                return real(texts)

            batcher.embedder.embed_queries = slow
            try:
                responses = await asyncio.gather(
                    *(client.get("/generate", params={"prompt": f"{TEXTS[i % len(TEXTS)]} #{i}"}) for i in range(12))
                )
            finally:
                del batcher.embedder.embed_queries
            codes = [r.status_code for r in responses]
            assert 500 not in codes, codes
            assert set(codes) <= {200, 503}, codes
            assert codes.count(200) >= 1, codes
            overloaded = [r for r in responses if r.status_code == 503]
            assert overloaded, codes
            for r in overloaded:
                assert r.headers["retry-after"].isdigit()
                body = r.json()
                assert body["error"]["code"] == "overloaded"
                assert body["error"]["message"]
            assert fake.state.calls == codes.count(200)  # rejected requests never reached the LLM

            # the service recovers: a request afterwards is served
            r = await client.get("/generate", params={"prompt": "恢复之后的请求"})
            assert r.status_code == 200, r.text


# -- (d) errors ------------------------------------------------------------------------------------
async def test_embedder_exception_reaches_every_waiting_caller(embedder, make_batcher):
    failing = FailingEmbedder(embedder, failures=1, delay=0.1)
    batcher = make_batcher(failing, max_batch_size=32, max_wait_ms=50, cache_size=16)
    results = await asyncio.gather(*(batcher.embed_query(t) for t in TEXTS[:6]), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and "injected" in str(r) for r in results), results
    # nothing was cached, and the worker survived: the next call embeds normally
    v = await asyncio.wait_for(batcher.embed_query(TEXTS[0]), 10)
    np.testing.assert_allclose(v, embedder.embed_queries([TEXTS[0]])[0], atol=1e-5)
    assert batcher.stats.cache_hits == 0


async def test_exception_in_one_batch_does_not_leak_into_the_next(embedder, make_batcher):
    failing = FailingEmbedder(embedder, failures=1, delay=0.2)
    batcher = make_batcher(failing, max_batch_size=2, max_wait_ms=0, cache_size=0)
    results = await asyncio.gather(*(batcher.embed_query(t) for t in TEXTS[:6]), return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception)]
    ok = [r for r in results if isinstance(r, np.ndarray)]
    assert 1 <= len(errors) <= 2 and len(ok) == 6 - len(errors), results


async def test_cancelled_caller_does_not_break_the_others(embedder, make_batcher):
    slow = SlowEmbedder(embedder, delay=0.2)
    batcher = make_batcher(slow, max_batch_size=8, max_wait_ms=20, cache_size=0)
    first = asyncio.create_task(batcher.embed_query(TEXTS[0]))
    others = [asyncio.create_task(batcher.embed_query(t)) for t in TEXTS[1:4]]
    await asyncio.sleep(0.05)
    first.cancel()
    vecs = await asyncio.wait_for(asyncio.gather(*others), 10)
    for t, v in zip(TEXTS[1:4], vecs):
        np.testing.assert_allclose(v, embedder.embed_queries([t])[0], atol=1e-5)
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_token_count_on_the_loop_does_not_break_batches(embedder, make_batcher):
    """What the service does per request: ``embedder.token_count(prompt)`` on the loop thread while
    the batcher thread tokenises a batch. Short switch interval to make the interleaving likely."""
    import sys

    batcher = make_batcher(embedder, max_batch_size=8, max_wait_ms=1, cache_size=0)
    stop = threading.Event()

    def count_tokens() -> None:  # stands in for the event loop's token_count calls
        i = 0
        while not stop.is_set():
            embedder.token_count(TEXTS[i % len(TEXTS)] * 3)
            i += 1

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    counter = threading.Thread(target=count_tokens, daemon=True)
    counter.start()
    errors: list[BaseException] = []
    try:
        deadline = time.monotonic() + 3.0
        n = 0
        while time.monotonic() < deadline and not errors:
            # short texts of different lengths: quick forward passes, many tokenizer calls, padding needed
            wave = [f"{TEXTS[(n + k) % len(TEXTS)][:4]}{'！' * ((n + k) % 7)}" for k in range(8)]
            n += 8
            results = await asyncio.gather(*(batcher.embed_query(t) for t in wave), return_exceptions=True)
            errors += [r for r in results if isinstance(r, BaseException)]
    finally:
        stop.set()
        counter.join(5)
        sys.setswitchinterval(old)
    assert not errors, f"{len(errors)} callers failed, e.g. {errors[0]!r}"


# -- (e) shutdown ----------------------------------------------------------------------------------
async def test_close_stops_the_thread(embedder):
    batcher = EmbeddingBatcher(embedder, cache_size=0)
    await batcher.embed_query(TEXTS[0])
    thread = batcher._thread
    assert thread.is_alive()
    await asyncio.to_thread(batcher.close)
    assert not thread.is_alive()
    batcher.close()  # idempotent
    assert not any(t is thread for t in threading.enumerate())


async def test_close_finishes_queued_work_first(embedder):
    slow = SlowEmbedder(embedder, delay=0.1)
    batcher = EmbeddingBatcher(slow, max_batch_size=2, max_wait_ms=0, cache_size=0)
    tasks = [asyncio.create_task(batcher.embed_query(t)) for t in TEXTS[:4]]
    await asyncio.sleep(0.02)
    await asyncio.to_thread(batcher.close)
    vecs = await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert len(vecs) == 4 and not batcher._thread.is_alive()


async def test_embed_after_close_fails_instead_of_hanging(embedder):
    batcher = EmbeddingBatcher(embedder, cache_size=0)
    await asyncio.to_thread(batcher.close)
    with pytest.raises(EmbeddingQueueFull):
        await asyncio.wait_for(batcher.embed_query(TEXTS[0]), 5)
