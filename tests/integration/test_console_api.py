"""The admin routes behind the console (issue #12), end to end: real model, Milvus Lite, the FakeLLM
where an answer is needed. Explain, run-time thresholds (shared, persistent, audited), passage edit,
JSONL import, text search, feedback resolution, labels, stats history, calibration runs, the console's
static files and their headers."""

from __future__ import annotations

import asyncio
import glob
import json
import posixpath
import re
import tomllib
from pathlib import Path

import httpx
import pytest

from tests.support.apps import running_app
from tests.support.corpus import ROOT, load_corpus
from tests.support.metrics import scrape
from writing.api.routes.console import STATIC, render_page, scan
from writing.devtools.fake_llm import FakeLLM

ADMIN, CALLER = "admin-console-1", "caller-console-1"
KEYS = {"api_keys": CALLER, "admin_api_keys": ADMIN}
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def fake():
    with FakeLLM() as f:
        yield f


@pytest.fixture
def corpus_settings(make_settings, corpus_db, tmp_path, fake):
    """Settings over a copy of the sample corpus file (tests here write to it)."""
    import shutil

    path = tmp_path / "corpus.db"
    shutil.copy(corpus_db, path)
    return lambda **kw: make_settings(milvus_lite_path=str(path), llm_base_url=fake.base_url, **kw)


async def test_explain_shows_both_tiers_and_counts_nothing(corpus_settings):
    sample = load_corpus()[3]
    # the semantic tiers' candidates (with the exact tier, this prompt is served before a search:
    # tests/integration/test_exact_tier.py)
    async with running_app(corpus_settings(answer_cache=True, exact_tier=False)) as client:
        before = await scrape(client)
        r = await client.post("/v1/explain", json={"prompt": sample["content"], "top_k": 3})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["decision"] == "HIT" and body["served"]["tier"] == "curated"
        assert body["served"]["biz_id"] == sample["biz_id"] and body["would_call_llm"] is False
        curated, generated = body["tiers"]
        assert curated["tier"] == "curated" and len(curated["candidates"]) == 3
        top = curated["candidates"][0]
        assert top["chosen"] and top["above_threshold"] and top["guard"] == "pass" and not top["blocked"]
        assert [c["chosen"] for c in curated["candidates"]].count(True) == 1
        # explain is the decision traced: after a curated hit the answer tier is not reached
        assert generated["tier"] == "generated" and generated["candidates"] == []
        assert generated["skipped"] == "not_reached"
        assert set(body["timings_ms"]) == {"embed", "search", "total"}
        after = await scrape(client)
        assert after.value("writing_retrieval_outcomes_total", outcome="hit_curated") == before.value(
            "writing_retrieval_outcomes_total", outcome="hit_curated"
        )

        # a threshold override above every similarity: a miss, the candidates still shown
        r = await client.post("/v1/explain", json={"prompt": "写一段描写秋天的文字", "threshold": 1.0})
        body = r.json()
        assert body["decision"] == "MISS" and body["served"] is None and body["would_call_llm"]
        assert body["tiers"][0]["candidates"] and not any(c["above_threshold"] for c in body["tiers"][0]["candidates"])
        r = await client.post("/v1/explain", json={"prompt": sample["content"], "no_cache": True})
        assert r.json()["decision"] == "BYPASS" and r.json()["bypass_reason"] == "no_cache"
        assert (await client.post("/v1/explain", json={"prompt": " "})).status_code == 422
        assert (await client.post("/v1/explain", json={"prompt": "秋天", "top_k": 11})).status_code == 422


async def test_explain_shows_a_rejected_candidate_and_a_stored_answer(corpus_settings, fake):
    async with running_app(corpus_settings(answer_cache=True, exact_tier=False)) as client:
        fake.state.text = "一首关于秋天的短诗。"
        r = await client.get("/generate", params={"prompt": "写两首关于秋天的短诗"})
        assert r.headers["x-cache"] == "MISS"
        await asyncio.sleep(0.2)
        body = (await client.post("/v1/explain", json={"prompt": "写两首关于秋天的短诗"})).json()
        generated = body["tiers"][1]
        assert generated["candidates"][0]["prompt"] == "写两首关于秋天的短诗"
        assert body["decision"] == "HIT" and body["served"]["tier"] == "generated"
        # another number: the second check rejects the stored answer, the LLM would answer
        body = (
            await client.post("/v1/explain", json={"prompt": "写三首关于秋天的短诗", "answer_threshold": 0.5})
        ).json()
        cand = body["tiers"][1]["candidates"][0]
        assert cand["guard"].startswith("rejected:") and not cand["chosen"]


async def test_a_runtime_threshold_applies_persists_and_resets(corpus_settings):
    part = load_corpus()[0]["content"][:30]  # a hit below 1.0, so that a stricter threshold can refuse it
    settings = corpus_settings(similarity_threshold=0.75, **KEYS)
    environment = {"value": 0.75, "default": 0.75, "source": "environment", "updated_at": None, "updated_by": None}
    async with running_app(settings) as client:
        r = await client.get("/v1/settings/threshold", headers=AS_ADMIN)
        assert r.status_code == 200, r.text
        assert r.json()["curated"] == environment
        caller = {"Authorization": f"Bearer {CALLER}"}
        assert (await client.get("/v1/settings/threshold", headers=caller)).status_code == 403
        explained = (await client.post("/v1/explain", json={"prompt": part}, headers=AS_ADMIN)).json()
        assert explained["decision"] == "HIT", explained
        stricter = round((explained["served"]["similarity"] + 1) / 2, 6)
        r = await client.put("/v1/settings/threshold", json={"curated": stricter}, headers=AS_ADMIN)
        assert r.json()["curated"]["value"] == stricter and r.json()["curated"]["source"] == "runtime"
        assert r.json()["curated"]["updated_by"] is not None
        miss = await client.get("/generate", params={"prompt": part}, headers=caller)
        assert miss.headers["x-cache"] == "MISS"
        r = await client.put("/v1/settings/threshold", json={"curated": 0.2}, headers=AS_ADMIN)
        assert r.status_code == 422 and "0.5" in r.json()["error"]["message"]  # below SIMILARITY_THRESHOLD_MIN
        assert (await client.put("/v1/settings/threshold", json={}, headers=AS_ADMIN)).status_code == 422
        r = await client.put("/v1/settings/threshold", json={"answer": 0.9}, headers=AS_ADMIN)
        assert r.status_code == 422  # the answer cache is off here
        audit = (await client.get("/v1/audit", params={"action": "settings.threshold"}, headers=AS_ADMIN)).json()
        assert audit["items"] and audit["items"][-1]["detail"]["set"] == {"curated": stricter}
    # a restart keeps it, until it is reset
    async with running_app(settings) as client:
        r = await client.get("/v1/settings/threshold", headers=AS_ADMIN)
        assert r.json()["curated"]["value"] == stricter
        r = await client.post("/v1/explain", json={"prompt": part}, headers=AS_ADMIN)
        assert r.json()["decision"] == "MISS"
        r = await client.delete("/v1/settings/threshold", params={"tier": "curated"}, headers=AS_ADMIN)
        assert r.json()["curated"] == environment
        hit = await client.get("/generate", params={"prompt": part}, headers=AS_ADMIN)
        assert hit.headers["x-cache"] == "HIT"


async def test_edit_import_and_text_search(corpus_settings):
    async with running_app(corpus_settings()) as client:
        added = (
            await client.post("/v1/corpus", json={"content": "钱塘江大潮天下闻名，潮头如万马奔腾。", "biz_id": "e1"})
        ).json()
        old_id = added["ids"][0]
        r = await client.put(
            f"/v1/corpus/{old_id}", json={"content": "钱塘江大潮，八月十八最壮观，潮声如雷。", "biz_id": "e1"}
        )
        assert r.status_code == 200, r.text
        new_id = r.json()["id"]
        assert new_id != old_id and r.json()["previous_id"] == old_id and not r.json()["duplicate"]
        assert (await client.get(f"/v1/corpus/{old_id}")).status_code == 404
        hit = await client.get("/generate", params={"prompt": "钱塘江大潮，八月十八最壮观，潮声如雷。"})
        assert hit.headers["x-cache"] == "HIT" and hit.headers["x-match-id"] == str(new_id)
        # the same text under a new biz_id
        r = await client.put(
            f"/v1/corpus/{new_id}", json={"content": "钱塘江大潮，八月十八最壮观，潮声如雷。", "biz_id": "e2"}
        )
        assert r.status_code == 200
        assert (await client.get(f"/v1/corpus/{r.json()['id']}")).json()["biz_id"] == "e2"
        assert (await client.put("/v1/corpus/123", json={"content": "x"})).status_code == 404
        assert (await client.put(f"/v1/corpus/{new_id}", json={"content": " "})).status_code == 422
        audit = (await client.get("/v1/audit", params={"action": "corpus.edit"})).json()["items"]
        assert audit[0]["detail"]["before"]["content"].startswith("钱塘江大潮天下闻名")  # enough to undo

        lines = [
            json.dumps(
                {"content": "黄山的云海翻腾，奇松怪石在云雾中时隐时现。", "biz_id": "imp-1"}, ensure_ascii=False
            ),
            "not json",
            json.dumps({"content": "", "biz_id": "imp-2"}),
            "",
            json.dumps({"content": "桂林山水甲天下，漓江水清如镜。", "biz_id": "imp-3"}, ensure_ascii=False),
        ]
        body = "\n".join(lines)
        r = await client.post("/v1/corpus/import", json={"jsonl": body, "first_line": 201})
        assert r.status_code == 200, r.text
        result = r.json()
        assert result["inserted"] == 2 and result["skipped"] == 0 and result["read"] == 4
        assert [e["line"] for e in result["errors"]] == [202, 203]
        assert "JSON" in result["errors"][0]["message"] and "content" in result["errors"][1]["message"]
        again = (await client.post("/v1/corpus/import", json={"jsonl": body})).json()
        assert again["inserted"] == 0 and again["skipped"] == 2  # idempotent
        lone = b'{"jsonl": "\\ud800"}'  # a lone surrogate: valid JSON, no text to store
        bad = await client.post("/v1/corpus/import", content=lone, headers={"Content-Type": "application/json"})
        assert bad.status_code == 422 and bad.json()["error"]["message"].startswith("jsonl")

        page = (await client.get("/v1/corpus", params={"text": "漓江"})).json()
        assert [p["biz_id"] for p in page["items"]] == ["imp-3"] and page["total"] == 1
        page = (await client.get("/v1/corpus", params={"limit": 5})).json()
        assert len(page["items"]) == 5 and page["total"] == len(load_corpus()) + 3
        assert (await client.get("/v1/corpus", params={"text": "100%"})).json()["total"] == 0


async def report(client, r: httpx.Response, verdict: str = "wrong", **extra) -> int:
    body = {"request_id": r.headers["x-request-id"], "token": r.headers["x-feedback-token"], "verdict": verdict}
    ack = await client.post("/v1/feedback", json={**body, **extra})
    assert ack.status_code == 200, ack.text
    return ack.json()["report_id"]


async def test_feedback_resolution_and_labels(corpus_settings, fake):
    samples = load_corpus()
    async with running_app(corpus_settings(answer_cache=True)) as client:
        # block: confirmed, and the passage stops being served for that prompt
        hit = await client.get("/generate", params={"prompt": samples[0]["content"]})
        rid = await report(client, hit)
        r = await client.post(f"/v1/feedback/{rid}/resolve", json={"action": "block"})
        assert r.status_code == 200, r.text
        assert r.json()["report"]["status"] == "confirmed"
        again = await client.get("/generate", params={"prompt": samples[0]["content"]})
        assert again.headers.get("x-match-id") != hit.headers["x-match-id"]

        # promote a better passage: the prompt now finds it
        prompt = "写一段关于城市夜景的文字"
        fake.state.text = "夜色中的城市灯火辉煌。"
        miss = await client.get("/generate", params={"prompt": prompt, "nonce": "1"})
        rid = await report(client, miss)
        better = "华灯初上，城市的高楼亮起万家灯火，车流像一条流动的光河。"
        r = await client.post(
            f"/v1/feedback/{rid}/resolve", json={"action": "promote", "content": better, "biz_id": "night-city"}
        )
        assert r.status_code == 200, r.text
        assert r.json()["detail"]["passage_id"] > 0
        found = await client.get("/generate", params={"prompt": prompt}, headers={"Cache-Control": "no-store"})
        assert found.headers["x-cache"] == "HIT" and found.json() == better

        # delete the served entry
        hit = await client.get("/generate", params={"prompt": samples[1]["content"]})
        rid = await report(client, hit)
        r = await client.post(f"/v1/feedback/{rid}/resolve", json={"action": "delete_entry"})
        assert r.json()["detail"]["count"] == 1
        assert (await client.get(f"/v1/corpus/{hit.headers['x-match-id']}")).status_code == 404

        # relabel: the served passage was right after all -> dismissed, a label in the evaluation set
        hit = await client.get("/generate", params={"prompt": samples[2]["content"]})
        rid = await report(client, hit)
        r = await client.post(
            f"/v1/feedback/{rid}/resolve", json={"action": "relabel", "expected_biz_id": samples[2]["biz_id"]}
        )
        assert r.json()["report"]["status"] == "dismissed"
        labels = (await client.get("/v1/labels")).json()["items"]
        assert labels == [
            {
                "id": rid,
                "ts": labels[0]["ts"],
                "actor": "loopback",
                "tier": "curated",
                "prompt": samples[2]["content"],
                "expected": samples[2]["biz_id"],
                "label": "answer",
                "report_id": rid,
            }
        ]
        r = await client.post(f"/v1/feedback/{rid}/resolve", json={"action": "relabel", "label": "same"})
        assert r.status_code == 200  # a curated report ignores 'label'; the label stays one per report
        assert len((await client.get("/v1/labels")).json()["items"]) == 1
        # a decided report stays decided: its caller cannot post it again (issue 26)
        body = {"request_id": miss.headers["x-request-id"], "token": miss.headers["x-feedback-token"]}
        assert (await client.post("/v1/feedback", json={**body, "verdict": "good"})).status_code == 409
        # an LLM answer has no entry to delete (this report stays open: shown apart, never counted)
        other = await client.get("/generate", params={"prompt": "Explain the rules of chess, briefly", "nonce": "2"})
        assert other.headers["x-cache"] == "MISS", other.headers
        r = await client.post(f"/v1/feedback/{await report(client, other)}/resolve", json={"action": "delete_entry"})
        assert r.status_code == 422
        assert (await client.post("/v1/feedback/1/resolve", json={"action": "block"})).status_code == 404
        assert (await client.post(f"/v1/feedback/{rid}/resolve", json={"action": "nuke"})).status_code == 422
        # calibration takes the relabelled pair and the reports
        run = await client.post("/v1/calibration/runs", json={"target_precision": 0.98})
        assert run.status_code == 200, run.text
        sources = run.json()["sources"]
        assert sources["relabelled"] == 1 and sources["feedback"] >= 2 and sources["labelled"] > 300
        assert sources["open_reports"] == 0  # the open one is on an LLM answer: no entry, nothing to weigh
        assert (await client.delete(f"/v1/labels/{rid}")).json() == {"deleted": 1}
        assert (await client.delete(f"/v1/labels/{rid}")).status_code == 404
        actions = {e["action"] for e in (await client.get("/v1/audit", params={"limit": 100})).json()["items"]}
        assert {"feedback.block", "feedback.promote", "feedback.delete_entry", "feedback.relabel"} <= actions


async def test_calibration_run_recommends_per_tier(corpus_settings):
    async with running_app(corpus_settings(hit_guard="on")) as client:
        r = await client.post("/v1/calibration/runs", json={"target_precision": 0.98, "include_feedback": False})
        assert r.status_code == 200, r.text
        body = r.json()
        curated, answer = body["tiers"]
        assert curated["tier"] == "curated" and curated["setting"] == "SIMILARITY_THRESHOLD"
        assert answer["tier"] == "answer" and answer["setting"] == "ANSWER_CACHE_THRESHOLD"
        assert len(curated["rows"]) == 50 and curated["rows"][0]["threshold"] == 0.5
        rec = curated["recommendation"]
        assert rec["guarded"] and rec["threshold"] is not None and rec["precision"] >= 0.98
        assert body["current"]["curated"] == 0.75
        labelled = curated["prompts"] + answer["prompts"]
        assert body["sources"] == {"labelled": labelled, "feedback": 0, "relabelled": 0, "open_reports": 0}


async def test_stats_history_counts_what_happened(corpus_settings):
    sample = load_corpus()[4]
    async with running_app(corpus_settings(stats_history_interval=3600)) as client:
        for _ in range(3):
            await client.get("/generate", params={"prompt": sample["content"]})
        await client.get("/generate", params={"prompt": "写一段描写秋天的文字", "x": "1"})
        await client.app.state.stats_history.sample()
        body = (await client.get("/v1/stats/history", params={"minutes": 5})).json()
        point = body["points"][-1]
        assert point["hit_curated"] == 3 and point["miss"] == 1 and point["requests"] == 4
        assert point["hit_rate_curated"] == 0.75 and point["llm_calls"] == 1
        assert point["tokens_avoided"] == 3 * len(sample["content"])
        assert point["latency_ms"]["embed"]["p50"] > 0
        assert body["totals"]["hit_curated"] == 3


async def test_console_files_are_open_strict_and_the_api_is_not(corpus_settings):
    async with running_app(corpus_settings(**KEYS)) as client:
        r = await client.get("/console")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == "no-cache"
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        # every asset in one folder named by their hash: relative imports between modules stay in it
        assets = re.findall(r'(?:src|href)="(/console/static/[^"]+)"', r.text)
        versions = {asset.split("/")[3] for asset in assets}
        assert len(versions) == 1, assets
        version = versions.pop()
        assert re.fullmatch(r"[0-9a-f]{16}", version)
        assert f'<script type="module" src="/console/static/{version}/console.js"></script>' in r.text
        assert f"/console/static/{version}/pages/corpus.js" in assets  # a subfolder's module
        for asset in assets:
            got = await client.get(asset)
            assert got.status_code == 200, asset
            assert got.headers["cache-control"] == "public, max-age=31536000, immutable", asset
            assert got.headers["content-security-policy"] == csp and got.headers["x-content-type-options"] == "nosniff"
            if asset.endswith(".js"):  # a module script is refused under any other type
                assert got.headers["content-type"] == "text/javascript; charset=utf-8", asset
        # another hash (a page from before a deploy): today's file, but never cached under that name
        other = await client.get("/console/static/0123456789abcdef/console.js")
        assert other.status_code == 200 and other.headers["cache-control"] == "no-cache"
        unversioned = await client.get("/console/static/console.js", follow_redirects=True)
        assert unversioned.status_code == 404  # no hash folder, no file
        for bad in (
            "..%2F__init__.py",
            "nope.js",
            ".hidden.js",
            "console.py",
            "index.html",
            "package.json",
            "pages%2F..%2Fconsole.js",
            "..%2F..%2Froutes%2Fconsole.py",
        ):
            assert (await client.get(f"/console/static/{version}/{bad}")).status_code == 404, bad
        # a path that leaves the folder is no longer a console path: it needs a key like any other
        assert (await client.get("/console/static/../../app.py")).status_code == 401
        assert (await client.post("/v1/explain", json={"prompt": "秋天"})).status_code == 401
        schema = (await client.get("/openapi.json")).json()
        for path in ("/v1/explain", "/v1/settings/threshold", "/v1/stats/history", "/v1/calibration/runs"):
            assert path in schema["paths"]
        assert "/console" not in schema["paths"]


def test_the_asset_folder_hash_covers_every_file_in_every_subfolder(tmp_path):
    (tmp_path / "index.html").write_text('<script type="module" src="/console/static/main.js"></script>')
    (tmp_path / "main.js").write_text('import { b } from "./pages/b.js";\n')
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "b.js").write_text("export const b = 1;\n")
    (tmp_path / ".hidden.js").write_text("")
    (tmp_path / "package.json").write_text("{}")
    first = scan(tmp_path)
    assert list(first.files) == ["main.js", "pages/b.js"]  # not the page, a dot-file, nor other types
    (tmp_path / "index.html").write_text("<p>another page</p>")
    assert scan(tmp_path).version == first.version  # the page is never cached: not part of the hash
    (tmp_path / "pages" / "b.js").write_text("export const b = 2;\n")
    changed = scan(tmp_path)
    assert changed.version != first.version  # a change in a subfolder renames the whole folder
    (tmp_path / "pages" / "b.js").rename(tmp_path / "pages" / "c.js")
    assert scan(tmp_path).version != changed.version  # so does a rename
    page = render_page('<link href="/console/static/pages/b.js"><a href="/elsewhere/x.js">', "abc")
    assert page == '<link href="/console/static/abc/pages/b.js"><a href="/elsewhere/x.js">'


def test_the_console_modules_are_all_preloaded_and_every_import_is_shipped():
    shipped = scan(STATIC).files
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    named = set(re.findall(r'(?:src|href)="/console/static/([^"]+)"', page))
    modules = sorted(name for name in shipped if name.endswith(".js"))
    assert "console.js" in modules and any(name.startswith("pages/") for name in modules)
    assert named == set(shipped), "index.html names every asset, the entry and a modulepreload for the rest"
    imported = set()
    for name in modules:
        text = shipped[name].decode("utf-8")
        assert len(text.splitlines()) < 400, f"{name}: split it"
        for target in re.findall(r'^import .*?from "([^"]+)";$', text, flags=re.M):
            assert target.startswith("./") or target.startswith("../"), (name, target)  # no bare specifier
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
            assert resolved in shipped, (name, target)
            imported.add(resolved)
    assert set(modules) - imported == {"console.js"}, "every module but the entry is imported by another"


def test_a_wheel_ships_every_console_file():
    """The package-data globs of pyproject.toml, expanded as setuptools does (recursive, files only)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["writing.api.console"]
    package = ROOT / "writing" / "api" / "console"
    covered = {
        Path(match).relative_to(package / "static").as_posix()
        for pattern in patterns
        for match in glob.glob(str(package / pattern), recursive=True)
        if Path(match).is_file()
    }
    assert set(scan(package / "static").files) | {"index.html"} <= covered


async def test_bad_input_is_refused_by_name_and_stays_with_its_line(corpus_settings):
    """Issue 26: NUL and bidi controls refused naming the field; an edit onto another passage's text is a
    409 naming it; integer biz_ids accepted; an import's bad lines (nested 5,000 deep, a lone surrogate)
    are reported by line while the good ones are stored."""
    async with running_app(corpus_settings()) as client:
        r = await client.post("/v1/corpus", json={"content": "西湖的春天，桃红柳绿，游人如织。", "biz_id": 4711})
        assert r.status_code == 200, r.text
        m1 = r.json()["ids"][0]
        assert (await client.get(f"/v1/corpus/{m1}")).json()["biz_id"] == "4711"
        assert (await client.post("/v1/corpus", json={"content": "好", "biz_id": True})).status_code == 422
        r = await client.post("/v1/corpus", json={"content": "泰山日出，云海翻涌。", "biz_id": "m2"})
        m2 = r.json()["ids"][0]

        bidi = await client.post("/v1/corpus", json={"content": "好文章", "biz_id": "abc\u202edef"})
        assert bidi.status_code == 422 and "biz_id" in bidi.json()["error"]["message"]
        assert "U+202E" in bidi.json()["error"]["message"]
        nul = await client.post("/v1/corpus", json={"content": "好\u0000文章"})
        assert nul.status_code == 422 and "content" in nul.json()["error"]["message"]
        for route in ("/v1/generate", "/v1/search"):
            r = await client.post(route, json={"prompt": "写一段\u0000秋天"})
            assert r.status_code == 422 and "NUL" in r.json()["error"]["message"], r.text
        r = await client.get("/generate", params={"prompt": "写一段\u202e秋天"})
        assert r.status_code == 422 and "U+202E" in r.json()["error"]["message"]

        # m1 edited to m2's text: refused, naming m2; both stay as they were
        r = await client.put(f"/v1/corpus/{m1}", json={"content": "泰山日出，云海翻涌。", "biz_id": "new"})
        assert r.status_code == 409 and str(m2) in r.json()["error"]["message"], r.text
        assert (await client.get(f"/v1/corpus/{m1}")).status_code == 200
        assert (await client.get(f"/v1/corpus/{m2}")).json()["biz_id"] == "m2"

        lines = [
            json.dumps({"content": "黄河远上白云间，一片孤城万仞山。", "biz_id": "g1"}, ensure_ascii=False),
            "[" * 5000 + "]" * 5000,
            '{"content": "\\ud800 lone", "biz_id": "s"}',
            json.dumps({"content": "大漠孤烟直，长河落日圆。", "biz_id": "g2"}, ensure_ascii=False),
        ]
        r = await client.post("/v1/corpus/import", json={"jsonl": "\n".join(lines)})
        assert r.status_code == 200, r.text
        result = r.json()
        assert result["inserted"] == 2 and [e["line"] for e in result["errors"]] == [2, 3]
        assert "nested" in result["errors"][0]["message"] and "surrogate" in result["errors"][1]["message"]
