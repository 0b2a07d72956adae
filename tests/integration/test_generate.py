"""The retrieval-first path end to end: real model, real Milvus Lite, real llama.cpp server."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from tests.support.apps import running_app
from tests.support.corpus import load_corpus
from writing.devtools.fake_llm import FakeLLM
from writing.devtools.processes import free_port

UNRELATED = "请用三句话解释TCP三次握手的过程"


def server_timing(header: str) -> dict[str, float]:
    return {name: float(dur) for name, dur in re.findall(r"(\w+);dur=([\d.]+)", header)}


async def test_stored_passage_comes_back_from_milvus(make_settings, corpus_db, llama_server):
    passage = load_corpus()[10]
    # the semantic path's stages (the exact tier would serve this text: tests/integration/test_exact_tier.py)
    settings = make_settings(milvus_lite_path=corpus_db, llm_base_url=llama_server, exact_tier=False)
    async with running_app(settings) as client:
        r = await client.get("/generate", params={"prompt": passage["content"]})
        assert r.status_code == 200, r.text
        assert r.json() == passage["content"]
        assert r.headers["x-writing-source"] == "milvus"
        assert float(r.headers["x-similarity"]) >= 0.99
        assert r.headers["x-match-id"].isdigit()
        assert r.headers["x-request-id"]
        stages = server_timing(r.headers["server-timing"])
        assert list(stages) == ["embed", "search", "total"]  # a curated hit: the answer tier is not reached
        assert re.search(r"total;dur=\d+\.\d\d$", r.headers["server-timing"])  # 0.01 ms resolution
        assert stages["total"] >= stages["embed"] + stages["search"] - 0.2  # the stages are parts of the whole

        r = await client.post("/v1/generate", json={"prompt": passage["content"]})
        body = r.json()
        assert r.status_code == 200
        assert body["source"] == "milvus" and body["content"] == passage["content"]
        assert body["match"]["biz_id"] == passage["biz_id"]
        assert body["similarity"] >= 0.99 and body["model"] is None


async def test_unrelated_prompt_is_answered_by_the_real_llm(make_settings, corpus_db, llama_server):
    settings = make_settings(milvus_lite_path=corpus_db, llm_base_url=llama_server, similarity_threshold=0.99)
    async with running_app(settings) as client:
        r = await client.get("/generate", params={"prompt": UNRELATED})
        assert r.status_code == 200, r.text
        assert isinstance(r.json(), str) and r.json().strip()
        assert r.headers["x-writing-source"] == "llm"
        assert 0 <= float(r.headers["x-similarity"]) < 0.99
        assert "x-match-id" not in r.headers
        stages = server_timing(r.headers["server-timing"])
        assert list(stages)[-2:] == ["llm", "total"] and stages["total"] >= stages["llm"]

        # the per-request threshold of POST /v1/generate: a stored passage misses at 1.0 only if not equal
        passage = load_corpus()[3]["content"]
        r = await client.post("/v1/generate", json={"prompt": passage, "threshold": 0.5})
        assert r.json()["source"] == "milvus"
        r = await client.post("/v1/generate", json={"prompt": UNRELATED})
        body = r.json()
        assert body["source"] == "llm" and body["content"].strip() and body["model"] == "gemma-3-270m-it"
        assert body["match"] is None


@pytest.mark.parametrize(
    "params",
    [{}, {"prompt": ""}, {"prompt": "   \n\t "}],
    ids=["missing", "empty", "blank"],  # too long: test_operations.test_prompt_longer_than_max_prompt_chars_is_422
)
async def test_bad_prompts_get_422_with_a_message(make_settings, params):
    with FakeLLM() as fake:
        async with running_app(make_settings(llm_base_url=fake.base_url)) as client:
            for r in (
                await client.get("/generate", params=params),
                await client.get("/chat", params=params),
                await client.post("/v1/generate", json=params),
            ):
                assert r.status_code == 422, r.text
                assert r.json()["error"]["message"]
        assert fake.state.calls == 0


async def test_bad_threshold_gets_422(make_settings):
    with FakeLLM() as fake:
        async with running_app(make_settings(llm_base_url=fake.base_url)) as client:
            r = await client.post("/v1/generate", json={"prompt": "写一段话", "threshold": 1.5})
            assert r.status_code == 422 and "threshold" in r.json()["error"]["message"]


async def test_llm_unreachable_is_502(make_settings):
    settings = make_settings(llm_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_max_retries=0)
    async with running_app(settings) as client:
        r = await client.get("/generate", params={"prompt": UNRELATED})
        assert r.status_code == 502 and r.json()["error"]["code"] == "llm_unavailable"
        r = await client.get("/chat", params={"prompt": UNRELATED})
        assert r.status_code == 502


async def test_dimension_mismatch_stops_start_up(make_settings, tmp_path):
    from writing.adapters.milvus.corpus import MilvusStore
    from writing.errors import DimensionMismatch

    path = str(tmp_path / "other.db")
    store = MilvusStore(lite_path=path, collection="writing")
    store.open(1024)  # a collection built for bge-large-zh
    store.close()
    with pytest.raises(DimensionMismatch, match="1024-dim"):
        async with running_app(make_settings(milvus_lite_path=path)):
            pass


async def test_concurrent_requests_do_not_block_each_other(make_settings, corpus_db):
    """16 misses against a 1-second LLM finish in about 1 second, not 16."""
    with FakeLLM() as fake:
        fake.state.delay = 1.0
        async with running_app(make_settings(milvus_lite_path=corpus_db, llm_base_url=fake.base_url)) as client:
            t0 = time.monotonic()
            rs = await asyncio.gather(
                *(client.get("/generate", params={"prompt": f"{UNRELATED} {i}"}) for i in range(16))
            )
            elapsed = time.monotonic() - t0
        assert all(r.status_code == 200 for r in rs)
        assert elapsed < 5, elapsed
