"""Feedback as a core service (writing.core.reviews), over in-memory repositories (no Milvus)."""

from __future__ import annotations

import dataclasses
import time

import pytest

from tests.support.fakes import (
    FakeCorpusWriter,
    FakeEncoder,
    InMemoryAudit,
    InMemoryLabels,
    InMemoryReports,
    ReviewedAnswersFake,
    ReviewedCorpusFake,
    text_vector,
)
from writing.core.feedback import TOKEN_PROMPT_CHARS, Blocklist, FeedbackTokens, Served, prompt_hash
from writing.core.links import Link, StoreLinks
from writing.core.reports import CONFIRMED, DISMISSED, OPEN, REPORT_ID_BASE
from writing.core.reviews import RateLimiter, Reporter, Resolution, Reviews, refresh_blocklist
from writing.errors import Conflict, InvalidRequest, NotFound, TooManyRequests, VectorStoreError

PROMPT = "写一段描写秋天的文字"
ACME = Reporter(tenant="acme", actor="key-a", limit_key="key-a")


class Rig:
    """A ``Reviews`` over in-memory repositories, with a link per domain that opens at once."""

    def __init__(self, per_minute: int = 100, answers: bool = True) -> None:
        self.reports, self.labels, self.audit = InMemoryReports(), InMemoryLabels(), InMemoryAudit()
        self.corpus, self.answers = ReviewedCorpusFake(), ReviewedAnswersFake()
        self.links = StoreLinks(*(Link(n, lambda: None, retry_interval=60) for n in ("corpus", "answers", "rec", "x")))
        self.blocklist, self.tokens, self.counted = Blocklist(similarity=0.97), FeedbackTokens(b"secret"), []
        self.reviews = Reviews(
            links=self.links,
            reports=self.reports,
            labels=self.labels,
            audit=self.audit,
            blocklist=self.blocklist,
            tokens=self.tokens,
            limiter=RateLimiter(per_minute),
            encoder=FakeEncoder(),
            corpus=self.corpus,
            answers=self.answers if answers else None,
            writer=FakeCorpusWriter(self.corpus),
            on_report=lambda *labels: self.counted.append(labels),
        )

    def token(self, tier="curated", entry_id: int | None = 7, *, tenant="acme", request_id="req-1", prompt=PROMPT):
        matched, similarity = {"curated": "season-03", "generated": "写秋天"}.get(tier, ""), 0.93 if entry_id else None
        served = Served(request_id, tenant, tier, entry_id, similarity, prompt, prompt_hash(prompt), matched, 0)
        return self.tokens.issue(dataclasses.replace(served, issued=int(time.time())))

    async def report(self, verdict="wrong", reporter=ACME, request_id="req-1", **served):
        token = self.token(request_id=request_id, tenant=reporter.tenant, **served)
        return await self.reviews.report(reporter, request_id, token, verdict, None)

    def blocks(self, tenant: str, tier="curated", entry_id=7, prompt=PROMPT) -> bool:
        return self.blocklist.blocks(tier, entry_id, text_vector(prompt), tenant)


# -- reports ---------------------------------------------------------------------------------------------
async def test_a_wrong_hit_is_blocked_for_the_reporters_tenant_at_once():
    r = Rig()
    ack = await r.report()
    assert (ack.tier, ack.blocked_for) == ("curated", "tenant") and ack.report_id >= REPORT_ID_BASE
    assert r.blocks("acme") and not r.blocks("other")
    stored, vector = r.reports.rows[ack.report_id]
    assert (stored.status, stored.verdict, stored.matched, stored.actor) == (OPEN, "wrong", "season-03", "key-a")
    assert vector == pytest.approx(text_vector(PROMPT).tolist())
    assert r.counted == [("wrong", "curated", "0.92")] and r.audit.entries == []  # no admin action


async def test_confirm_extends_the_block_to_everyone_and_dismiss_lifts_it():
    r = Rig()
    rid = (await r.report()).report_id
    confirmed = await r.reviews.confirm(rid, "admin")
    assert confirmed.status == CONFIRMED and r.blocks("other") and r.blocks("acme")
    dismissed = await r.reviews.dismiss(rid, "admin")
    assert dismissed.status == DISMISSED and not r.blocks("acme") and not r.blocks("other")
    assert r.reports.rows[rid][0].status == DISMISSED and r.audit.actions == ["feedback.confirm", "feedback.dismiss"]
    actor, _, target, detail = r.audit.entries[0]
    assert (actor, target, detail["report"]["status"]) == ("admin", str(rid), CONFIRMED)
    assert "prompt_hash" not in detail["report"] and detail["report"]["prompt"] == PROMPT
    with pytest.raises(NotFound, match="no feedback report with id 5"):
        await r.reviews.confirm(5, "admin")


async def test_a_changed_verdict_lifts_the_block_and_good_or_unmatched_reports_block_nothing():
    r = Rig()
    await r.report("wrong")
    assert (await r.report("good")).blocked_for == "nobody" and not r.blocks("acme")
    assert len(r.reports.rows) == 1  # one report per request and tenant
    assert (await r.report("wrong", request_id="req-2", tier="llm", entry_id=None)).blocked_for == "nobody"
    long = "秋" * TOKEN_PROMPT_CHARS  # known by its hash only: blocks nothing
    assert (await r.report("wrong", request_id="req-3", prompt=long)).blocked_for == "nobody"


async def test_a_decided_report_stays_decided_and_a_changed_verdict_is_audited():
    """Issue 26: re-posting the token with another verdict after an admin decided was a 200 that undid
    the decision (a confirmed block lifted for everyone) with nothing in the audit log."""
    r = Rig()
    rid = (await r.report("wrong")).report_id
    await r.report("good")  # still open: the caller may change its mind, and that is audited
    await r.report("wrong")
    assert r.audit.actions == ["feedback.verdict", "feedback.verdict"]
    assert r.audit.entries[0][0] == "key-a" and r.audit.entries[0][3] == {"before": "wrong", "after": "good"}
    await r.reviews.confirm(rid, "admin")
    with pytest.raises(Conflict, match=f"report {rid} was confirmed by an admin"):
        await r.report("good")
    assert r.reports.rows[rid][0].status == CONFIRMED and r.blocks("other")  # still blocked for everyone
    await r.reviews.dismiss(rid, "admin")
    with pytest.raises(Conflict, match="dismissed"):
        await r.report("wrong")
    assert not r.blocks("acme") and r.reports.rows[rid][0].verdict == "wrong"


async def test_a_report_needs_this_tenants_token_for_that_request():
    r = Rig()
    token = r.token()
    with pytest.raises(NotFound, match="no answer with request id req-1 for your tenant"):
        await r.reviews.report(Reporter("other", "key-b", "key-b"), "req-1", token, "wrong", None)
    with pytest.raises(NotFound):
        await r.reviews.report(ACME, "req-2", token, "wrong", None)
    with pytest.raises(InvalidRequest, match="^token: .*send the X-Feedback-Token"):
        await r.reviews.report(ACME, "req-1", "A" * 40, "wrong", None)
    assert r.reports.rows == {}


async def test_the_rate_limit_counts_per_key_per_minute_and_refuses_before_writing():
    limiter = RateLimiter(2)
    assert [limiter.allow("a", now=t) for t in (0, 1, 2)] == [True, True, False]
    assert limiter.allow("b", now=2) and limiter.allow("a", now=61)  # the first has left the window
    r = Rig(per_minute=2)
    for _ in range(2):
        await r.report()
    with pytest.raises(TooManyRequests, match="at most 2 feedback reports a minute per key"):
        await r.report("good")
    assert r.reports.find("acme", "req-1").verdict == "wrong"


async def test_a_failing_feedback_write_fails_the_report_and_only_the_records_link():
    r = Rig()
    await r.links.corpus.open()
    r.reports.down = True
    with pytest.raises(VectorStoreError):
        await r.report()
    assert r.links.corpus.ready and not r.links.records.ready
    assert not r.blocks("acme")  # nothing stored, nothing blocked


# -- the blocklist's refresh ---------------------------------------------------------------------------------
async def test_refresh_loads_the_blocks_other_workers_made():
    r, other = Rig(), Rig()
    other.reviews.reports = r.reports  # a second worker, one store
    rid = (await other.report()).report_id
    assert not r.blocks("acme")
    assert await refresh_blocklist(r.links.records, r.reports, r.blocklist) == 1
    assert r.blocks("acme") and not r.blocks("other")
    await other.reviews.confirm(rid, "admin")
    await refresh_blocklist(r.links.records, r.reports, r.blocklist)
    assert r.blocks("other")


# -- export ------------------------------------------------------------------------------------------------
async def test_export_streams_open_and_confirmed_reports_page_by_page(monkeypatch):
    monkeypatch.setattr("writing.core.reviews.service.EXPORT_PAGE", 2)
    r = Rig()
    for i in range(5):
        await r.report("wrong" if i % 2 else "good", request_id=f"req-{i}")
    await r.report(request_id="gen", tier="generated", entry_id=9)
    await r.reviews.dismiss(r.reports.find("acme", "req-0").id, "admin")
    pairs = await r.reviews.export("curated")
    assert r.reports.pages == 1  # the first page only, until the pairs are read
    rows = [p async for p in pairs]
    assert r.reports.pages == 2
    assert sorted(p["kind"] for p in rows) == ["feedback_good"] * 2 + ["feedback_wrong"] * 2
    generated = [p async for p in await r.reviews.export("generated")]
    assert generated == [{"a": PROMPT, "b": "写秋天", "label": "different", "kind": "feedback_wrong"}]
    r.reports.down = True
    with pytest.raises(VectorStoreError):  # before anything is streamed: the route answers 503
        await r.reviews.export("curated")


# -- resolve -----------------------------------------------------------------------------------------------
async def test_resolve_block_and_dismiss():
    r = Rig()
    rid = (await r.report()).report_id
    done = await r.reviews.resolve(rid, Resolution("block"), "admin")
    assert (done.report.status, done.action, done.detail) == (CONFIRMED, "block", {}) and r.blocks("other")
    done = await r.reviews.resolve(rid, Resolution("dismiss"), "admin")
    assert done.report.status == DISMISSED and not r.blocks("acme")
    assert r.audit.actions == ["feedback.block", "feedback.dismiss"]
    with pytest.raises(NotFound, match="no feedback report with id 3"):
        await r.reviews.resolve(3, Resolution("block"), "admin")


async def test_resolve_delete_entry_deletes_the_served_passage_or_answer():
    r = Rig()
    passage = r.corpus.add("秋天是一位调色的画家。", "season-03")
    rid = (await r.report(entry_id=passage)).report_id
    done = await r.reviews.resolve(rid, Resolution("delete_entry"), "admin")
    assert done.detail["count"] == 1 and done.detail["deleted"][0]["biz_id"] == "season-03"
    assert passage in r.corpus.deleted and done.report.status == CONFIRMED
    answer = r.answers.rows.add(text_vector("写秋天"), {"prompt": "写秋天", "content": "秋。", "tenant": "acme"})
    rid = (await r.report(request_id="req-2", tier="generated", entry_id=answer)).report_id
    done = await r.reviews.resolve(rid, Resolution("delete_entry"), "admin")
    assert done.detail["count"] == 1 and done.detail["deleted_answer"]["content"] == "秋。"
    assert r.audit.actions == ["feedback.delete_entry", "feedback.delete_entry"]
    rid = (await r.report(request_id="req-3", tier="llm", entry_id=None)).report_id
    with pytest.raises(InvalidRequest, match="names no stored entry"):
        await r.reviews.resolve(rid, Resolution("delete_entry"), "admin")
    off = Rig(answers=False)
    rid = (await off.report(tier="generated", entry_id=3)).report_id
    with pytest.raises(InvalidRequest, match="ANSWER_CACHE=false"):
        await off.reviews.resolve(rid, Resolution("delete_entry"), "admin")
    assert off.reports.rows[rid][0].status == OPEN


async def test_resolve_promote_adds_the_passage_with_the_prompt_as_its_key():
    r = Rig()
    rid = (await r.report()).report_id
    with pytest.raises(InvalidRequest, match="promote needs 'content'"):
        await r.reviews.resolve(rid, Resolution("promote"), "admin")
    done = await r.reviews.resolve(rid, Resolution("promote", content="金黄的落叶铺满小路。", biz_id="autumn"), "admin")
    passage_id = done.detail["passage_id"]
    assert done.detail == {"passage_id": passage_id, "duplicate": False, "retrieval_key_id": 10_001}
    assert r.corpus.keys == [(passage_id, PROMPT)] and done.report.status == CONFIRMED
    assert r.audit.entries[-1][1] == "feedback.promote" and r.audit.entries[-1][3]["passage_id"] == passage_id


async def test_resolve_relabel_adds_one_pair_per_report():
    r = Rig()
    rid = (await r.report()).report_id
    done = await r.reviews.resolve(rid, Resolution("relabel", expected_biz_id="season-03"), "admin")
    assert done.report.status == DISMISSED  # the served passage was right after all
    pair = {"prompt": PROMPT, "expected_biz_id": "season-03", "kind": "relabelled"}
    assert done.detail == {"label_id": rid, "pair": pair}
    done = await r.reviews.resolve(rid, Resolution("relabel"), "admin")
    assert done.report.status == CONFIRMED and r.labels.pairs[rid].label == "none" and len(r.labels.pairs) == 1
    gen = (await r.report(request_id="req-2", tier="generated", entry_id=4)).report_id
    with pytest.raises(InvalidRequest, match="needs 'label'"):
        await r.reviews.resolve(gen, Resolution("relabel"), "admin")
    assert (await r.reviews.resolve(gen, Resolution("relabel", label="different"), "admin")).report.status == CONFIRMED
    llm = (await r.report(request_id="req-3", tier="llm", entry_id=None)).report_id
    with pytest.raises(InvalidRequest, match="the LLM answered"):
        await r.reviews.resolve(llm, Resolution("relabel", label="same"), "admin")
    items, cursor = await r.reviews.list_labels(tier="generated")
    assert [p.report_id for p in items] == [gen] and cursor is None
    await r.reviews.delete_label(rid, "admin")
    with pytest.raises(NotFound, match=f"no labelled pair with id {rid}"):
        await r.reviews.delete_label(rid, "admin")
    assert r.audit.actions[-1] == "labels.delete" and list(r.labels.pairs) == [gen]


async def test_reports_list_in_the_order_they_came_and_a_retry_keeps_its_id():
    r = Rig()
    ids = [(await r.report(request_id=f"req-{i}")).report_id for i in (5, 1, 9, 3)]
    listed, _ = await r.reviews.list_reports()
    assert [x.id for x in listed] == ids and len(set(ids)) == 4
    assert (await r.report("good", request_id="req-1")).report_id == ids[1]
    assert r.reports.find("acme", "req-1").verdict == "good" and len(r.reports.rows) == 4


async def test_reports_are_listed_by_filter_with_a_cursor():
    r = Rig()
    for i in range(3):
        await r.report(request_id=f"req-{i}")
    await r.report("good", request_id="req-9")
    first, cursor = await r.reviews.list_reports(verdict="wrong", limit=2)
    rest, end = await r.reviews.list_reports(verdict="wrong", after=cursor, limit=2)
    wanted = {r.reports.find("acme", f"req-{i}").id for i in range(3)}
    assert len(first) == 2 and end is None and {x.id for x in first + rest} == wanted
