"""The batcher serves keys in turn (issue 25), with a gated fake model so that the order is deterministic.

``GatedModel`` holds a forward pass until the test lets it go, and records every pass: the tests fill
the queue while the model is busy, then read which texts went into which pass, in order.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tests.support.fakes import FakeQueryModel
from writing.adapters.embedding.batcher import EmbeddingBatcher
from writing.core.corpus import CorpusWriter, chunks_by_tokens

NOISY = ["噪" * 300 + str(i) for i in range(8)]  # long prompts (about 300 tokens each)
QUIET = ["安静的短句" + str(i) for i in range(4)]


class GatedModel(FakeQueryModel):
    """A pass whose first text starts with a gated prefix waits until the test opens the gate."""

    def __init__(self, gated: str = "噪") -> None:
        super().__init__()
        self.gated = gated
        self.gate = threading.Event()
        self.started = threading.Event()

    def embed_queries_checked(self, texts):
        if any(t.startswith(self.gated) for t in texts):
            self.started.set()
            if not self.gate.wait(10):
                raise RuntimeError("the test never opened the gate")
        return super().embed_queries_checked(texts)


async def until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.005)


@pytest.fixture
def batcher_of():
    made: list[EmbeddingBatcher] = []

    def make(model, **kwargs) -> EmbeddingBatcher:
        b = EmbeddingBatcher(model, max_batch_size=16, max_wait_ms=0, cache_size=0, **kwargs)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


async def test_one_worker_serves_the_quiet_key_next(batcher_of):
    model = GatedModel()
    batcher = batcher_of(model, batch_tokens=700)  # two noisy prompts fit a batch
    first = asyncio.create_task(batcher.embed_query(NOISY[0], "key:noisy"))
    await asyncio.to_thread(model.started.wait, 5)  # the model is busy with the noisy key's pass
    backlog = [asyncio.create_task(batcher.embed_query(t, "key:noisy")) for t in NOISY[1:]]
    await until(lambda: batcher.queue_depth == 7)
    quiet = asyncio.create_task(batcher.embed_query(QUIET[0], "key:quiet"))  # arrives last
    await until(lambda: batcher.queue_depth == 8)
    model.gate.set()
    await asyncio.gather(first, quiet, *backlog)
    passes = [sorted(t[0] + t[-1] for t in call) for call in model.calls]
    # the quiet prompt is the very next pass, alone (no long prompt pads it); then the backlog in pairs
    assert passes == [["噪0"], ["安0"], ["噪1", "噪2"], ["噪3", "噪4"], ["噪5", "噪6"], ["噪7"]], passes


async def test_two_workers_keep_one_free_for_other_keys(batcher_of):
    model = GatedModel()
    batcher = batcher_of(model, workers=2, batch_tokens=700)
    noisy = [asyncio.create_task(batcher.embed_query(t, "key:noisy")) for t in NOISY]
    await asyncio.to_thread(model.started.wait, 5)
    await until(lambda: batcher.queue_depth == 6)  # one pass holds two; the noisy key holds one worker only
    # the quiet key's prompts are answered while the noisy pass is still held by the gate
    for text in QUIET:
        await asyncio.wait_for(batcher.embed_query(text, "key:quiet"), 5)
    assert not model.gate.is_set() and batcher.queue_depth == 6
    model.gate.set()
    await asyncio.gather(*noisy)
    assert batcher.queue_depth == 0
    # the quiet passes ended before the noisy pass that was running when they came
    firsts = [call[0][0] for call in model.calls]  # a pass is recorded when it ends
    assert firsts[: len(QUIET)] == ["安"] * len(QUIET), firsts


async def test_admin_work_runs_between_prompt_batches(batcher_of):
    model = GatedModel()
    batcher = batcher_of(model, admin_weight=0.25, batch_tokens=350)  # one noisy prompt per batch
    ran: list[str] = []
    first = asyncio.create_task(batcher.embed_query(NOISY[0], "key:noisy"))
    await asyncio.to_thread(model.started.wait, 5)
    backlog = [asyncio.create_task(batcher.embed_query(t, "key:noisy")) for t in NOISY[1:]]
    await until(lambda: batcher.queue_depth == 7)
    # an import cut in chunks of the same cost as a noisy prompt: each a batch alone, at a quarter weight
    import_done = asyncio.create_task(
        asyncio.to_thread(lambda: [batcher.run_blocking(lambda i=i: ran.append(f"task{i}"), 300) for i in range(2)])
    )
    await until(lambda: batcher.queue_depth == 8)
    model.gate.set()
    await asyncio.gather(first, *backlog, import_done)
    assert ran == ["task0", "task1"]
    assert batcher.stats.tasks == 2
    # the import finished although prompts kept the model busy (bounded time, not starved)


def test_corpus_writes_are_cut_into_chunks_by_tokens():
    texts = ["春" * 100, "夏" * 300, "秋" * 50, "冬" * 900]
    chunks = chunks_by_tokens(texts, 400)
    assert chunks == [[2, 0], [1], [3]]  # length order; the 900-token text alone
    assert chunks_by_tokens(texts, 0) == [[2, 0, 1, 3]]

    class Embedder:
        dim = 4

        def embed_sorted(self, part, batch_size):
            import numpy as np

            return np.array([[len(t), 0, 0, 0] for t in part], dtype=np.float32)

    costs: list[int] = []

    def run_model(fn, cost):
        costs.append(cost)
        return fn()

    writer = CorpusWriter(Embedder(), store=None, run_model=run_model, chunk_tokens=400)
    vectors = writer.embed(texts)
    assert [int(v[0]) for v in vectors] == [100, 300, 50, 900]  # back in input order
    assert costs == [154, 302, 902]  # one call per chunk, each with its estimated tokens
