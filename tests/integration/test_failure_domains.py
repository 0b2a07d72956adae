"""Failure domains end to end (real model, Milvus Lite, the FakeLLM): the records' domain (audit log,
feedback reports, labels) has its own pymilvus client and its own link, so a failing audit write or
feedback report answers 503 and marks only that link failed. Curated passages and stored answers are
served at once, without waiting for MILVUS_RETRY_INTERVAL, ``/readyz`` still says the store is ok, and
resetting the records' client never drops the corpus's.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support.apps import running_app
from tests.support.corpus import load_corpus
from writing.devtools.fake_llm import FakeLLM
from writing.errors import VectorStoreError

ASKED = "Write two short lines about a quiet harbour at dawn"  # far from the Chinese sample corpus
STORED = "Grey water folds the light; the boats wait, roped and still."
RETRY = 600.0  # a failed link is not retried during the test: a hit that waited for it would time out


@pytest.fixture
def fake():
    with FakeLLM() as f:
        yield f


@pytest.fixture
def settings(make_settings, corpus_db, tmp_path, fake):
    """A copy of the sample corpus file (the test writes to it), the answer cache on, fresh probes."""
    import shutil

    path = tmp_path / "corpus.db"
    shutil.copy(corpus_db, path)
    return make_settings(
        milvus_lite_path=str(path),
        llm_base_url=fake.base_url,
        answer_cache=True,
        milvus_retry_interval=RETRY,
        readiness_probe_interval=0.01,
    )


def failing(calls: list[str], name: str):
    def write(*args, **kwargs):
        calls.append(name)
        raise VectorStoreError(f"injected: the {name} collection is down")

    return write


async def stored_answer(client) -> None:
    deadline = time.monotonic() + 20
    while not (await client.get("/v1/answers")).json()["items"]:
        assert time.monotonic() < deadline, "the generated answer was never stored"
        await asyncio.sleep(0.1)


async def assert_served(client, passage: dict) -> None:
    """An exact curated prompt and a stored answer HIT, at once, and the store is ready."""
    t0 = time.monotonic()
    curated = await client.get("/generate", params={"prompt": passage["content"]})
    assert curated.status_code == 200, curated.text
    assert (curated.headers["x-cache"], curated.headers["x-match-source"]) == ("HIT", "curated")
    assert curated.json() == passage["content"]
    generated = await client.get("/generate", params={"prompt": ASKED})
    assert generated.status_code == 200, generated.text
    assert (generated.headers["x-cache"], generated.headers["x-match-source"]) == ("HIT", "generated")
    assert generated.json() == STORED
    assert time.monotonic() - t0 < 30  # far below MILVUS_RETRY_INTERVAL: nothing waited for a retry
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["vector_store"] == "ok"


async def test_failing_records_writes_leave_hits_and_readiness_alone(settings, fake, monkeypatch):
    passage = load_corpus()[4]
    async with running_app(settings) as client:
        stores = client.app.state.stores
        links = stores.links
        corpus_conn = stores.corpus.connection
        records_conn = stores.audit._coll.connection
        assert stores.feedback._coll.connection is records_conn and stores.labels._coll.connection is records_conn
        corpus_client, records_client = corpus_conn.client, records_conn.client
        assert corpus_conn is not records_conn and corpus_client is not records_client  # a client per domain
        assert stores.answers._coll.connection.client not in (corpus_client, records_client)

        fake.state.text = STORED
        miss = await client.get("/generate", params={"prompt": ASKED})
        assert miss.headers["x-cache"] == "MISS" and miss.json() == STORED
        await stored_answer(client)
        hit = await client.get("/generate", params={"prompt": passage["content"]})
        assert hit.headers["x-cache"] == "HIT"
        llm_calls = fake.state.calls

        # the audit log's write fails: the admin write answers 503, the records' link alone is failed
        calls: list[str] = []
        monkeypatch.setattr(stores.audit, "record", failing(calls, "audit"))
        r = await client.post("/v1/corpus", json={"content": "海港的清晨，雾气还没有散去。", "biz_id": "fd-1"})
        assert r.status_code == 503, r.text
        assert calls == ["audit"]
        assert not links.records.ready and records_conn._client is None  # the records' client was dropped...
        assert corpus_conn.client is corpus_client  # ...the corpus's was not
        assert links.corpus.ready and links.answers.ready
        await assert_served(client, passage)

        # the records' domain reconnects (as after the retry interval), with a fresh client of its own
        await links.records.open()
        assert records_conn.client is not records_client and corpus_conn.client is corpus_client

        # the feedback report's write fails: the report answers 503, the hits go on
        monkeypatch.setattr(stores.feedback, "save", failing(calls, "feedback"))
        body = {"request_id": hit.headers["x-request-id"], "token": hit.headers["x-feedback-token"], "verdict": "wrong"}
        r = await client.post("/v1/feedback", json=body)
        assert r.status_code == 503, r.text
        assert calls == ["audit", "feedback"]
        assert not links.records.ready and links.corpus.ready and links.answers.ready
        await assert_served(client, passage)
        assert corpus_conn.client is corpus_client
        assert fake.state.calls == llm_calls  # every answer since came from the stores
