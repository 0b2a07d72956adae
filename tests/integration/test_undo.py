"""Undo from the journal, in the real app (real model, Milvus Lite): every journaled change comes back,
whole, bulk ones included; what changed since is reported, not overwritten; a crash between a change's
intent and its outcome (injected, not timed) leaves an interrupted entry that lists and undoes."""

from __future__ import annotations

import json

import pytest

from tests.support.apps import running_app
from tests.support.fakes import InjectedCrash
from writing.core.undo.entries import OUTCOME
from writing.devtools.fake_llm import FakeLLM

PROMPT = "请写一段介绍量子纠缠的科普短文"


def lines(n: int, tag: str) -> list[dict]:
    return [
        {"content": f"第{i}段{tag}：春天的田野里开满了油菜花，蜜蜂在花间忙碌。", "biz_id": f"{tag}-bulk"}
        for i in range(n)
    ]


class CrashBefore:
    """The journal, but the process 'dies' instead of writing a record of this kind."""

    def __init__(self, journal, kind: str) -> None:
        self.journal, self.kind = journal, kind

    def write(self, entry_id, kind, *args):
        if kind == self.kind:
            raise InjectedCrash(f"injected crash before the {kind} record")
        return self.journal.write(entry_id, kind, *args)

    def __getattr__(self, name):
        return getattr(self.journal, name)


async def audit(client, action: str) -> list[dict]:
    r = await client.get("/v1/audit", params={"action": action, "limit": 500})
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def undo(client, entry_id: int, status: int = 200) -> dict:
    r = await client.post(f"/v1/audit/{entry_id}/undo")
    assert r.status_code == status, r.text
    return r.json()


@pytest.fixture
def fake():
    with FakeLLM() as f:
        yield f


async def test_a_bulk_delete_of_1000_passages_comes_back_whole(make_settings):
    async with running_app(make_settings(log_level="WARNING")) as client:
        jsonl = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines(1000, "b"))
        r = await client.post("/v1/corpus/import", json={"jsonl": jsonl})
        assert r.json()["inserted"] == 1000
        r = await client.delete("/v1/corpus", params={"biz_id": "b-bulk"})
        assert r.json() == {"deleted": 1000}
        entry = (await audit(client, "corpus.delete"))[-1]
        assert entry["detail"]["count"] == 1000 and entry["detail"]["truncated"] is True  # valid JSON, a summary
        out = await undo(client, entry["id"])
        assert (out["action"], out["was"], len(out["applied"]), out["conflicts"]) == ("corpus.delete", "done", 1000, [])
        back = (await client.get("/v1/corpus", params={"biz_id": "b-bulk", "limit": 1000})).json()["items"]
        assert sorted(p["content"] for p in back) == sorted(x["content"] for x in lines(1000, "b"))
        again = await undo(client, entry["id"], 409)
        assert "undone already" in again["error"]["message"]
        assert (await audit(client, "audit.undo"))[-1]["target"] == str(entry["id"])
        r = await client.get("/v1/audit/journal", params={"state": "undone"})
        assert [e["id"] for e in r.json()["items"]] == [entry["id"]]


async def test_adds_edits_and_what_changed_since(make_settings):
    async with running_app(make_settings(log_level="WARNING")) as client:
        r = await client.post("/v1/corpus", json={"passages": lines(3, "a")})
        ids = r.json()["ids"]
        # an edit, undone: the old text and biz_id come back
        r = await client.put(
            f"/v1/corpus/{ids[0]}", json={"content": "改过的文字：秋天的果园里硕果累累。", "biz_id": "edited"}
        )
        edited = r.json()["id"]
        entry = (await audit(client, "corpus.edit"))[-1]
        out = await undo(client, entry["id"])
        assert out["conflicts"] == [] and len(out["applied"]) == 1
        back = (await client.get("/v1/corpus", params={"biz_id": "a-bulk", "limit": 10})).json()["items"]
        assert sorted(p["content"] for p in back) == sorted(x["content"] for x in lines(3, "a"))
        assert (await client.get(f"/v1/corpus/{edited}")).status_code == 404
        # the add, undone after one of its passages was deleted since: the rest go, that one is a conflict
        now = {p["content"]: p["id"] for p in back}
        gone = now[lines(3, "a")[1]["content"]]
        assert (await client.delete(f"/v1/corpus/{gone}")).status_code == 200
        add = (await audit(client, "corpus.add"))[-1]
        out = await undo(client, add["id"])
        # the first passage was edited (and its edit undone: a new id) and the second deleted since
        assert sorted(c["target"] for c in out["conflicts"]) == sorted([f"passage {ids[0]}", f"passage {gone}"])
        assert out["applied"] == [f"passage {ids[2]} deleted"]
        # a second edit after the first: undoing the first leaves the second alone
        r = await client.post("/v1/corpus", json={"content": "夏天的海边，浪花一朵朵拍打着礁石。", "biz_id": "e1"})
        pid = r.json()["ids"][0]
        first = (
            await client.put(f"/v1/corpus/{pid}", json={"content": "夏天的海边，浪花拍打礁石。", "biz_id": "e1"})
        ).json()
        await client.put(f"/v1/corpus/{first['id']}", json={"content": "夏天的海边，海鸥在飞。", "biz_id": "e1"})
        entries = await audit(client, "corpus.edit")
        out = await undo(client, entries[-2]["id"])
        assert out["applied"] == [] and out["conflicts"][0]["target"] == f"passage {first['id']}"


async def test_answers_deleted_by_filter_come_back_under_their_ids(make_settings, fake):
    settings = make_settings(llm_base_url=fake.base_url, answer_cache=True, log_level="WARNING")
    async with running_app(settings) as client:
        for i in range(3):
            r = await client.get("/generate", params={"prompt": f"{PROMPT}，第{i}篇"}, headers={"X-Tenant": "acme"})
            assert r.headers["x-cache"] == "MISS"
        before = (await client.get("/v1/answers", params={"tenant": "acme"})).json()["items"]
        assert len(before) == 3
        assert (await client.delete("/v1/answers", params={"tenant": "acme"})).json() == {"deleted": 3}
        entry = (await audit(client, "answers.delete_where"))[-1]
        assert sorted(entry["detail"]["ids"]) == sorted(a["id"] for a in before)
        out = await undo(client, entry["id"])
        assert len(out["applied"]) == 3 and out["conflicts"] == []
        after = (await client.get("/v1/answers", params={"tenant": "acme"})).json()["items"]
        assert {(a["id"], a["prompt"], a["content"], a["created_at"]) for a in after} == {
            (a["id"], a["prompt"], a["content"], a["created_at"]) for a in before
        }
        r = await client.get("/generate", params={"prompt": f"{PROMPT}，第1篇"}, headers={"X-Tenant": "acme"})
        assert r.headers["x-cache"] == "HIT"  # searchable again: the prompt was embedded again


async def test_thresholds_go_back_unless_set_again_since(make_settings):
    async with running_app(make_settings(log_level="WARNING")) as client:
        base = (await client.get("/v1/settings/threshold")).json()["curated"]["value"]
        await client.put("/v1/settings/threshold", json={"curated": 0.9})
        entry = (await audit(client, "settings.threshold"))[-1]
        out = await undo(client, entry["id"])
        assert out["conflicts"] == [] and len(out["applied"]) == 1
        assert (await client.get("/v1/settings/threshold")).json()["curated"]["value"] == base
        await client.put("/v1/settings/threshold", json={"curated": 0.85})
        first = (await audit(client, "settings.threshold"))[-1]
        await client.put("/v1/settings/threshold", json={"curated": 0.88})
        out = await undo(client, first["id"])
        assert out["applied"] == [] and out["conflicts"][0]["target"] == "threshold.curated"
        assert (await client.get("/v1/settings/threshold")).json()["curated"]["value"] == 0.88


async def test_a_crash_between_intent_and_outcome_leaves_an_entry_that_undoes(make_settings):
    async with running_app(make_settings(log_level="WARNING")) as client:
        changes = client.app.state.changes
        journal = changes.journal
        await client.post("/v1/corpus", json=lines(1, "c")[0])  # stored before: the undo keeps it
        jsonl = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines(20, "c"))
        changes.journal = CrashBefore(journal, OUTCOME)
        with pytest.raises(InjectedCrash):
            await client.post("/v1/corpus/import", json={"jsonl": jsonl})
        changes.journal = journal  # "restarted"
        stored = (await client.get("/v1/corpus", params={"biz_id": "c-bulk", "limit": 100})).json()["items"]
        assert len(stored) == 20  # the change happened ...
        assert await audit(client, "corpus.import") == []  # ... with no audit entry, as after a kill -9
        r = await client.get("/v1/audit/journal", params={"state": "interrupted"})
        (entry,) = r.json()["items"]
        assert entry["action"] == "corpus.import"
        # a retry (all skipped) is journaled and audited now
        r = await client.post("/v1/corpus/import", json={"jsonl": jsonl})
        assert r.json()["skipped"] == 20
        assert [e["detail"]["added"] for e in await audit(client, "corpus.import")] == [[]]
        out = await undo(client, entry["id"])
        assert (out["was"], len(out["applied"]), out["conflicts"]) == ("interrupted", 19, [])
        left = (await client.get("/v1/corpus", params={"biz_id": "c-bulk", "limit": 100})).json()["items"]
        assert [p["content"] for p in left] == [lines(1, "c")[0]["content"]]


async def test_a_crash_before_the_intent_changes_nothing(make_settings):
    async with running_app(make_settings(log_level="WARNING")) as client:
        changes = client.app.state.changes
        journal = changes.journal
        changes.journal = CrashBefore(journal, "intent")
        with pytest.raises(InjectedCrash):
            await client.post("/v1/corpus", json=lines(1, "d")[0])
        changes.journal = journal
        assert (await client.get("/v1/corpus", params={"biz_id": "d-bulk"})).json()["items"] == []
        assert (await client.get("/v1/audit/journal")).json()["items"] == []


async def test_undo_refuses_what_it_cannot_do(make_settings):
    async with running_app(make_settings(log_level="WARNING")) as client:
        r = await client.post("/v1/audit/12345/undo")
        assert r.status_code == 404 and "no journal entry" in r.json()["error"]["message"]
        r = await client.get("/v1/audit/journal", params={"state": "bogus"})
        assert r.status_code == 422
        # an edit refused as a collision (409) is refused before it is journaled: no interrupted entry
        a, b = (await client.post("/v1/corpus", json={"passages": lines(2, "x")})).json()["ids"]
        r = await client.put(f"/v1/corpus/{a}", json=lines(2, "x")[1])
        assert r.status_code == 409
        journal = (await client.get("/v1/audit/journal")).json()["items"]
        assert [e["action"] for e in journal] == ["corpus.add"]


async def test_a_confirmed_report_and_a_deleted_label_come_back(make_settings, fake):
    settings = make_settings(llm_base_url=fake.base_url, log_level="WARNING")
    async with running_app(settings) as client:
        passage = lines(1, "r")[0]
        pid = (await client.post("/v1/corpus", json=passage)).json()["ids"][0]
        hit = await client.get("/generate", params={"prompt": passage["content"]})
        assert hit.headers["x-match-id"] == str(pid)
        body = {"request_id": hit.headers["x-request-id"], "token": hit.headers["x-feedback-token"], "verdict": "wrong"}
        rid = (await client.post("/v1/feedback", json=body)).json()["report_id"]
        assert (await client.post(f"/v1/feedback/{rid}/confirm")).json()["status"] == "confirmed"
        blocked = await client.get("/generate", params={"prompt": passage["content"]})
        assert blocked.headers.get("x-match-id") != str(pid)
        entry = (await audit(client, "feedback.confirm"))[-1]
        out = await undo(client, entry["id"])
        assert out["applied"] == [f"report {rid}: back to open"]
        report = (await client.get("/v1/feedback", params={"status": "open"})).json()["items"]
        assert [r["id"] for r in report] == [rid]
        # a label: relabel, delete, undo
        r = await client.post(f"/v1/feedback/{rid}/resolve", json={"action": "relabel", "expected_biz_id": "r-bulk"})
        assert r.status_code == 200, r.text
        (label,) = (await client.get("/v1/labels")).json()["items"]
        assert (await client.delete(f"/v1/labels/{label['id']}")).json() == {"deleted": 1}
        entry = (await audit(client, "labels.delete"))[-1]
        assert entry["detail"]["label"]["prompt"] == passage["content"]
        out = await undo(client, entry["id"])
        assert out["applied"] == [f"label {label['id']} restored"]
        assert (await client.get("/v1/labels")).json()["items"] == [label]
        # the relabel itself (a resolution that changed the labels as well as the report) undoes too
        relabel = (await audit(client, "feedback.relabel"))[-1]
        out = await undo(client, relabel["id"])
        assert out["applied"] == [f"label {label['id']} deleted", f"report {rid}: back to open"], out
        assert (await client.get("/v1/labels")).json()["items"] == []


async def report_wrong(client, hit) -> int:
    body = {"request_id": hit.headers["x-request-id"], "token": hit.headers["x-feedback-token"], "verdict": "wrong"}
    r = await client.post("/v1/feedback", json=body)
    assert r.status_code == 200, r.text
    return r.json()["report_id"]


async def test_resolutions_that_changed_another_store_come_back(make_settings, fake):
    settings = make_settings(llm_base_url=fake.base_url, answer_cache=True, log_level="WARNING")
    async with running_app(settings) as client:
        passage = lines(1, "e")[0]
        pid = (await client.post("/v1/corpus", json=passage)).json()["ids"][0]
        # delete_entry on a curated hit: the passage comes back (a new id), the report goes back to open
        rid = await report_wrong(client, await client.get("/generate", params={"prompt": passage["content"]}))
        r = await client.post(f"/v1/feedback/{rid}/resolve", json={"action": "delete_entry"})
        assert r.status_code == 200 and r.json()["detail"]["count"] == 1, r.text
        assert (await client.get(f"/v1/corpus/{pid}")).status_code == 404
        out = await undo(client, (await audit(client, "feedback.delete_entry"))[-1]["id"])
        assert out["conflicts"] == [] and out["applied"][-1] == f"report {rid}: back to open", out
        (back,) = (await client.get("/v1/corpus", params={"biz_id": "e-bulk"})).json()["items"]
        assert back["content"] == passage["content"]
        # delete_entry on a stored answer: it comes back under its id
        await client.get("/generate", params={"prompt": PROMPT}, headers={"Cache-Control": "no-cache"})
        (answer,) = (await client.get("/v1/answers")).json()["items"]
        hit = await client.get("/generate", params={"prompt": PROMPT})
        assert hit.headers["x-match-id"] == str(answer["id"])
        rid2 = await report_wrong(client, hit)
        r = await client.post(f"/v1/feedback/{rid2}/resolve", json={"action": "delete_entry"})
        assert r.status_code == 200 and (await client.get("/v1/answers")).json()["items"] == []
        out = await undo(client, (await audit(client, "feedback.delete_entry"))[-1]["id"])
        assert out["applied"] == [f"answer {answer['id']} restored", f"report {rid2}: back to open"], out
        (again,) = (await client.get("/v1/answers")).json()["items"]
        assert (again["id"], again["content"]) == (answer["id"], answer["content"])
        # promote a better passage: the passage and the prompt's key go; a second undo is refused
        better = {"action": "promote", "content": "量子纠缠是两个粒子之间的一种关联。", "biz_id": "better"}
        r = await client.post(f"/v1/feedback/{rid2}/resolve", json=better)
        assert r.status_code == 200, r.text
        new_pid = r.json()["detail"]["passage_id"]
        entry = (await audit(client, "feedback.promote"))[-1]
        out = await undo(client, entry["id"])
        assert out["applied"] == [
            f"passage {new_pid}: the promoted prompt's retrieval key removed",
            f"passage {new_pid} deleted",
            f"report {rid2}: back to open",
        ], out
        assert (await client.get(f"/v1/corpus/{new_pid}")).status_code == 404
        await undo(client, entry["id"], status=409)


async def test_a_promotion_goes_back_to_a_stored_answer(make_settings, fake):
    settings = make_settings(llm_base_url=fake.base_url, answer_cache=True, log_level="WARNING")
    async with running_app(settings) as client:
        miss = await client.get("/generate", params={"prompt": PROMPT}, headers={"Cache-Control": "no-cache"})
        (answer,) = (await client.get("/v1/answers")).json()["items"]
        r = await client.post(f"/v1/answers/{answer['id']}/promote", json={"biz_id": "promoted"})
        assert r.status_code == 200, r.text
        passage_id = r.json()["passage_id"]
        hit = await client.get("/generate", params={"prompt": PROMPT})
        assert (hit.headers["x-match-source"], hit.headers["x-match-id"]) == ("curated", str(passage_id))
        entry = (await audit(client, "answers.promote"))[-1]
        out = await undo(client, entry["id"])
        assert out["conflicts"] == [] and len(out["applied"]) == 3, out  # the key, the passage, the answer
        assert (await client.get(f"/v1/corpus/{passage_id}")).status_code == 404
        (back,) = (await client.get("/v1/answers")).json()["items"]
        assert (back["id"], back["prompt"], back["content"]) == (answer["id"], answer["prompt"], answer["content"])
        again = await client.get("/generate", params={"prompt": PROMPT})
        assert (again.headers["x-match-source"], again.headers["x-match-id"]) == ("generated", str(answer["id"]))
        assert again.json() == miss.json()
