"""/chat streaming against a real uvicorn, and the demo caller against the running service."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import httpx

from tests.support.apps import LiveServer
from tests.support.corpus import ROOT, ingest_sample, load_corpus
from writing.devtools.fake_llm import FakeLLM


async def test_chat_streams_tokens_from_the_real_llm(make_settings, llama_server):
    with LiveServer(make_settings(llm_base_url=llama_server, llm_max_tokens=48)) as live:
        async with (
            httpx.AsyncClient(timeout=120) as client,
            client.stream("GET", f"{live.url}/chat", params={"prompt": "写一句关于春天的话"}) as r,
        ):
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/plain")
            chunks = [c async for c in r.aiter_text() if c]
    assert len(chunks) > 1, chunks
    assert "".join(chunks).strip()
    assert "[error]" not in "".join(chunks)


async def test_chat_failure_mid_stream_ends_with_a_visible_error_line(make_settings):
    with FakeLLM() as fake:
        fake.state.mode = "drop"
        with LiveServer(make_settings(llm_base_url=fake.base_url)) as live:
            async with httpx.AsyncClient(timeout=30) as client:
                r = await client.get(f"{live.url}/chat", params={"prompt": "写一句话"})
    assert r.status_code == 200
    lines = r.text.strip().splitlines()
    assert lines[-1].startswith("[error]"), r.text
    assert fake.state.text[:3] in r.text  # what came before the failure was delivered


async def test_client_disconnect_cancels_the_upstream_request(make_settings):
    with FakeLLM() as fake:
        fake.state.mode = "slow_stream"
        with LiveServer(make_settings(llm_base_url=fake.base_url)) as live:
            async with (
                httpx.AsyncClient(timeout=30) as client,
                client.stream("GET", f"{live.url}/chat", params={"prompt": "写一句话"}) as r,
            ):
                async for _ in r.aiter_text():
                    break  # read one chunk, then hang up
            for _ in range(100):
                if fake.state.cancelled:
                    break
                await asyncio.sleep(0.05)
        assert fake.state.cancelled == 1
        assert fake.state.completed_streams == 0


def test_demo_caller_prints_the_text_and_its_source(make_settings, embedder, llama_server):
    settings = make_settings(llm_base_url=llama_server)
    ingest_sample(settings, embedder)
    passage = load_corpus()[8]["content"]
    with LiveServer(settings) as live:
        out = subprocess.run(
            [sys.executable, str(ROOT / "generate_text_request.py"), "--url", live.url, passage],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == passage
    assert "source: milvus" in out.stderr
    # the stored passage itself: 1.0 in fp32, 0.9999 when EMBEDDING_QUANTIZE=auto picks bf16
    similarity = float(re.search(r"similarity: ([0-9.]+)", out.stderr).group(1))
    assert similarity >= 0.999
