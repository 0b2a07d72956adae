"""Operable and safe under load, faults and bad input: health, metrics, API keys, request ids, limits,
LLM retries and timeouts, degradation when Milvus is down, one owner per Milvus Lite file, and a
streaming fault on the OpenAI-compatible endpoint.

Real embedding model, real Milvus Lite; the LLM is the fault-injecting FakeLLM throughout.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time

import httpx
import pytest

from tests.support.apps import LiveServer, running_app
from tests.support.corpus import ingest_sample, load_corpus
from tests.support.metrics import scrape
from writing.devtools.fake_llm import FakeLLM
from writing.devtools.processes import free_port

# English prompts sit far below the default threshold (top-1 ~0.2 against the Chinese sample corpus)
MISS = "Explain the TCP three-way handshake in three sentences, variant"
KEY1, KEY2 = "k1-ops-test-9f3bX", "k2-ops-test-4QzW7"  # distinctive, so a leak into the logs is findable
ADMIN_KEY = "adm-ops-test-Zq81L"
METRICS_KEY = "met-ops-test-Wn42P"  # Prometheus's: /metrics and nothing else
WRONG_KEY = "wrong-key-ops-test-7Hq"


# -- helpers ------------------------------------------------------------------------------------------
def corpus_hits(*indexes: int) -> list[str]:
    corpus = load_corpus()
    return [corpus[i]["content"] for i in indexes]


def closed_port_url(scheme_path: str = "") -> str:
    return f"http://127.0.0.1:{free_port()}{scheme_path}"


# -- health and readiness --------------------------------------------------------------------------
async def test_healthz_and_readyz_when_everything_is_up(make_settings):
    with FakeLLM() as fake:
        # API keys on: health and readiness stay open to probes all the same
        async with running_app(make_settings(llm_base_url=fake.base_url, api_keys=f"{KEY1},{KEY2}")) as client:
            r = await client.get("/healthz")
            assert r.status_code == 200 and r.json() == {"status": "ok"}
            r = await client.get("/readyz")
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["status"] == "ok" and body["down"] == []
            assert body["checks"] == {"embedding_model": "ok", "vector_store": "ok", "llm": "ok"}


async def test_readyz_names_the_llm_when_it_is_unreachable(make_settings):
    settings = make_settings(llm_base_url=closed_port_url("/v1"), llm_max_retries=0)
    async with running_app(settings) as client:
        assert (await client.get("/healthz")).status_code == 200  # alive, just not ready
        r = await client.get("/readyz")
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["status"] == "unavailable"
        assert body["down"] == ["llm"]
        assert body["checks"]["llm"] != "ok" and body["checks"]["vector_store"] == "ok"


async def test_readyz_names_the_vector_store_when_milvus_is_unreachable(make_settings):
    with FakeLLM() as fake:
        settings = make_settings(
            llm_base_url=fake.base_url, milvus_uri=closed_port_url(), milvus_timeout=1, milvus_retry_interval=0.2
        )
        async with running_app(settings) as client:
            t0 = time.monotonic()
            r = await client.get("/readyz")
            assert time.monotonic() - t0 < 15
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["down"] == ["vector_store"]
            assert body["checks"]["vector_store"] != "ok" and body["checks"]["llm"] == "ok"


# -- metrics -------------------------------------------------------------------------------------------
async def test_metrics_count_requests_outcomes_and_stages(make_settings, embedder):
    hits = corpus_hits(1, 5, 9, 13)
    misses = [f"{MISS} {i}" for i in range(3)]
    with FakeLLM() as fake:
        # the semantic path's stages and counters (the exact tier's: tests/integration/test_exact_tier.py)
        settings = make_settings(llm_base_url=fake.base_url, llm_max_retries=0, exact_tier=False)
        ingest_sample(settings, embedder)
        async with running_app(settings) as client:
            before = await scrape(client)
            assert before.get("writing_requests_total", route="/generate", method="GET", status="200") == 0
            for prompt in hits + misses:
                r = await client.get("/generate", params={"prompt": prompt})
                assert r.status_code == 200, r.text
                assert r.headers["x-writing-source"] == ("milvus" if prompt in hits else "llm"), prompt
            n = len(hits) + len(misses)

            m = await scrape(client)
            assert m.families["writing_requests"].type == "counter"
            assert m.get("writing_requests_total", route="/generate", method="GET", status="200") == n
            assert m.get("writing_retrieval_outcomes_total", outcome="hit_curated") == len(hits)
            assert m.get("writing_retrieval_outcomes_total", outcome="miss") == len(misses)
            assert m.get("writing_retrieval_outcomes_total", outcome="bypass") == 0
            # every request searched a non-empty corpus: one similarity observation each
            assert m.families["writing_top1_similarity"].type == "histogram"
            assert m.get("writing_top1_similarity_count") == n
            assert m.get("writing_top1_similarity_bucket", le="0.75") == len(misses)  # the misses sit low
            assert m.get("writing_top1_similarity_bucket", le="+Inf") == n
            # stage latencies
            assert m.families["writing_stage_seconds"].type == "histogram"
            assert m.get("writing_stage_seconds_count", stage="embed") == n
            assert m.get("writing_stage_seconds_count", stage="search") == n
            assert m.get("writing_stage_seconds_count", stage="llm") == len(misses)
            assert m.get("writing_stage_seconds_count", stage="total") == n  # /metrics itself is not timed
            for stage in ("embed", "search", "llm", "total"):
                assert m.get("writing_stage_seconds_sum", stage=stage) > 0, stage
            # gauges
            assert m.value("writing_embedding_queue_depth") is not None
            assert m.families["writing_embedding_queue_depth"].type == "gauge"
            assert m.get("writing_requests_in_flight") == 0
            assert m.get("writing_llm_errors_total", kind="llm_upstream_error") == 0
            # the batcher's own counters, read at scrape time
            assert m.get("writing_embedding_texts") == n  # distinct prompts, each embedded once
            assert 1 <= m.get("writing_embedding_batches") <= n
            assert m.get("writing_embedding_largest_batch") >= 1
            assert m.get("writing_embedding_rejected") == 0
            assert m.get("writing_embedding_cache", result="miss") == n

            # an injected LLM 500 is counted by kind, and as a 502 request
            fake.state.mode = "error"
            r = await client.get("/generate", params={"prompt": f"{MISS} error"})
            assert r.status_code == 502 and r.json()["error"]["code"] == "llm_upstream_error"
            m = await scrape(client)
            assert m.get("writing_llm_errors_total", kind="llm_upstream_error") == 1
            assert m.get("writing_requests_total", route="/generate", method="GET", status="502") == 1
            assert m.get("writing_requests_total", route="/generate", method="GET", status="200") == n
            assert m.get("writing_retrieval_outcomes_total", outcome="miss") == len(misses) + 1

            # unknown paths share one label value: no unbounded cardinality from scanners
            for i in range(3):
                assert (await client.get(f"/no/such/path/{i}")).status_code == 404
            m = await scrape(client)
            assert m.get("writing_requests_total", route="unmatched", method="GET", status="404") == 3
            assert not any("/no/such/path" in dict(labels).get("route", "") for _, labels in m.samples)


# -- API keys --------------------------------------------------------------------------------------------
OPEN_PATHS = {
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/console",
    "/console/",
}
OPEN_PREFIXES = ("/console/static/", "/docs/assets/")  # files with no data in them; API calls carry the key
EXPECTED_PROTECTED = {
    ("GET", "/generate"),
    ("POST", "/v1/generate"),
    ("GET", "/chat"),
    ("POST", "/v1/chat/completions"),
    ("GET", "/v1/models"),
    ("GET", "/v1/corpus"),
    ("POST", "/v1/corpus"),
    ("DELETE", "/v1/corpus"),
    ("GET", "/v1/corpus/{passage_id}"),
    ("DELETE", "/v1/corpus/{passage_id}"),
    ("GET", "/v1/corpus/stats"),
    ("POST", "/v1/search"),
    ("GET", "/metrics"),
    ("GET", "/v1/corpus/export"),
    ("GET", "/v1/answers"),
    ("DELETE", "/v1/answers"),
    ("GET", "/v1/answers/{answer_id}"),
    ("DELETE", "/v1/answers/{answer_id}"),
    ("POST", "/v1/answers/{answer_id}/promote"),
    ("POST", "/v1/feedback"),
    ("GET", "/v1/feedback"),
    ("POST", "/v1/feedback/{report_id}/confirm"),
    ("POST", "/v1/feedback/{report_id}/dismiss"),
    ("GET", "/v1/feedback/export"),
    ("GET", "/v1/audit"),
    ("POST", "/v1/explain"),
    ("PUT", "/v1/corpus/{passage_id}"),
    ("POST", "/v1/corpus/import"),
    ("POST", "/v1/feedback/{report_id}/resolve"),
    ("GET", "/v1/labels"),
    ("DELETE", "/v1/labels/{label_id}"),
    ("GET", "/v1/settings/threshold"),
    ("PUT", "/v1/settings/threshold"),
    ("DELETE", "/v1/settings/threshold"),
    ("GET", "/v1/stats/history"),
    ("POST", "/v1/calibration/runs"),
}
# what a caller key may use; everything else protected is for admin keys only
CALLER_ROUTES = {
    ("GET", "/generate"),
    ("POST", "/v1/generate"),
    ("GET", "/chat"),
    ("POST", "/v1/chat/completions"),
    ("GET", "/v1/models"),
    ("POST", "/v1/search"),
    ("POST", "/v1/feedback"),
}
# a well-formed request per route, so that "not 401" means the route really served the caller
VALID_INPUT = {
    ("GET", "/generate"): {"params": {"prompt": f"{MISS} auth"}},
    ("GET", "/chat"): {"params": {"prompt": f"{MISS} auth"}},
    ("POST", "/v1/generate"): {"json": {"prompt": f"{MISS} auth"}},
    ("POST", "/v1/chat/completions"): {"json": {"messages": [{"role": "user", "content": f"{MISS} auth"}]}},
    ("POST", "/v1/corpus"): {"json": {"content": "一段用于鉴权测试的文字。", "biz_id": "auth-test"}},
    ("DELETE", "/v1/corpus"): {"params": {"biz_id": "auth-test"}},
    ("POST", "/v1/search"): {"json": {"prompt": "秋天"}},
}


def app_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every HTTP route, walking included routers (FastAPI keeps them lazily as
    ``_IncludedRouter`` entries in ``app.routes``) and mounts; cross-checked against the OpenAPI schema."""
    found: list[tuple[str, str]] = []

    def walk(routes, prefix: str) -> None:
        for route in routes:
            if getattr(route, "original_router", None) is not None:  # an included router
                context = getattr(route, "include_context", None)
                walk(route.original_router.routes, prefix + (getattr(context, "prefix", "") or ""))
            elif getattr(route, "methods", None):
                path = re.sub(r"{(\w+):\w+}", r"{\1}", prefix + route.path)  # {id:int} is {id} in the schema
                found.extend((m, path) for m in sorted(route.methods) if m != "HEAD")
            elif getattr(route, "routes", None) is not None:  # a mount
                walk(route.routes, prefix + getattr(route, "path", ""))

    walk(app.routes, "")
    in_schema = {(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops}
    assert in_schema <= set(found), f"routes the walk missed: {sorted(in_schema - set(found))}"
    return sorted(set(found))


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


async def test_every_route_but_health_and_schema_requires_a_key_and_keys_are_never_logged(make_settings, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, every level, for the app's whole life
    with FakeLLM() as fake:
        settings = make_settings(
            llm_base_url=fake.base_url,
            api_keys=f"{KEY1},{KEY2}",
            admin_api_keys=ADMIN_KEY,
            metrics_api_keys=METRICS_KEY,
            answer_cache=True,
        )
        async with running_app(settings) as client:
            routes = app_routes(client.app)
            assert set(routes) >= EXPECTED_PROTECTED, sorted(EXPECTED_PROTECTED - set(routes))
            protected = [(m, p) for m, p in routes if not is_open(p)]
            opened = [(m, p) for m, p in routes if is_open(p)]
            assert {p for _, p in opened} >= {"/healthz", "/readyz", "/openapi.json"}

            for method, path in protected:
                url = concrete(path)
                for headers in (
                    {},
                    {"Authorization": f"Bearer {WRONG_KEY}"},
                    {"X-API-Key": WRONG_KEY},
                    {"Authorization": "Bearer "},
                    {"Authorization": KEY1},
                ):
                    r = await client.request(method, url, headers=headers, **VALID_INPUT.get((method, path), {}))
                    assert r.status_code == 401, (method, path, headers, r.status_code, r.text)
                    assert r.json()["error"]["code"] == "unauthorized"
                    assert r.json()["error"]["message"]
                    assert r.headers["www-authenticate"].lower().startswith("bearer")
                    assert KEY1 not in r.text and KEY2 not in r.text
                for headers in ({"Authorization": f"Bearer {KEY2}"}, {"X-API-Key": KEY1}):
                    r = await client.request(method, url, headers=headers, **VALID_INPUT.get((method, path), {}))
                    if (method, path) in CALLER_ROUTES:
                        assert r.status_code not in (401, 403), (method, path, headers, r.text)
                        assert r.status_code < 500, (method, path, headers, r.status_code, r.text)
                    else:  # a caller key on an admin route: 403 naming the setting that grants it
                        assert r.status_code == 403, (method, path, headers, r.status_code, r.text)
                        assert r.json()["error"]["code"] == "forbidden" and "ADMIN_API_KEYS" in r.text
                for headers in ({"Authorization": f"Bearer {METRICS_KEY}"}, {"X-API-Key": METRICS_KEY}):
                    r = await client.request(method, url, headers=headers, **VALID_INPUT.get((method, path), {}))
                    if path == "/metrics":  # Prometheus's key reads the metrics, and opens nothing else
                        assert r.status_code == 200 and "writing_requests_total" in r.text, (headers, r.text)
                    else:
                        assert r.status_code == 403, (method, path, headers, r.status_code, r.text)
                        assert r.json()["error"]["code"] == "forbidden" and "METRICS_API_KEYS" in r.text
                r = await client.request(
                    method, url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, **VALID_INPUT.get((method, path), {})
                )
                assert r.status_code not in (401, 403), (method, path, r.text)  # admins may use every route
                assert r.status_code < 500, (method, path, r.status_code, r.text)

            for method, path in opened:
                name = "docs-init.js" if path.startswith("/docs/") else "console.js"
                for headers in ({}, {"X-API-Key": METRICS_KEY}):
                    r = await client.request(method, path.replace("{name}", name), headers=headers)
                    assert r.status_code == 200, (method, path, headers, r.status_code, r.text)

            r = await client.post("/metrics", headers={"X-API-Key": METRICS_KEY}, content=b"x" * 1000)
            assert r.status_code == 403 and "METRICS_API_KEYS" in r.text  # not 405: refused before the body

            m = await scrape(client, headers={"X-API-Key": METRICS_KEY})
            assert m.get("writing_rejected_total", reason="auth") == 5 * len(protected)  # five wrong keys per route
            # the metrics key twice on every route but GET /metrics, and its POST to /metrics
            assert m.get("writing_rejected_total", reason="metrics_only") == 2 * (len(protected) - 1) + 1

    records = caplog.records
    assert records, "nothing was logged: the check below would prove nothing"
    assert any("status=401" in rec.getMessage() for rec in records)  # the access log saw the refusals
    for rec in records:
        text = rec.getMessage() + repr(rec.args) + (rec.exc_text or "")
        for secret in (KEY1, KEY2, WRONG_KEY, ADMIN_KEY, METRICS_KEY):
            assert secret not in text, (rec.name, text[:300])
    assert KEY1 not in caplog.text and KEY2 not in caplog.text and WRONG_KEY not in caplog.text


# -- request ids -------------------------------------------------------------------------------------------
async def test_request_id_is_echoed_generated_or_replaced(make_settings):
    with FakeLLM() as fake:
        async with running_app(make_settings(llm_base_url=fake.base_url)) as client:
            given = "req-2024.01:abc_DEF-9"
            r = await client.get("/healthz", headers={"X-Request-ID": given})
            assert r.headers["x-request-id"] == given

            ids = set()
            for _ in range(2):
                r = await client.get("/healthz")
                rid = r.headers["x-request-id"]
                assert re.fullmatch(r"[A-Za-z0-9._:-]{8,128}", rid), rid
                ids.add(rid)
            assert len(ids) == 2  # generated per request

            for insane in ("x" * 300, "has spaces in it", "bad\tid", "<script>", "a/b", "é-unicode"):
                r = await client.get("/healthz", headers={"X-Request-ID": insane.encode("utf-8")})
                rid = r.headers["x-request-id"]
                assert rid != insane and len(rid) <= 128 and re.fullmatch(r"[A-Za-z0-9._:-]+", rid), (insane, rid)

            # also on errors produced by the middleware, the handlers and the router
            r = await client.get("/generate", headers={"X-Request-ID": "err-422"})
            assert r.status_code == 422 and r.headers["x-request-id"] == "err-422"
            r = await client.get("/nowhere", headers={"X-Request-ID": "err-404"})
            assert r.status_code == 404 and r.headers["x-request-id"] == "err-404"
            r = await client.post(
                "/v1/generate", content=b"{" + b" " * 300_000 + b"}", headers={"X-Request-ID": "err-413"}
            )
            assert r.status_code == 413 and r.headers["x-request-id"] == "err-413"


# -- limits -------------------------------------------------------------------------------------------------
async def test_body_larger_than_the_limit_is_413_json(make_settings):
    with FakeLLM() as fake:
        async with running_app(make_settings(llm_base_url=fake.base_url, max_body_bytes=2048)) as client:
            big = {"prompt": "x" * 3000}
            for method, url in (("POST", "/v1/generate"), ("POST", "/v1/chat/completions"), ("POST", "/v1/corpus")):
                r = await client.request(method, url, json=big)
                assert r.status_code == 413, (url, r.text)
                assert r.headers["content-type"].startswith("application/json")
                assert r.json()["error"]["code"] == "body_too_large"
                assert "2048" in r.json()["error"]["message"]

            # no Content-Length (chunked): counted while it is read
            async def chunks(n: int, size: int = 512):
                for _ in range(n):
                    yield b" " * size

            r = await client.post("/v1/generate", content=chunks(8), headers={"Content-Type": "application/json"})
            assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

            # a small chunked body is replayed to the app intact
            async def small():
                yield b'{"prompt": "'
                yield f"{MISS} chunked".encode()
                yield b'"}'

            r = await client.post("/v1/generate", content=small(), headers={"Content-Type": "application/json"})
            assert r.status_code == 200, r.text
            assert r.json()["source"] == "llm"
            assert fake.state.calls == 1

            m = await scrape(client)
            assert m.get("writing_rejected_total", reason="body_too_large") == 4
            assert m.get("writing_requests_in_flight") == 0


async def test_requests_beyond_max_in_flight_get_503_with_retry_after(make_settings):
    with FakeLLM() as fake:
        fake.state.delay = 1.0
        async with running_app(
            make_settings(llm_base_url=fake.base_url, max_in_flight=2, max_in_flight_share=1)
        ) as client:
            rs = await asyncio.gather(
                *(client.get("/generate", params={"prompt": f"{MISS} flight {i}"}) for i in range(6))
            )
            statuses = sorted(r.status_code for r in rs)
            assert 500 not in statuses and set(statuses) <= {200, 503}, statuses
            assert statuses.count(200) >= 1 and statuses.count(503) >= 1, statuses
            assert statuses.count(200) <= 2, statuses
            for r in rs:
                if r.status_code == 503:
                    assert r.headers["retry-after"].isdigit()
                    assert r.json()["error"]["code"] == "overloaded"
                else:
                    assert r.json() == fake.state.text

            # health, readiness and metrics are never refused, even while saturated
            slow = [
                asyncio.create_task(client.get("/generate", params={"prompt": f"{MISS} busy {i}"})) for i in range(2)
            ]
            await asyncio.sleep(0.3)
            for path in ("/healthz", "/readyz", "/metrics"):
                assert (await client.get(path)).status_code == 200, path
            assert [r.status_code for r in await asyncio.gather(*slow)] == [200, 200]

            m = await scrape(client)
            assert m.get("writing_rejected_total", reason="in_flight") == statuses.count(503)
            assert m.get("writing_requests_in_flight") == 0  # nothing leaked


async def test_prompt_longer_than_max_prompt_chars_is_422(make_settings):
    with FakeLLM() as fake:
        async with running_app(make_settings(llm_base_url=fake.base_url, max_prompt_chars=50)) as client:
            long = "长" * 51
            for r in (
                await client.get("/generate", params={"prompt": long}),
                await client.get("/chat", params={"prompt": long}),
                await client.post("/v1/generate", json={"prompt": long}),
                await client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": long}]}),
                await client.post(
                    "/v1/chat/completions", json={"stream": True, "messages": [{"role": "user", "content": long}]}
                ),
                await client.post("/v1/search", json={"prompt": long}),
            ):
                assert r.status_code == 422, (r.request.url, r.text)
                assert r.json()["error"]["code"] == "invalid_request"
                assert "50" in r.json()["error"]["message"]
            r = await client.get("/generate", params={"prompt": "长" * 50})
            assert r.status_code == 200, r.text
        assert fake.state.calls == 1


# -- the LLM: retries and deadline ---------------------------------------------------------------------
async def test_llm_errors_are_retried_then_502_and_hits_are_still_served(make_settings, corpus_db):
    with FakeLLM() as fake:
        fake.state.mode = "error"
        settings = make_settings(milvus_lite_path=corpus_db, llm_base_url=fake.base_url, llm_max_retries=2)
        async with running_app(settings) as client:
            r = await client.get("/generate", params={"prompt": f"{MISS} retry"})
            assert r.status_code == 502, r.text
            assert r.json()["error"]["code"] == "llm_upstream_error"
            assert "injected" not in r.text  # upstream text is logged, not leaked
            assert fake.state.calls == 3  # the first try and two retries
            passage = load_corpus()[0]["content"]
            r = await client.get("/generate", params={"prompt": passage})
            assert r.status_code == 200 and r.json() == passage


async def test_llm_hang_is_504_within_the_timeout(make_settings):
    with FakeLLM() as fake:
        fake.state.mode = "hang"
        async with running_app(make_settings(llm_base_url=fake.base_url, llm_timeout=2, llm_max_retries=2)) as client:
            for method, url, kwargs in (
                ("GET", "/generate", {"params": {"prompt": f"{MISS} hang"}}),
                ("POST", "/v1/chat/completions", {"json": {"messages": [{"role": "user", "content": f"{MISS} h"}]}}),
            ):
                t0 = time.monotonic()
                r = await client.request(method, url, **kwargs)
                elapsed = time.monotonic() - t0
                assert r.status_code == 504, r.text
                assert r.json()["error"]["code"] == "llm_timeout"
                assert 1.5 < elapsed < 2 + 3, elapsed  # generous: the machine is shared
        fake.server.force_exit = True  # its handlers sleep for an hour: do not wait for them on the way out


# -- degradation when Milvus is down -------------------------------------------------------------------
async def test_vector_store_down_with_fail_policy_is_503(make_settings):
    with FakeLLM() as fake:
        settings = make_settings(
            llm_base_url=fake.base_url,
            milvus_uri=closed_port_url(),
            milvus_timeout=1,
            milvus_retry_interval=0.2,
            on_vector_store_error="fail",
        )
        async with running_app(settings) as client:
            for method, url, kwargs in (
                ("GET", "/generate", {"params": {"prompt": "写一段描写秋天的文字"}}),
                ("POST", "/v1/generate", {"json": {"prompt": "写一段描写秋天的文字"}}),
                ("POST", "/v1/chat/completions", {"json": {"messages": [{"role": "user", "content": "写秋天"}]}}),
            ):
                r = await client.request(method, url, **kwargs)
                assert r.status_code == 503, (url, r.text)
                assert r.json()["error"]["code"] == "vector_store_unavailable"
                assert r.headers["retry-after"].isdigit()
        assert fake.state.calls == 0


async def test_vector_store_down_by_default_answers_from_the_llm(make_settings):
    with FakeLLM() as fake:
        settings = make_settings(
            llm_base_url=fake.base_url, milvus_uri=closed_port_url(), milvus_timeout=1, milvus_retry_interval=0.2
        )
        async with running_app(settings) as client:
            r = await client.get("/generate", params={"prompt": "写一段描写秋天的文字"})
            assert r.status_code == 200, r.text
            assert r.headers["x-writing-source"] == "llm"
            assert "x-similarity" not in r.headers  # no search ran
            assert r.json() == fake.state.text
            r = await client.post("/v1/generate", json={"prompt": "写一段描写秋天的文字"})
            assert r.status_code == 200 and r.json()["source"] == "llm"
            # the corpus endpoints need the store itself: a clean 503, not a 500
            for method, url, kwargs in (
                ("GET", "/v1/corpus/stats", {}),
                ("GET", "/v1/corpus", {}),
                ("POST", "/v1/search", {"json": {"prompt": "秋天"}}),
            ):
                r = await client.request(method, url, **kwargs)
                assert r.status_code == 503, (url, r.status_code, r.text)
                assert r.json()["error"]["code"] == "vector_store_unavailable"


async def test_a_second_app_on_the_same_lite_file_fails_start_up(make_settings):
    from writing.errors import StoreLocked

    with FakeLLM() as fake:
        settings = make_settings(llm_base_url=fake.base_url)
        async with running_app(settings) as first:
            with pytest.raises(StoreLocked) as info:
                async with running_app(settings):
                    pass
            message = str(info.value)
            assert settings.milvus_lite_path in message or "milvus.db" in message
            assert "in use by another process" in message and "MILVUS_URI" in message
            # the first app is unaffected by the failed start beside it
            r = await first.get("/v1/corpus/stats")
            assert r.status_code == 200, r.text
            assert (await first.get("/readyz")).status_code == 200
        # once the owner has stopped, the file can be opened again
        async with running_app(settings) as again:
            assert (await again.get("/v1/corpus/stats")).status_code == 200


# -- OpenAI streaming: the LLM drops the connection mid-stream -----------------------------------------------
async def test_openai_stream_drop_ends_with_an_error_event_then_done(make_settings):
    with FakeLLM() as fake:
        fake.state.mode = "drop"
        with LiveServer(make_settings(llm_base_url=fake.base_url)) as live:
            async with httpx.AsyncClient(timeout=30) as client:
                body = {"stream": True, "messages": [{"role": "user", "content": f"{MISS} drop"}]}
                async with client.stream("POST", f"{live.url}/v1/chat/completions", json=body) as r:
                    assert r.status_code == 200
                    assert r.headers["content-type"].startswith("text/event-stream")
                    assert r.headers["x-writing-source"] == "llm"
                    lines = [line async for line in r.aiter_lines()]
                m = await scrape(client, live.url)
    events = [line[len("data: ") :] for line in lines if line.startswith("data: ")]
    assert events[-1] == "[DONE]", events
    last = json.loads(events[-2])
    assert set(last) == {"error"}, last
    assert last["error"]["code"] and last["error"]["message"]
    assert "injected" not in events[-2]  # upstream details are logged, not sent
    chunks = [json.loads(e) for e in events[:-2]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text and fake.state.text.startswith(text)  # what came before the drop was delivered
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)  # no false "stop"
    assert sum(v for (name, _), v in m.samples.items() if name == "writing_llm_errors_total") == 1


# -- the corpus API and Milvus's own limits (found by schemathesis) -------------------------------------
async def test_corpus_listing_past_the_milvus_window_is_not_a_500(make_settings):
    with FakeLLM() as fake, LiveServer(make_settings(llm_base_url=fake.base_url, log_level="WARNING")) as live:
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
            for params in ({"offset": 16384, "limit": 1}, {"offset": 100_000}):
                r = await client.get("/v1/corpus", params=params)
                assert r.status_code == 422, (params, r.status_code, r.text)


async def test_biz_id_with_a_line_break_is_not_a_500(make_settings):
    with FakeLLM() as fake, LiveServer(make_settings(llm_base_url=fake.base_url, log_level="WARNING")) as live:
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
            for method in ("GET", "DELETE"):
                for biz_id in ("a\nb", "a\rb"):
                    r = await client.request(method, "/v1/corpus", params={"biz_id": biz_id})
                    assert r.status_code == 422, (method, repr(biz_id), r.status_code, r.text)
            r = await client.post("/v1/corpus", json={"content": "好", "biz_id": "a\nb"})
            assert r.status_code == 422 and "control characters" in r.json()["error"]["message"]


async def test_a_store_that_dies_gives_503_on_the_corpus_api_then_recovers(make_settings):
    """A connected store that starts failing: 503 (not 500) and a reconnect on a later call."""
    with FakeLLM() as fake:
        async with running_app(make_settings(llm_base_url=fake.base_url, milvus_retry_interval=0.1)) as client:
            assert (await client.get("/v1/corpus/stats")).status_code == 200
            client.app.state.stores.corpus.connection.close()  # the connection goes away under the service
            r = await client.get("/v1/corpus/stats")
            assert r.status_code == 503 and r.json()["error"]["code"] == "vector_store_unavailable"
            assert r.headers["retry-after"]
            m = await scrape(client)
            assert m.get("writing_vector_store_errors_total") == 1  # marked down, for reconnection
            await asyncio.sleep(0.2)
            r = await client.get("/v1/corpus/stats")  # reconnects (a fresh client) and answers
            assert r.status_code == 200, r.text


async def test_an_unexpected_error_is_a_json_500_with_the_request_id(make_settings, monkeypatch):
    with FakeLLM() as fake, LiveServer(make_settings(llm_base_url=fake.base_url, log_level="WARNING")) as live:

        async def boom(*args, **kwargs):
            raise RuntimeError("injected bug")

        monkeypatch.setattr(live.app.state.core.answering, "answer", boom)
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
            r = await client.get("/generate", params={"prompt": "写一段话"}, headers={"X-Request-ID": "req-42"})
            assert r.status_code == 500
            assert r.json() == {
                "error": {"message": "internal error", "type": "server_error", "code": "internal_error", "param": None}
            }
            assert r.headers["x-request-id"] == "req-42"
            assert "injected" not in r.text
            assert (await client.get("/healthz")).status_code == 200  # the connection survived


async def test_without_a_key_nothing_else_is_revealed(make_settings):
    with FakeLLM() as fake:
        async with running_app(make_settings(llm_base_url=fake.base_url, api_keys="sekrit-one")) as client:
            r = await client.post("/v1/generate", content=b"{not json", headers={"content-type": "application/json"})
            assert r.status_code == 401
            r = await client.get("/no/such/route")
            assert r.status_code == 401


async def test_chunked_bodies_count_towards_the_in_flight_limit(make_settings):
    with FakeLLM() as fake:
        fake.state.delay = 1.0
        with LiveServer(
            make_settings(llm_base_url=fake.base_url, max_in_flight=2, max_in_flight_share=1, log_level="WARNING")
        ) as live:

            async def body(i):
                await asyncio.sleep(0.05)
                yield json.dumps({"prompt": f"unrelated english prompt number {i}"}).encode()

            async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
                rs = await asyncio.gather(
                    *(
                        client.post("/v1/generate", content=body(i), headers={"content-type": "application/json"})
                        for i in range(6)
                    )
                )
        codes = sorted(r.status_code for r in rs)
        assert codes.count(503) >= 3 and 500 not in codes, codes
        assert fake.state.calls <= 3
