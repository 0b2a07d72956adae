"""The corpus API end to end (Milvus Lite, and a Milvus server in the slow run), shadow mode and
the long-prompt bypass."""

from __future__ import annotations

import pytest

from tests.support.apps import running_app
from tests.support.corpus import load_corpus
from writing.devtools.fake_llm import FakeLLM

PASSAGES = [
    {"content": "清晨的西湖笼着薄雾，远处的雷峰塔若隐若现，游船在平静的湖面上划开一道道涟漪。", "biz_id": "t-hangzhou"},
    {"content": "冬天的哈尔滨，松花江结了厚厚的冰，冰雕在夜里亮起五彩的灯光。", "biz_id": "t-harbin"},
    {"content": "端午节这天，家家户户包粽子，江面上龙舟竞渡，鼓声震天。", "biz_id": "t-duanwu"},
]


async def exercise_corpus_api(client) -> None:
    # add many: ids in order, none duplicate
    r = await client.post("/v1/corpus", json={"passages": PASSAGES})
    assert r.status_code == 200, r.text
    added = r.json()
    assert added["inserted"] == 3 and added["skipped"] == 0 and added["duplicate"] == [False] * 3
    ids = added["ids"]

    # add again (one alone, then all, with a whitespace variant): duplicates, same ids, nothing new
    r = await client.post("/v1/corpus", json={"content": PASSAGES[0]["content"] + "  ", "biz_id": "other"})
    assert r.json() == {"ids": [ids[0]], "duplicate": [True], "inserted": 0, "skipped": 1}
    r = await client.post("/v1/corpus", json={"passages": PASSAGES + [PASSAGES[1]]})
    assert r.json()["ids"] == ids + [ids[1]] and r.json()["inserted"] == 0

    # get, list, stats
    r = await client.get(f"/v1/corpus/{ids[1]}")
    assert r.json() == {"id": ids[1], "biz_id": "t-harbin", "content": PASSAGES[1]["content"]}
    assert (await client.get("/v1/corpus/12345")).status_code == 404
    r = await client.get("/v1/corpus", params={"biz_id": "t-duanwu"})
    assert [p["id"] for p in r.json()["items"]] == [ids[2]]
    r = await client.get("/v1/corpus", params={"limit": 2, "offset": 0})
    assert len(r.json()["items"]) == 2
    stats = (await client.get("/v1/corpus/stats")).json()
    assert stats["count"] == 3 and stats["dimension"] == 384 and stats["pooling"] == "mean"
    assert stats["metric_type"] == "COSINE"

    # search explains a decision
    r = await client.post("/v1/search", json={"prompt": PASSAGES[2]["content"], "top_k": 3})
    matches = r.json()["matches"]
    assert matches[0]["id"] == ids[2] and matches[0]["similarity"] >= 0.99 and matches[0]["above_threshold"]
    assert len(matches) == 3 and matches[0]["similarity"] >= matches[1]["similarity"] >= matches[2]["similarity"]

    # a hit, then delete it: it is never returned again
    r = await client.get("/generate", params={"prompt": PASSAGES[2]["content"]})
    assert r.headers["x-cache"] == "HIT" and r.headers["x-match-id"] == str(ids[2])
    r = await client.delete(f"/v1/corpus/{ids[2]}")
    assert r.json() == {"deleted": 1}
    assert (await client.delete(f"/v1/corpus/{ids[2]}")).status_code == 404
    assert (await client.get(f"/v1/corpus/{ids[2]}")).status_code == 404
    for _ in range(3):
        r = await client.get("/generate", params={"prompt": PASSAGES[2]["content"]})
        assert r.headers.get("x-match-id") != str(ids[2])
        r = await client.post("/v1/search", json={"prompt": PASSAGES[2]["content"], "top_k": 5})
        assert ids[2] not in [m["id"] for m in r.json()["matches"]]

    # delete by biz_id
    r = await client.delete("/v1/corpus", params={"biz_id": "t-harbin"})
    assert r.json() == {"deleted": 1}
    assert (await client.get("/v1/corpus/stats")).json()["count"] == 1

    # bad input says what to fix
    for body in ({}, {"content": ""}, {"passages": []}, {"content": "x", "passages": [{"content": "y"}]}):
        r = await client.post("/v1/corpus", json=body)
        assert r.status_code == 422 and r.json()["error"]["message"], body


async def test_corpus_api_on_milvus_lite(make_settings):
    with FakeLLM() as fake:
        async with running_app(make_settings(llm_base_url=fake.base_url)) as client:
            await exercise_corpus_api(client)


@pytest.mark.slow
async def test_corpus_api_on_a_milvus_server(make_settings, milvus_server):
    with FakeLLM() as fake:
        settings = make_settings(
            llm_base_url=fake.base_url,
            milvus_uri=milvus_server.uri,
            milvus_db="corpus_api",
            milvus_collection="api_test",
        )
        async with running_app(settings) as client:
            await exercise_corpus_api(client)


async def test_shadow_mode_never_serves_a_stored_text(make_settings, embedder):
    from tests.support.corpus import ingest_sample

    with FakeLLM() as fake:
        settings = make_settings(llm_base_url=fake.base_url, shadow_mode=True, answer_cache=True)
        ingest_sample(settings, embedder)
        async with running_app(settings) as client:
            for passage in load_corpus()[:5]:
                r = await client.get("/generate", params={"prompt": passage["content"]})
                assert r.status_code == 200
                assert r.json() == fake.state.text and r.headers["x-writing-source"] == "llm"
                assert r.headers["x-cache"] == "BYPASS" and r.headers["x-shadow-decision"] == "would_hit"
                assert "x-similarity" not in r.headers  # the exact tier would have served it: no search ran
            r = await client.get("/generate", params={"prompt": "请解释一下TCP三次握手"})
            assert r.headers["x-shadow-decision"] == "would_miss"
            metrics = (await client.get("/metrics")).text
            assert 'writing_shadow_decisions_total{decision="would_hit"} 5.0' in metrics
            assert 'writing_shadow_decisions_total{decision="would_miss"} 1.0' in metrics
            # shadow answers are not written back either: the same prompt again is still the LLM's
            r = await client.get("/generate", params={"prompt": load_corpus()[0]["content"]})
            assert r.headers["x-writing-source"] == "llm"
        assert fake.state.calls == 7


async def test_prompts_longer_than_the_embedding_window_bypass_retrieval(make_settings, embedder):
    from tests.support.corpus import ingest_sample

    long_prompt = "".join(p["content"] for p in load_corpus()[:3])  # > 256 tokens for MiniLM
    assert embedder.token_count(long_prompt) > embedder.max_length
    with FakeLLM() as fake:
        settings = make_settings(llm_base_url=fake.base_url)
        ingest_sample(settings, embedder)
        async with running_app(settings) as client:
            r = await client.get("/generate", params={"prompt": long_prompt})
            assert r.headers["x-cache"] == "BYPASS"
            assert r.headers["x-cache-bypass-reason"] == "prompt_longer_than_embedding_window"
            assert r.json() == fake.state.text
        async with running_app(settings.model_copy(update={"retrieve_long_prompts": True})) as client:
            r = await client.get("/generate", params={"prompt": long_prompt})
            assert r.headers["x-cache"] in ("HIT", "MISS") and "x-similarity" in r.headers
