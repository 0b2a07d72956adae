"""Bad input stays with its sender (issue: hardening)."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx

from tests.support.apps import LiveServer, running_app
from tests.support.metrics import scrape
from writing.devtools.fake_llm import FakeLLM

GOOD = ["写一段描写秋天的文字", "介绍一下西湖", "写一首关于大海的诗", "请写一封感谢信"]
LONE = b'"\\ud800 a lone surrogate"'  # valid JSON whose string no UTF-8 encoder accepts


async def test_a_lone_surrogate_is_a_422_while_the_requests_beside_it_are_answered(make_settings):
    with FakeLLM() as fake:
        async with running_app(make_settings(llm_base_url=fake.base_url, embedding_batch_wait_ms=20)) as client:
            json_headers = {"content-type": "application/json"}
            bad = [
                client.post("/v1/search", content=b'{"prompt": ' + LONE + b"}", headers=json_headers),
                client.post("/v1/generate", content=b'{"prompt": ' + LONE + b"}", headers=json_headers),
                client.post(
                    "/v1/chat/completions",
                    content=b'{"messages": [{"role": "system", "content": '
                    + LONE
                    + b'}, {"role": "user", "content": "hi"}]}',
                    headers=json_headers,
                ),
            ]
            good = [client.post("/v1/search", json={"prompt": p}) for p in GOOD]
            good += [client.post("/v1/generate", json={"prompt": p}) for p in GOOD]
            results = await asyncio.gather(*bad, *good)
            for r in results[: len(bad)]:
                assert r.status_code == 422, r.text
                assert "surrogate" in r.json()["error"]["message"]
            assert [r.status_code for r in results[len(bad) :]] == [200] * len(good)


async def test_a_query_prompt_that_is_not_utf8_is_a_422_not_an_answer_to_replacement_characters(make_settings):
    """A client that percent-encodes GBK (广州 as %B9%E3%D6%DD) was answered for U+FFFD characters."""
    with FakeLLM() as fake:
        async with running_app(make_settings(llm_base_url=fake.base_url)) as client:
            for path in ("/generate", "/chat"):
                r = await client.get(f"{path}?prompt=%B9%E3%D6%DD")
                assert r.status_code == 422, r.text
                assert "UTF-8" in r.json()["error"]["message"]
            assert fake.state.calls == 0  # refused before the LLM
            ok = await client.get("/generate", params={"prompt": "写一段描写秋天的文字 \ufffd"})
            assert ok.status_code == 200, ok.text  # U+FFFD sent as UTF-8 is the caller's own text
            body = await client.post("/v1/generate?prompt=%B9%E3", json={"prompt": "写一首关于大海的诗 \ufffd"})
            assert body.status_code == 200, body.text  # a prompt from the body is not checked against the query


# -- limits on what is passed on --------------------------------------------------------------------------
def chat(content: str = "写一段描写秋天的文字", **fields) -> dict:
    return {"messages": [{"role": "user", "content": content}], **fields}


async def test_what_goes_to_the_llm_is_bounded_and_unknown_fields_are_named(make_settings):
    with FakeLLM() as fake:
        async with running_app(make_settings(llm_base_url=fake.base_url, max_completion_tokens=1000)) as client:

            async def refused(body: dict, *words: str) -> None:
                r = await client.post("/v1/chat/completions", json=body)
                assert r.status_code == 422, r.text
                message = r.json()["error"]["message"]
                assert all(w in message for w in words), message

            await refused(chat(max_tokens=10**9), "max_tokens", "1000")
            await refused(chat(max_completion_tokens=1001), "max_completion_tokens", "1000")
            system = {"role": "system", "content": "a" * 150_000}  # 150 kB: under MAX_BODY_BYTES
            await refused({"messages": [system, {"role": "user", "content": "hi"}]}, "150002", "MAX_TOTAL_CHARS")
            await refused({"messages": [{"role": "user", "content": "hi"}] * 65}, "65 messages", "64")
            await refused(chat(logit_bias={str(i): 1 for i in range(301)}), "logit_bias")
            await refused(chat(logit_bias={"42": 500}), "logit_bias")
            await refused(chat(logit_bias={"not-a-token": 1}), "logit_bias")
            await refused(chat(foo_bar=1), "unrecognized request argument supplied: foo_bar")
            await refused(chat(max_tokens=10, min_tokens=11), "min_tokens")
            await refused(chat(n=2), "n")
            fake_calls = fake.state.calls
            assert fake_calls == 0  # nothing refused reached the LLM

            # vLLM's extras are on ALLOWED_EXTRA_FIELDS by default and go through as given
            headers = {"Cache-Control": "no-cache"}
            r = await client.post(
                "/v1/chat/completions",
                json=chat(ignore_eos=True, min_tokens=2, top_k=5, max_tokens=20),
                headers=headers,
            )
            assert r.status_code == 200, r.text
            sent = fake.state.last_body
            assert sent["ignore_eos"] is True and sent["min_tokens"] == 2 and sent["top_k"] == 5
            assert sent["max_tokens"] == 20

    with FakeLLM() as fake:  # a deployment that lets nothing extra through
        async with running_app(make_settings(llm_base_url=fake.base_url, allowed_extra_fields=[])) as client:
            r = await client.post("/v1/chat/completions", json=chat(ignore_eos=True))
            assert r.status_code == 422 and "ignore_eos" in r.json()["error"]["message"]
            schema = (await client.get("/openapi.json")).json()["components"]["schemas"]["ChatCompletionRequest"]
            assert "ignore_eos" not in schema["properties"] and schema["additionalProperties"] is False


async def test_the_schema_states_the_limits_the_settings_choose(make_settings):
    settings = make_settings(
        max_prompt_chars=300, max_messages=7, max_completion_tokens=99, similarity_threshold_min=0.6
    )
    async with running_app(settings) as client:
        schema = (await client.get("/openapi.json")).json()
    components = schema["components"]["schemas"]
    chat_request = components["ChatCompletionRequest"]["properties"]
    assert chat_request["messages"]["maxItems"] == 7
    assert chat_request["max_tokens"]["anyOf"][0]["maximum"] == 99
    assert components["GenerateRequest"]["properties"]["prompt"]["maxLength"] == 300
    assert components["GenerateRequest"]["properties"]["threshold"]["anyOf"][0]["minimum"] == 0.6
    (param,) = schema["paths"]["/generate"]["get"]["parameters"]
    assert param["schema"]["maxLength"] == 300 and param["schema"]["minLength"] == 1


# -- slots: slow bodies, one busy key, a reader that stopped ---------------------------------------------------
async def test_clients_stuck_mid_body_hold_no_slot_and_time_out(make_settings):
    """MAX_IN_FLIGHT=4 and eight clients that send half a body and stall: a normal request is answered,
    and the stalled ones get 408 once BODY_READ_TIMEOUT has passed."""
    settings = make_settings(max_in_flight=4, body_read_timeout=3)
    with LiveServer(settings) as live:
        stuck = []
        for _ in range(8):
            reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
            writer.write(
                b"POST /v1/search HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"prompt": '
            )
            await writer.drain()
            stuck.append((reader, writer))
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        async with httpx.AsyncClient(base_url=live.url, timeout=10) as client:
            r = await client.post("/v1/search", json={"prompt": "写一段描写秋天的文字"})
        assert r.status_code == 200, r.text
        assert time.monotonic() - t0 < 3  # answered while the eight still stall
        for reader, writer in stuck:
            head = await asyncio.wait_for(reader.read(4096), 10)
            assert head.startswith(b"HTTP/1.1 408"), head[:200]
            assert b"BODY_READ_TIMEOUT" in head
            writer.close()


async def test_one_key_holds_at_most_its_share_of_the_slots(make_settings):
    with FakeLLM() as fake:
        fake.state.delay = 1.0
        settings = make_settings(
            llm_base_url=fake.base_url, api_keys="busy,calm", max_in_flight=4, max_in_flight_share=0.5
        )
        async with running_app(settings) as client:

            def ask(key: str, i: int):
                return client.post(
                    "/v1/chat/completions",
                    json=chat(f"Explain TCP, variant {key} {i}"),
                    headers={"Authorization": f"Bearer {key}", "Cache-Control": "no-cache"},
                )

            busy = [ask("busy", i) for i in range(4)]
            results = await asyncio.gather(*busy, ask("calm", 0))
            statuses = sorted(r.status_code for r in results[:4])
            assert statuses == [200, 200, 429, 429], [r.text for r in results]
            refused = next(r for r in results[:4] if r.status_code == 429)
            assert "MAX_IN_FLIGHT_SHARE" in refused.json()["error"]["message"] and refused.headers["retry-after"]
            assert results[4].status_code == 200  # the other key was not crowded out


async def test_a_client_that_stops_reading_a_stream_is_dropped_and_the_upstream_closed(make_settings):
    with FakeLLM() as fake:
        fake.state.mode = "endless"
        fake.state.text = "长" * 2000
        settings = make_settings(llm_base_url=fake.base_url, stream_stall_timeout=1, max_in_flight=2)
        with LiveServer(settings) as live:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window fills quickly
            sock.connect(("127.0.0.1", live.port))
            body = json.dumps(chat("Explain TCP", stream=True)).encode()
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\nCache-Control: no-cache\r\n\r\n".encode()
                + body
            )
            try:  # never reads: within a few stall timeouts the service gives up on it
                deadline = time.monotonic() + 30
                while fake.state.cancelled == 0 and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                assert fake.state.cancelled == 1, "the upstream stream was not closed"
                async with httpx.AsyncClient(base_url=live.url, timeout=10) as client:
                    scraped = await scrape(client, live.url)
                    assert scraped.value("writing_requests_in_flight") == 0  # the slot is free again
            finally:
                sock.close()


# -- readiness -----------------------------------------------------------------------------------------------
async def test_readyz_probes_upstreams_once_per_interval_and_sees_failing_completions(make_settings):
    with FakeLLM() as fake:
        settings = make_settings(llm_base_url=fake.base_url, readiness_probe_interval=60, llm_max_retries=0)
        async with running_app(settings) as client:
            listings = fake.state.model_listings
            results = await asyncio.gather(*(client.get("/readyz") for _ in range(50)))
            assert {r.status_code for r in results} == {200}
            assert fake.state.model_listings - listings == 1  # fifty calls, one upstream probe
            body = results[0].json()
            assert body["serves"] == {"hits": True, "misses": True}

            fake.state.mode = "error"  # lists its models, fails every completion
            for i in range(3):
                r = await client.post("/v1/chat/completions", json=chat(f"Explain TCP {i}"))
                assert r.status_code == 502
            r = await client.get("/readyz")
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["down"] == ["llm"] and "failing completions" in body["checks"]["llm"]
            assert body["llm_completions"]["consecutive_failures"] == 3
            assert body["serves"] == {"hits": True, "misses": False}
            scraped = await scrape(client, "")
            assert scraped.value("writing_llm_failing") == 1
            assert scraped.value("writing_dependency_up", dependency="llm") == 0  # what an alert reads
            assert scraped.value("writing_dependency_up", dependency="vector_store") == 1

            fake.state.mode = "ok"
            r = await client.post("/v1/chat/completions", json=chat("Explain TCP again"))
            assert r.status_code == 200
            assert (await client.get("/readyz")).status_code == 200


async def test_ready_when_llm_down_reports_degraded(make_settings):
    settings = make_settings(ready_when_llm_down=True, llm_max_retries=0)  # nothing listens at the LLM URL
    async with running_app(settings) as client:
        r = await client.get("/readyz")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "degraded" and r.json()["serves"]["hits"] is True


# -- races ------------------------------------------------------------------------------------------------------
async def test_six_concurrent_adds_of_one_passage_store_it_once(make_settings):
    passage = {"content": "秋天的银杏叶铺满了小路，踩上去沙沙作响。", "biz_id": "race-1"}
    async with running_app(make_settings()) as client:
        results = await asyncio.gather(*(client.post("/v1/corpus", json=passage) for _ in range(6)))
        assert [r.status_code for r in results] == [200] * 6, [r.text for r in results]
        bodies = [r.json() for r in results]
        assert sum(b["inserted"] for b in bodies) == 1
        assert len({b["ids"][0] for b in bodies}) == 1  # every caller is told the one id that stays
        listed = (await client.get("/v1/corpus", params={"biz_id": "race-1"})).json()["items"]
        assert len(listed) == 1 and listed[0]["id"] == bodies[0]["ids"][0]


async def test_the_api_docs_load_nothing_from_another_origin(make_settings):
    """Issue 26: /docs loaded Swagger UI from a CDN (floating version, no integrity, no CSP) on the
    origin where the console keeps the admin key."""
    import re

    async with running_app(make_settings()) as client:
        for page in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            r = await client.get(page)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            csp = r.headers["content-security-policy"]
            assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
            assert "<script>" not in r.text  # no inline script: the CSP would block it
            sources = re.findall(r'(?:src|href)="([^"]+)"', r.text)
            assert sources and all(s.startswith("/docs/assets/") for s in sources), sources
            for src in sources:
                asset = await client.get(src)
                assert asset.status_code == 200 and len(asset.content) > 0, src
        assert "SwaggerUIBundle" in (await client.get("/docs/assets/docs-init.js")).text
        assert (await client.get("/docs/assets/..%2F..%2Fopenapi.json")).status_code == 404
        assert (await client.get("/docs/assets/nope.js")).status_code == 404


async def test_tools_are_passed_to_the_llm_with_the_curated_tier_skipped(make_settings):
    """Issue 26: tools/tool_choice got 422 although the docs name X-Cache-Bypass-Reason: curated_tier:tools."""
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
    with FakeLLM() as fake:
        async with running_app(make_settings(llm_base_url=fake.base_url)) as client:
            body = chat("写一段描写秋天的文字", tools=[tool], tool_choice="none", parallel_tool_calls=False)
            r = await client.post("/v1/chat/completions", json=body)
            assert r.status_code == 200, r.text
            assert r.headers["x-cache-bypass-reason"] == "curated_tier:tools"
            assert fake.state.last_body["tools"] == [tool] and fake.state.last_body["tool_choice"] == "none"
            assert fake.state.last_body["parallel_tool_calls"] is False
            named = {"type": "function", "function": {"name": "lookup"}}
            r = await client.post("/v1/chat/completions", json=chat("写诗", tools=[tool], tool_choice=named))
            assert r.status_code == 200 and fake.state.last_body["tool_choice"] == named
            bad = await client.post("/v1/chat/completions", json=chat("写诗", tools=[{"type": "function"}]))
            assert bad.status_code == 422 and "function" in bad.text
            fake.state.mode = "tool_call"  # the LLM chose to call: not relayed, said so
            r = await client.post("/v1/chat/completions", json=chat("查一下天气", tools=[tool]))
            assert r.status_code == 502 and r.json()["error"]["code"] == "llm_tool_call", r.text
            assert 'tool_choice "none"' in r.json()["error"]["message"]
            fake.state.mode = "ok"
            assert (await client.get("/readyz")).status_code == 200  # a tool call is not an LLM failure
