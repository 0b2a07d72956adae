"""The embedding batcher with the real model inside, and behind the app: batched vectors equal
single ones, usage estimates beside it do not break batches, overload is a 503.

The batcher's own logic (ordering, the LRU, the queue bound, errors, shutdown) is unit-tested with
a fake model in tests/unit/adapters/test_batcher.py.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np

from tests.support.apps import running_app
from tests.support.corpus import BATCHER_TEXTS
from writing.devtools.fake_llm import FakeLLM

TEXTS = BATCHER_TEXTS[:8]


async def test_batched_vectors_equal_one_at_a_time_vectors(embedder, make_batcher):
    """Padding a prompt into a batch with longer ones must not change its vector."""
    batcher = make_batcher(embedder, max_batch_size=8, max_wait_ms=50, cache_size=0)
    results = await asyncio.gather(*(batcher.embed_query(t) for t in TEXTS))
    assert batcher.stats.largest_batch > 1
    for text, q in zip(TEXTS, results, strict=True):
        np.testing.assert_allclose(q.vector, embedder.embed_queries([text])[0], atol=1e-5, err_msg=text)
        assert not q.truncated
    (long,) = await asyncio.gather(batcher.embed_query("长" * 600))
    assert long.truncated and embedder.token_count("长" * 600) > embedder.max_length


async def test_token_count_beside_the_batcher_does_not_break_batches(embedder, make_batcher):
    """Usage estimates call ``embedder.token_count`` in other threads while the batcher thread
    tokenises a batch: the two must not share tokenizer state. Short switch interval to make the
    interleaving likely."""
    import sys

    batcher = make_batcher(embedder, max_batch_size=8, max_wait_ms=1, cache_size=0)
    stop = threading.Event()

    def count_tokens() -> None:  # stands in for the usage estimates of hits
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


async def test_overload_is_503_with_retry_after_never_500(make_settings):
    with FakeLLM() as fake:
        settings = make_settings(
            llm_base_url=fake.base_url,
            embedding_queue_size=1,
            embedding_batch_wait_ms=0,
            log_level="WARNING",
        )
        async with running_app(settings) as client:
            embedder = client.app.state.batcher.embedder
            real = embedder.embed_queries_checked

            def slow(texts):
                time.sleep(0.3)
                return real(texts)

            embedder.embed_queries_checked = slow
            try:
                responses = await asyncio.gather(
                    *(client.get("/generate", params={"prompt": f"{TEXTS[i % len(TEXTS)]} #{i}"}) for i in range(12))
                )
            finally:
                del embedder.embed_queries_checked
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


async def test_a_text_the_tokenizer_cannot_take_fails_alone(embedder, make_batcher):
    """A lone surrogate makes the real tokenizer raise; the prompts batched with it still get vectors."""
    batcher = make_batcher(embedder, max_batch_size=8, max_wait_ms=50, cache_size=0)
    texts = [*TEXTS[:4], "坏\ud800字", *TEXTS[4:]]
    results = await asyncio.gather(*(batcher.embed_query(t) for t in texts), return_exceptions=True)
    assert isinstance(results[4], Exception)
    for text, r in zip(texts, results, strict=True):
        if "\ud800" not in text:
            np.testing.assert_allclose(r.vector, embedder.embed_queries([text])[0], atol=1e-5, err_msg=text)
