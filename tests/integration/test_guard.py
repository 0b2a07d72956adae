"""The second check through HTTP: X-Cache-Guard on answers, the verdict per candidate in /v1/search."""

from __future__ import annotations

from tests.support.apps import running_app
from tests.support.metrics import scrape
from writing.adapters.segmenter import RJiebaTagger
from writing.core.guard import lexicon
from writing.devtools.fake_llm import FakeLLM

PARADE_2019 = "2019年国庆阅兵，新中国成立七十周年，受阅方阵整齐地走过长安街，观礼台上掌声雷动。"


async def test_a_near_miss_is_rejected_and_an_exact_prompt_passes(make_settings):
    with FakeLLM() as fake:
        settings = make_settings(llm_base_url=fake.base_url, similarity_threshold_min=0.3)
        async with running_app(settings) as client:
            guard = client.app.state.core.judge.guard  # wiring injects rjieba; start-up warms it
            assert isinstance(guard.tagger, RJiebaTagger) and guard.tagger.load_seconds is not None
            assert lexicon.loaded()
            assert (
                await client.post("/v1/corpus", json={"content": PARADE_2019, "biz_id": "parade-2019"})
            ).status_code == 200
            near = "写一篇2009年国庆阅兵的观后感"
            r = await client.post("/v1/generate", json={"prompt": near, "threshold": 0.3})
            assert r.status_code == 200, r.text
            assert r.headers["x-cache"] == "MISS" and r.headers["x-cache-guard"] == "rejected:number"
            assert r.json()["source"] == "llm"

            r = await client.post("/v1/generate", json={"prompt": PARADE_2019})
            assert r.headers["x-cache"] == "HIT" and r.headers["x-cache-guard"] == "pass"

            found = (await client.post("/v1/search", json={"prompt": near, "top_k": 1})).json()["matches"]
            assert found[0]["biz_id"] == "parade-2019" and found[0]["guard"] == "rejected:number"
            m = await scrape(client)
            assert m.get("writing_guard_verdicts_total", tier="curated", verdict="reject", reason="number") == 1
            assert m.get("writing_guard_verdicts_total", tier="curated", verdict="pass", reason="-") == 1


async def test_shadow_mode_serves_and_says_what_it_would_reject(make_settings):
    with FakeLLM() as fake:
        settings = make_settings(llm_base_url=fake.base_url, similarity_threshold_min=0.3, hit_guard="shadow")
        async with running_app(settings) as client:
            await client.post("/v1/corpus", json={"content": PARADE_2019, "biz_id": "parade-2019"})
            r = await client.post("/v1/generate", json={"prompt": "写一篇2009年国庆阅兵的观后感", "threshold": 0.3})
            assert r.headers["x-cache"] == "HIT" and r.headers["x-cache-guard"] == "would-reject:number"
            assert fake.state.calls == 0
