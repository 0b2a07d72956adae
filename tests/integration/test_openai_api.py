"""The OpenAI-compatible front door, driven by the official openai SDK (sync and async)."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest

from tests.support.apps import LiveServer, running_app
from tests.support.corpus import load_corpus
from tests.support.metrics import scrape
from writing.devtools.fake_llm import FakeLLM

UNRELATED = "请用三句话解释TCP三次握手的过程"


def sdk(client: httpx.AsyncClient, **headers) -> openai.AsyncOpenAI:
    """The async OpenAI SDK talking to the in-process app."""
    return openai.AsyncOpenAI(
        base_url="http://localhost/v1",
        api_key="unused",
        http_client=client,
        default_headers=headers or None,
        max_retries=0,
    )


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


async def test_hit_and_miss_non_streaming(make_settings, corpus_db, llama_server):
    passage = load_corpus()[5]["content"]
    async with running_app(make_settings(milvus_lite_path=corpus_db, llm_base_url=llama_server)) as client:
        oa = sdk(client)
        raw = await oa.chat.completions.with_raw_response.create(model="any", messages=user(passage))
        hit = raw.parse()
        assert raw.headers["x-cache"] == "HIT" and raw.headers["x-match-source"] == "curated"
        assert float(raw.headers["x-similarity"]) >= 0.99 and raw.headers["x-match-id"].isdigit()
        assert hit.choices[0].message.content == passage
        assert hit.choices[0].finish_reason == "stop"
        assert hit.id.startswith("chatcmpl-") and hit.created > 0
        assert (
            hit.usage.completion_tokens > 0
            and hit.usage.total_tokens == hit.usage.prompt_tokens + hit.usage.completion_tokens
        )

        raw = await oa.chat.completions.with_raw_response.create(
            model="any", messages=user(UNRELATED), max_tokens=16, temperature=0.2, seed=7, stop=["。。。"]
        )
        miss = raw.parse()
        assert raw.headers["x-cache"] == "MISS" and raw.headers["x-writing-source"] == "llm"
        assert "x-match-id" not in raw.headers
        assert miss.choices[0].message.content.strip()
        assert miss.model == "gemma-3-270m-it"
        assert 0 < miss.usage.completion_tokens <= 16  # max_tokens was passed through

        models = await oa.models.list()
        assert [m.id for m in models.data] == ["gemma-3-270m-it"]


async def test_streamed_hit_replays_a_proper_chunk_stream(make_settings, corpus_db):
    passage = load_corpus()[12]["content"]
    with FakeLLM() as fake:
        async with running_app(make_settings(milvus_lite_path=corpus_db, llm_base_url=fake.base_url)) as client:
            stream = await sdk(client).chat.completions.create(
                model="any", messages=user(passage), stream=True, stream_options={"include_usage": True}
            )
            chunks = [c async for c in stream]
        assert fake.state.calls == 0
    assert chunks[0].choices[0].delta.role == "assistant"
    content = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(content) == passage and len(content) > 5
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finals] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


async def test_streamed_miss_relays_the_real_llm(make_settings, corpus_db, llama_server):
    async with running_app(make_settings(milvus_lite_path=corpus_db, llm_base_url=llama_server)) as client:
        raw = await sdk(client).chat.completions.with_raw_response.create(
            model="any", messages=user(UNRELATED), stream=True, max_tokens=24
        )
        assert raw.headers["x-cache"] == "MISS"
        chunks = [c async for c in raw.parse()]
    content = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content) > 1 and "".join(content).strip()
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_sync_sdk_against_a_real_http_server(make_settings, corpus_db):
    passage = load_corpus()[30]["content"]
    with FakeLLM() as fake, LiveServer(make_settings(milvus_lite_path=corpus_db, llm_base_url=fake.base_url)) as live:
        oa = openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)
        hit = oa.chat.completions.create(model="m", messages=user(passage))
        assert hit.choices[0].message.content == passage
        stream = oa.chat.completions.create(model="m", messages=user(UNRELATED), stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == fake.state.text


async def test_cache_controls_threshold_override_and_multi_turn(make_settings, corpus_db):
    passage = load_corpus()[40]["content"]
    settings = make_settings(
        milvus_lite_path=corpus_db,
        similarity_threshold=0.9,
        similarity_threshold_min=0.6,
        similarity_threshold_max=0.99,
        answer_cache=True,
    )
    with FakeLLM() as fake:
        settings = settings.model_copy(update={"llm_base_url": fake.base_url})
        async with running_app(settings) as client:
            oa = sdk(client)
            # no-cache: the lookup is skipped, the LLM answers
            raw = await sdk(client, **{"Cache-Control": "no-cache"}).chat.completions.with_raw_response.create(
                model="m", messages=user(passage)
            )
            assert raw.headers["x-cache"] == "BYPASS" and raw.headers["x-writing-source"] == "llm"
            assert raw.parse().choices[0].message.content == fake.state.text
            # ... but its answer may still be stored: the same prompt to the answer cache only
            # (a different prompt that is curated would hit the corpus first, so check the count)
            assert (await scrape(client)).get("writing_answer_cache_writes_total") == 1

            # threshold override: just below this prompt's similarity it hits, just above it misses
            near = passage[:10]
            top = (await client.post("/v1/search", json={"prompt": near, "top_k": 1})).json()["matches"][0]
            sim, passage = top["similarity"], top["content"]
            assert 0.61 < sim < 0.98, sim
            below, above = f"{sim - 0.01:.4f}", f"{sim + 0.01:.4f}"
            raw = await sdk(client, **{"X-Similarity-Threshold": below}).chat.completions.with_raw_response.create(
                model="m", messages=user(near)
            )
            assert raw.headers["x-cache"] == "HIT" and raw.parse().choices[0].message.content == passage
            hit = await oa.chat.completions.create(
                model="m", messages=user(near), extra_body={"similarity_threshold": float(below)}
            )
            assert hit.choices[0].message.content == passage
            raw = await sdk(client, **{"X-Similarity-Threshold": above}).chat.completions.with_raw_response.create(
                model="m", messages=user(near)
            )
            assert raw.headers["x-cache"] == "MISS"
            # outside the range the settings allow: 422 with a message
            with pytest.raises(openai.UnprocessableEntityError, match="allowed range"):
                await oa.chat.completions.create(
                    model="m", messages=user(near), extra_body={"similarity_threshold": 0.3}
                )

            # a conversation with earlier turns bypasses retrieval
            convo = [
                {"role": "system", "content": "你是写作助手"},
                {"role": "user", "content": "写一段话"},
                {"role": "assistant", "content": "好的。"},
                {"role": "user", "content": passage},
            ]
            raw = await oa.chat.completions.with_raw_response.create(model="m", messages=convo)
            assert raw.headers["x-cache"] == "BYPASS"
            assert raw.headers["x-cache-bypass-reason"] == "multi_turn"


async def test_write_back_then_hit_from_generated_per_tenant(make_settings):
    prompt = "请写一段介绍量子纠缠的科普短文"
    with FakeLLM() as fake:
        settings = make_settings(llm_base_url=fake.base_url, answer_cache=True)
        async with running_app(settings) as client:
            acme = sdk(client, **{"X-Tenant": "acme"})
            first = await acme.chat.completions.with_raw_response.create(model="m", messages=user(prompt))
            assert first.headers["x-cache"] == "MISS"
            await asyncio.sleep(0.1)
            again = await acme.chat.completions.with_raw_response.create(model="m", messages=user(prompt))
            assert again.headers["x-cache"] == "HIT" and again.headers["x-match-source"] == "generated"
            assert again.parse().choices[0].message.content == fake.state.text
            assert fake.state.calls == 1
            # the /generate routes see the same answer cache and say where the text came from
            r = await client.get("/generate", params={"prompt": prompt}, headers={"X-Tenant": "acme"})
            assert r.headers["x-match-source"] == "generated" and r.headers["x-writing-source"] == "milvus"

            other = await sdk(client, **{"X-Tenant": "globex"}).chat.completions.with_raw_response.create(
                model="m", messages=user(prompt)
            )
            assert other.headers["x-cache"] == "MISS"  # never served across tenants
            default = await sdk(client).chat.completions.with_raw_response.create(model="m", messages=user(prompt))
            assert default.headers["x-cache"] == "MISS"
            assert fake.state.calls == 3

            # streamed misses are written back too, once they finish normally
            s = await acme.chat.completions.create(model="m", messages=user("写一段关于黑洞的科普"), stream=True)
            _ = [c async for c in s]
            await asyncio.sleep(0.5)
            raw = await acme.chat.completions.with_raw_response.create(model="m", messages=user("写一段关于黑洞的科普"))
            assert raw.headers["x-cache"] == "HIT"


async def test_no_store_errors_and_truncation_are_never_stored(make_settings):
    with FakeLLM() as fake:
        settings = make_settings(llm_base_url=fake.base_url, answer_cache=True, llm_max_retries=0)
        async with running_app(settings) as client:
            oa = sdk(client)
            nostore = sdk(client, **{"Cache-Control": "no-store"})
            await nostore.chat.completions.create(model="m", messages=user("写一首关于大海的诗"))
            raw = await oa.chat.completions.with_raw_response.create(model="m", messages=user("写一首关于大海的诗"))
            assert raw.headers["x-cache"] == "MISS"  # the no-store answer was not kept

            fake.state.finish_reason = "length"
            await oa.chat.completions.create(model="m", messages=user("写一篇关于沙漠的长文"))
            fake.state.finish_reason = "stop"
            raw = await oa.chat.completions.with_raw_response.create(model="m", messages=user("写一篇关于沙漠的长文"))
            assert raw.headers["x-cache"] == "MISS"  # a truncated answer was not kept

            fake.state.mode = "error"
            with pytest.raises(openai.APIStatusError) as err:
                await oa.chat.completions.create(model="m", messages=user("写一段关于森林的文字"))
            assert err.value.status_code == 502
            fake.state.mode = "ok"
            raw = await oa.chat.completions.with_raw_response.create(model="m", messages=user("写一段关于森林的文字"))
            assert raw.headers["x-cache"] == "MISS"
            # stored: only the normal, storable answers (大海, 沙漠 and 森林 the second time each)
            assert (await scrape(client)).get("writing_answer_cache_writes_total") == 3


async def test_answers_expire_after_the_ttl(make_settings):
    with FakeLLM() as fake:
        settings = make_settings(llm_base_url=fake.base_url, answer_cache=True, answer_cache_ttl=1)
        async with running_app(settings) as client:
            oa = sdk(client)
            await oa.chat.completions.create(model="m", messages=user("写一段关于冰川的文字"))
            raw = await oa.chat.completions.with_raw_response.create(model="m", messages=user("写一段关于冰川的文字"))
            assert raw.headers["x-cache"] == "HIT"
            time.sleep(2.1)
            raw = await oa.chat.completions.with_raw_response.create(model="m", messages=user("写一段关于冰川的文字"))
            assert raw.headers["x-cache"] == "MISS"


async def test_identical_concurrent_misses_make_one_llm_call(make_settings):
    with FakeLLM() as fake:
        fake.state.delay = 0.5
        async with running_app(make_settings(llm_base_url=fake.base_url)) as client:
            oa = sdk(client)
            results = await asyncio.gather(
                *(oa.chat.completions.create(model="m", messages=user("写一段关于长城的介绍")) for _ in range(10))
            )
            assert fake.state.calls == 1
            assert {r.choices[0].message.content for r in results} == {fake.state.text}
            # fields that change the text are different calls (the stored-answer rule's key) ...
            await asyncio.gather(
                oa.chat.completions.create(model="m", messages=user("写一段关于黄河的介绍"), seed=1),
                oa.chat.completions.create(model="m", messages=user("写一段关于黄河的介绍"), seed=2),
            )
            assert fake.state.calls == 3
            # ... while two sampled temperatures share one, as they would share a stored answer
            await asyncio.gather(
                oa.chat.completions.create(model="m", messages=user("写一段关于泰山的介绍"), temperature=0.1),
                oa.chat.completions.create(model="m", messages=user("写一段关于泰山的介绍"), temperature=0.9),
            )
            assert fake.state.calls == 4


async def test_request_fields_are_passed_to_the_llm_on_a_miss(make_settings):
    with FakeLLM() as fake:
        async with running_app(make_settings(llm_base_url=fake.base_url, llm_max_tokens=99)) as client:
            await sdk(client).chat.completions.create(
                model="client-model",
                messages=user("写一段关于秋天的诗"),
                temperature=0.3,
                top_p=0.5,
                max_tokens=40,
                stop=["。"],
                seed=11,
                presence_penalty=0.1,
                user="u-1",
                extra_body={"top_k": 5, "repetition_penalty": 1.1},
            )
            sent = fake.state.last_body
            assert sent["model"] == "fake-llm"  # the service's LLM answers, whatever the client named
            assert (sent["temperature"], sent["top_p"], sent["max_tokens"], sent["seed"]) == (0.3, 0.5, 40, 11)
            assert sent["stop"] == ["。"] and sent["presence_penalty"] == 0.1 and sent["user"] == "u-1"
            assert sent["top_k"] == 5 and sent["repetition_penalty"] == 1.1
            assert "similarity_threshold" not in sent
            # defaults from the settings when the client sends none
            await sdk(client).chat.completions.create(model="m", messages=user("写一段关于冬天的诗"))
            assert (fake.state.last_body["max_tokens"], fake.state.last_body["temperature"]) == (99, 0.7)


async def test_bad_chat_requests_get_422(make_settings):
    with FakeLLM() as fake:
        async with running_app(make_settings(llm_base_url=fake.base_url)) as client:
            for body in (
                {"model": "m", "messages": []},
                {"model": "m", "messages": [{"role": "system", "content": "只有系统消息"}]},
                {"model": "m", "messages": [{"role": "user", "content": "  "}]},
                {"model": "m", "messages": [{"role": "user", "content": "好"}], "n": 2},
                {"model": "m", "messages": [{"role": "wizard", "content": "好"}]},
            ):
                r = await client.post("/v1/chat/completions", json=body)
                assert r.status_code == 422, (body, r.text)
                assert r.json()["error"]["message"]
        assert fake.state.calls == 0
