"""The Milvus server path: hit/miss against a real Milvus standalone, in a named database."""

from __future__ import annotations

import pytest

from tests.support.apps import running_app
from tests.support.corpus import ingest_sample, load_corpus

pytestmark = pytest.mark.slow


async def test_hit_and_miss_against_a_milvus_server(make_settings, embedder, milvus_server, llama_server):
    settings = make_settings(
        milvus_uri=milvus_server.uri,
        milvus_db="writing_test",
        milvus_collection="writing_e2e",
        llm_base_url=llama_server,
        similarity_threshold=0.99,
    )
    summary, total = ingest_sample(settings, embedder)
    assert total == len(load_corpus())
    again, total = ingest_sample(settings, embedder)
    assert again.inserted == 0 and total == len(load_corpus())

    passage = load_corpus()[20]
    async with running_app(settings) as client:
        r = await client.get("/generate", params={"prompt": passage["content"]})
        assert r.status_code == 200, r.text
        assert r.json() == passage["content"]
        assert r.headers["x-writing-source"] == "milvus"
        assert float(r.headers["x-similarity"]) >= 0.99
        r = await client.post("/v1/generate", json={"prompt": "请用三句话解释TCP三次握手的过程"})
        assert r.status_code == 200, r.text
        assert r.json()["source"] == "llm" and r.json()["content"].strip()

    from pymilvus import MilvusClient

    admin = MilvusClient(milvus_server.uri)
    assert "writing_test" in admin.list_databases()
    admin.close()
