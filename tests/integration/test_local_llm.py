"""The LLM stand-in as scripts/run.sh runs it (writing/devtools/local_llm.py): llama.cpp's server with the
launcher's defaults in place, and a miss on a demo prompt that reads as an answer, not a loop."""

from __future__ import annotations

import httpx

from bench.llm_standin import cjk_share, max_repeats
from tests.support.apps import running_app
from writing.devtools import local_llm

DEMO = "广州有什么好玩的"  # issue 23: "你的房间\n你的房间\n…" ~200 times, 21.8 s


def chat(base_url: str, **fields) -> dict:
    body = {"model": "any", "messages": [{"role": "user", "content": DEMO}], **fields}
    r = httpx.post(f"{base_url}/chat/completions", json=body, timeout=120)
    r.raise_for_status()
    return r.json()


def test_the_server_fills_in_the_launchers_defaults(llama_server):
    schema = httpx.get(llama_server.removesuffix("/v1") + "/openapi.json", timeout=10).json()
    fields = schema["components"]["schemas"]["CreateChatCompletionRequest"]["properties"]
    assert {name: fields[name]["default"] for name in local_llm.SAMPLING_DEFAULTS} == local_llm.SAMPLING_DEFAULTS
    # a request without the fields is answered as one that names the defaults (same seed, same answer).
    # The same request first, once: llama.cpp's logits differ in their last bits with what its cache held
    # before (how much of the prompt it reuses, how far the last answer went), enough to sample another
    # answer from the same seed; after the same request, the cache is as it will be for the second one
    sent = {"max_tokens": 24, "temperature": 0.7, "top_p": 0.9, "seed": 3}
    chat(llama_server, **sent)
    plain = chat(llama_server, **sent)["choices"][0]["message"]["content"]
    named = chat(llama_server, **sent, **local_llm.SAMPLING_DEFAULTS)["choices"][0]["message"]["content"]
    assert plain == named


async def test_a_miss_on_a_demo_prompt_is_an_answer_not_a_loop(make_settings, corpus_db, llama_server):
    # run.sh's stand-in settings: LLM_MAX_TOKENS=256, the service's temperature and top_p
    settings = make_settings(
        milvus_lite_path=corpus_db, llm_base_url=llama_server, llm_max_tokens=256, similarity_threshold=0.99
    )
    async with running_app(settings) as client:
        r = await client.post(
            "/v1/chat/completions", json={"model": "any", "messages": [{"role": "user", "content": DEMO}], "seed": 42}
        )
    assert r.status_code == 200, r.text
    assert r.headers["x-cache"] == "MISS" and r.headers["x-writing-source"] == "llm"
    text = r.json()["choices"][0]["message"]["content"]
    count, gram = max_repeats(text)
    assert count < 4, f"{gram!r} occurs {count} times in {text!r}"  # bench/llm_standin.py's "degenerate"
    assert text.strip() and cjk_share(text) >= 0.5, text
    assert r.json()["usage"]["completion_tokens"] < 256, text  # it ended by itself


async def test_verification_runs_end_to_end_against_the_stand_in(make_settings, corpus_db, llama_server):
    """Issue 27: a hit verified by the stand-in as the judge (one token); its verdict stored as evidence,
    or counted as no verdict when the small model answers with neither 是 nor 否."""
    import asyncio
    import time

    settings = make_settings(milvus_lite_path=corpus_db, llm_base_url=llama_server, verify=True)
    async with running_app(settings) as client:
        verifier = client.app.state.budget.verifier
        verifier.rule = type(verifier.rule)(floor=1.0)
        passage = (await client.get("/v1/corpus", params={"limit": 1})).json()["items"][0]
        hit = await client.get("/generate", params={"prompt": passage["content"]})
        assert hit.headers["x-cache"] == "HIT"
        deadline = time.monotonic() + 60
        while verifier.outcomes["verified"] + verifier.outcomes["unclear"] == 0:
            assert time.monotonic() < deadline, dict(verifier.outcomes)
            await asyncio.sleep(0.1)
        assert verifier.outcomes["failed"] == 0
        evidence = (await client.get("/v1/evidence")).json()["items"]
        assert len(evidence) == verifier.outcomes["verified"]
        if evidence:
            assert evidence[0]["entry_id"] == passage["id"] and evidence[0]["similarity"] == 1.0
