"""The exact tier in the real app: real model, Milvus Lite, the FakeLLM. A repeated prompt is served with
no batcher call and no vector search in under 1 ms of Server-Timing ``total`` (p50), survives a restart,
and stops at a deletion, a feedback block or ``Cache-Control: no-cache``."""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx
import pytest

from tests.support.apps import running_app
from tests.support.corpus import load_corpus
from tests.support.metrics import scrape
from writing.devtools.fake_llm import FakeLLM

PROMPT = "请写一段介绍量子纠缠的科普短文"
CALLER, OTHER, ADMIN = "exact-caller-1", "exact-caller-2", "exact-admin-1"
KEYS = {"api_keys": f"{CALLER}:acme,{OTHER}:globex", "admin_api_keys": ADMIN}


def as_(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


@pytest.fixture
def fake():
    with FakeLLM() as f:
        yield f


def total_ms(r: httpx.Response) -> float:
    parts = dict(p.strip().split(";dur=") for p in r.headers["server-timing"].split(","))
    return float(parts["total"])


def costs(client) -> tuple:
    """What a repeat must not touch: the batcher's counters and each tier's searches."""
    core, batcher = client.app.state.core, client.app.state.batcher
    s = batcher.stats
    return (s.cache_hits, s.cache_misses, s.embedded, s.batches, core.curated.search.stats.searches) + (
        (core.answers.search.stats.searches,) if core.answers is not None else ()
    )


async def filled(client, timeout: float = 30.0) -> None:
    """Wait for the exact tier's index to be loaded from the stores (a background job at start-up)."""
    sync = client.app.state.core.exact_sync
    deadline = time.monotonic() + timeout
    while sync.runs == 0:
        assert time.monotonic() < deadline, "the exact index was not filled"
        await asyncio.sleep(0.05)


async def ask(client, prompt: str, key: str | None = None, **headers: str) -> httpx.Response:
    r = await client.get("/generate", params={"prompt": prompt}, headers=as_(key, **headers) if key else headers)
    assert r.status_code == 200, r.text
    return r


async def test_a_repeat_touches_neither_the_batcher_nor_a_search_and_takes_under_a_millisecond(make_settings, fake):
    settings = make_settings(llm_base_url=fake.base_url, answer_cache=True, log_level="WARNING")
    passage = load_corpus()[3]
    async with running_app(settings) as client:
        await filled(client)
        await client.post("/v1/corpus", json=passage)
        first = await ask(client, PROMPT)
        assert first.headers["x-cache"] == "MISS"
        await asyncio.sleep(0.2)  # a whole answer is written back before the response; give the loop a turn
        before = costs(client)
        totals = {"generated": [], "curated": []}
        for _ in range(50):
            for tier, prompt in (("generated", PROMPT), ("curated", passage["content"])):
                r = await ask(client, prompt)
                assert (r.headers["x-cache"], r.headers["x-match-source"], r.headers["x-match-kind"]) == (
                    "HIT",
                    tier,
                    "exact",
                )
                assert "embed" not in r.headers["server-timing"] and r.headers["x-similarity"] == "1.0000"
                totals[tier].append(total_ms(r))
        assert costs(client) == before
        for tier, values in totals.items():
            assert statistics.median(values) < 1.0, (tier, sorted(values)[:5], statistics.median(values))
        m = await scrape(client)
        assert m.get("writing_exact_hits_total", tier="generated") == 50
        assert m.get("writing_exact_hits_total", tier="curated") == 50
        assert m.get("writing_exact_index_entries", kind="passages") == 1
        assert m.get("writing_exact_index_entries", kind="answers") == 1
        # a paraphrase is no exact hit: the semantic tiers run as before
        other = await ask(client, PROMPT + "，面向中学生")
        assert other.headers.get("x-match-kind") != "exact" and costs(client) != before


async def test_the_index_is_refilled_after_a_restart(make_settings, fake):
    settings = make_settings(llm_base_url=fake.base_url, answer_cache=True)
    async with running_app(settings) as client:
        await filled(client)
        await ask(client, PROMPT)
        r = await client.post("/v1/corpus", json=load_corpus()[0])
        passage_id = r.json()["ids"][0]
    async with running_app(settings) as client:  # the same Milvus Lite file: a restart
        await filled(client)
        before = costs(client)
        hit = await ask(client, PROMPT)
        assert (hit.headers["x-match-source"], hit.headers["x-match-kind"]) == ("generated", "exact")
        hit = await ask(client, load_corpus()[0]["content"])
        assert (hit.headers["x-match-id"], hit.headers["x-match-kind"]) == (str(passage_id), "exact")
        assert costs(client) == before


async def test_deletions_stop_exact_hits(make_settings, fake):
    settings = make_settings(llm_base_url=fake.base_url, answer_cache=True, **KEYS)
    async with running_app(settings) as client:
        await filled(client)
        await ask(client, PROMPT, CALLER)
        hit = await ask(client, PROMPT, CALLER)
        assert hit.headers["x-match-kind"] == "exact"
        r = await client.delete(f"/v1/answers/{hit.headers['x-match-id']}", headers=as_(ADMIN))
        assert r.json() == {"deleted": 1}
        again = await ask(client, PROMPT, CALLER)
        assert again.headers["x-cache"] == "MISS"  # the LLM answers (and its answer is stored anew)

        passage = load_corpus()[2]
        passage_id = (await client.post("/v1/corpus", json=passage, headers=as_(ADMIN))).json()["ids"][0]
        assert (await ask(client, passage["content"], CALLER)).headers["x-match-kind"] == "exact"
        assert (await client.delete(f"/v1/corpus/{passage_id}", headers=as_(ADMIN))).json() == {"deleted": 1}
        assert (await ask(client, passage["content"], CALLER)).headers.get("x-match-id") != str(passage_id)

        # the upkeep's purge removes expired answers from the index too
        state = client.app.state
        state.core.answers.store.ttl = 0.001
        await asyncio.sleep(0.01)
        assert (await state.core.answers.maintain(state.metrics))["purged"] >= 1
        assert state.core.exact.index.sizes()["answers"] == 0


async def test_a_feedback_block_and_no_cache_stop_an_exact_hit(make_settings, fake):
    passage = load_corpus()[5]
    async with running_app(make_settings(llm_base_url=fake.base_url, answer_cache=True, **KEYS)) as client:
        await filled(client)
        passage_id = (await client.post("/v1/corpus", json=passage, headers=as_(ADMIN))).json()["ids"][0]
        hit = await ask(client, passage["content"], CALLER)
        assert (hit.headers["x-match-kind"], hit.headers["x-match-id"]) == ("exact", str(passage_id))
        body = {"request_id": hit.headers["x-request-id"], "token": hit.headers["x-feedback-token"], "verdict": "wrong"}
        ack = await client.post("/v1/feedback", json=body, headers=as_(CALLER))
        assert ack.json()["blocked_for"] == "tenant"
        after = await ask(client, passage["content"], CALLER)
        assert after.headers.get("x-match-id") != str(passage_id) and after.headers["x-cache"] == "MISS"
        other = await ask(client, passage["content"], OTHER)  # another tenant: still served, exactly
        assert (other.headers["x-match-kind"], other.headers["x-match-id"]) == ("exact", str(passage_id))

        bypass = await ask(client, passage["content"], OTHER, **{"Cache-Control": "no-cache"})
        assert (bypass.headers["x-cache"], bypass.headers["x-cache-bypass-reason"]) == ("BYPASS", "no_cache")
        assert "x-match-kind" not in bypass.headers


async def test_explain_shows_the_exact_lookup_first(make_settings, fake):
    passage = load_corpus()[1]
    async with running_app(make_settings(llm_base_url=fake.base_url, answer_cache=True)) as client:
        await filled(client)
        passage_id = (await client.post("/v1/corpus", json=passage)).json()["ids"][0]
        body = (await client.post("/v1/explain", json={"prompt": passage["content"]})).json()
        assert [t["tier"] for t in body["tiers"]] == ["exact", "curated", "generated"]
        exact = body["tiers"][0]
        assert exact["candidates"][0]["id"] == passage_id and exact["candidates"][0]["tier"] == "curated"
        assert exact["candidates"][0]["chosen"] and exact["candidates"][0]["similarity"] == 1.0
        assert body["served"]["kind"] == "exact" and body["served"]["tier"] == "curated"
        assert [t["skipped"] for t in body["tiers"][1:]] == ["not_reached", "not_reached"]
        assert "embed" not in body["timings_ms"]


async def test_with_the_exact_tier_off_a_repeat_is_a_semantic_hit(make_settings, fake):
    async with running_app(make_settings(llm_base_url=fake.base_url, answer_cache=True, exact_tier=False)) as client:
        await ask(client, PROMPT)
        hit = await ask(client, PROMPT)
        assert (hit.headers["x-match-source"], hit.headers["x-match-kind"]) == ("generated", "semantic")
        assert "embed" in hit.headers["server-timing"] and client.app.state.core.exact is None


async def test_answers_of_the_v2_collection_are_migrated_and_served_exactly(make_settings, fake, monkeypatch, capsys):
    from milvus_lite.server_manager import server_manager_instance

    from writing.adapters.milvus.answer_rows import now_ms
    from writing.adapters.milvus.answers_migration import LEGACY_SPEC
    from writing.adapters.milvus.collection import MilvusCollection, MilvusConnection
    from writing.cli import ingest
    from writing.core.context import cache_context
    from writing.core.models import SamplingParams

    settings = make_settings(llm_base_url=fake.base_url, answer_cache=True)
    path = settings.milvus_lite_path
    conn = MilvusConnection(uri="", lite_path=path, token="", db_name="", timeout=30)
    legacy = MilvusCollection(conn, "writing_answers_v2", LEGACY_SPEC)  # as 1.3 stored them
    legacy.ensure(384)
    context = cache_context([{"role": "user", "content": PROMPT}], SamplingParams(max_tokens=24)).fingerprint
    row = {"prompt": PROMPT, "content_full": "迁移来的回答。", "model": "fake-llm", "tenant": "default"}
    row |= {"context": context, "stops": "[]", "completion_tokens": 8, "created_at": now_ms(), "hits": 0}
    legacy.insert([{"id": 42, "prompt_vector": [1.0] + [0.0] * 383, **row, "last_hit": 0}])
    conn.close()
    server_manager_instance.release_server(path)

    monkeypatch.setenv("MILVUS_LITE_PATH", path)
    monkeypatch.setenv("EMBEDDING_MODEL", "/nonexistent/model")  # no model needed
    assert ingest.main(["--migrate-answers"]) == 0
    assert "copied 1, already there 0" in capsys.readouterr().out
    assert ingest.main(["--migrate-answers"]) == 0  # again: nothing to copy
    assert "copied 0, already there 1" in capsys.readouterr().out
    async with running_app(settings) as client:
        await filled(client)
        hit = await ask(client, PROMPT)
        assert (hit.headers["x-match-id"], hit.headers["x-match-kind"], hit.json()) == ("42", "exact", "迁移来的回答。")
