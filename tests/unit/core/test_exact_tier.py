"""The exact tier over fakes: a repeated prompt served with no embedding and no search, under every rule
the semantic tiers apply (context, stops, max_tokens, TTL, blocks, deletions, bypasses, shadow mode)."""

from __future__ import annotations

import pytest

from tests.support.fakes import text_vector
from writing.adapters.segmenter import RJiebaTagger
from writing.core.feedback import Block
from writing.core.guard import HitGuard
from writing.core.models import BYPASS, CURATED, EXACT, GENERATED, HIT, MISS, SEMANTIC, AnswerRequest, SamplingParams
from writing.core.policy import Trace

PROMPT = "请用三句话解释TCP三次握手的过程"
PASSAGE = "秋天是一位调色的画家，她把枫叶染成火红。"


def costs(r) -> tuple[int, int, int]:
    """(prompts embedded, curated searches, answer-store calls)."""
    return r.encoder.calls, r.corpus.searches, r.answers.calls if r.answers is not None else 0


async def test_a_repeated_prompt_is_served_without_embedding_or_searching(rig):
    r = await rig(answer_cache=True, exact=True)
    prompt = "写一段介绍café文化的文字"  # é composed (NFC)
    first = await r.answering.answer(AnswerRequest(prompt=prompt))
    assert first.source == "llm" and costs(r) == (1, 1, 1)  # embedded, searched, then written back
    before = costs(r)
    decomposed = prompt.replace("é", "e\u0301")
    for variant in (prompt, f"  {prompt} \n", f"\u3000{prompt}\t", decomposed):  # whitespace, NFC
        answer = await r.answering.answer(AnswerRequest(prompt=variant))
        d = answer.decision
        assert (d.status, d.match_source, d.match_kind, answer.content) == (HIT, GENERATED, EXACT, r.llm.text)
        assert d.vector is None and "embed" not in d.timings.stages and d.match.similarity == 1.0
    assert costs(r) == before and len(r.llm.calls) == 1
    assert r.answers.hits == {d.match.id: 4}  # the answer tier counts the hits, however found
    assert r.metrics.exact_hits.labels(GENERATED)._value.get() == 4
    assert r.outcome("hit_answers") == 4


async def test_a_passage_is_served_for_its_text_and_its_retrieval_keys(rig):
    r = await rig(exact=True)
    passage = r.curate(PASSAGE, biz_id="autumn")
    r.corpus.add_key(passage, "写一段秋天枫叶的文字")
    for prompt in (PASSAGE, "写一段秋天枫叶的文字"):
        d = await r.policy.decide(AnswerRequest(prompt=prompt))
        assert (d.status, d.match_source, d.match_kind, d.match.id, d.match.biz_id) == (
            HIT,
            CURATED,
            EXACT,
            passage,
            "autumn",
        )
    assert costs(r) == (0, 0, 0)
    # a request the curated tier may not answer is not served a passage by the exact tier either
    system = [{"role": "system", "content": "你是律师"}, {"role": "user", "content": PASSAGE}]
    d = await r.policy.decide(AnswerRequest(prompt=PASSAGE, messages=system))
    assert d.status == MISS and d.curated_skip == "system_message" and r.encoder.calls == 1


async def test_the_second_check_runs_on_a_retrieval_key_as_on_a_search_hit(rig):
    r = await rig(exact=True, guard=HitGuard(RJiebaTagger()), guard_mode="on")
    passage = r.curate("2009年国庆阅兵，方阵整齐地走过长安街……")
    r.corpus.add_key(passage, "写一篇2019年国庆阅兵的观后感")  # a (wrong) key: the check rejects it
    d = await r.policy.decide(AnswerRequest(prompt="写一篇2019年国庆阅兵的观后感"))
    assert d.status == MISS and r.encoder.calls == 1  # declined: the semantic tiers decided
    assert d.tiers[0].tier == EXACT and d.tiers[0].judged[0].verdict.guard.reason == "number"
    d = await r.policy.decide(AnswerRequest(prompt="2009年国庆阅兵，方阵整齐地走过长安街……"))
    assert d.match_kind == EXACT and d.guard.guard.ok  # the same text: passes without segmenting


@pytest.mark.parametrize(
    "asked, served",
    [
        ({}, True),
        ({"tenant": "other"}, False),
        ({"params": SamplingParams(temperature=0.0)}, False),  # greedy: another context
        ({"params": SamplingParams(max_tokens=5)}, False),  # the answer has 9 tokens
        ({"params": SamplingParams(extra={"stop": ["握手"]})}, False),  # the answer holds the stop
        ({"messages": [{"role": "system", "content": "简短"}, {"role": "user", "content": PROMPT}]}, False),
    ],
    ids=["same", "tenant", "greedy", "max-tokens", "stops", "instructions"],
)
async def test_a_stored_answer_is_served_only_under_the_answer_rule(rig, asked, served):
    r = await rig(answer_cache=True, exact=True)
    req = AnswerRequest(prompt=PROMPT)
    key = r.answer_tier.key(req, r.policy.context_of(req))
    r.answers.put(text_vector(PROMPT), prompt=PROMPT, content="三次握手……", key=key, stops=(), completion_tokens=9)
    d = await r.policy.decide(AnswerRequest(prompt=PROMPT, **asked))
    assert (d.match_kind == EXACT) is served
    if not served:  # the semantic tiers applied the same rule: nothing served
        assert d.status == MISS and r.encoder.calls == 1


async def test_an_expired_answer_is_not_served(rig):
    r = await rig(answer_cache=True, exact=True, ttl_seconds=60)
    await r.answering.answer(AnswerRequest(prompt=PROMPT))
    assert (await r.policy.decide(AnswerRequest(prompt=PROMPT))).match_kind == EXACT
    (stored,) = r.index.answer_entries.by_id.values()
    r.index.answer_entries.drop([stored.id])
    r.index.answer_entries.put([type(stored)(**{**_fields(stored), "created_at_ms": stored.created_at_ms - 61_000})])
    assert (await r.policy.decide(AnswerRequest(prompt=PROMPT))).match_kind != EXACT


def _fields(a) -> dict:
    return {f: getattr(a, f) for f in a.__slots__}


async def test_a_block_that_may_apply_sends_the_prompt_to_the_semantic_tiers(rig):
    r = await rig(exact=True)
    passage = r.curate(PASSAGE)
    r.judge.blocklist.add(Block(1, CURATED, passage, text_vector(PASSAGE), "t1"))  # t1 reported it wrong
    d = await r.policy.decide(AnswerRequest(prompt=PASSAGE, tenant="t1"))
    assert d.status == MISS and d.tiers[0].judged[0].verdict.blocked and r.encoder.calls == 1
    assert r.metrics.feedback_blocked.labels(CURATED)._value.get() == 1  # counted once, by the semantic tier
    d = await r.policy.decide(AnswerRequest(prompt=PASSAGE, tenant="t2"))  # another tenant: unaffected
    assert d.match_kind == EXACT and r.encoder.calls == 1
    r.judge.blocklist.remove(1)
    assert (await r.policy.decide(AnswerRequest(prompt=PASSAGE, tenant="t1"))).match_kind == EXACT


async def test_deletions_stop_exact_hits_here_at_once_and_from_elsewhere_at_the_reload(rig):
    r = await rig(answer_cache=True, exact=True)
    here, elsewhere = r.curate(PASSAGE), r.curate("冬天的雪。")
    r.corpus.remove(here)  # this worker deleted it: the store told the index
    assert (await r.policy.decide(AnswerRequest(prompt=PASSAGE))).status == MISS
    r.corpus.remove(elsewhere, quiet=True)  # another worker: known at the next reload
    assert (await r.policy.decide(AnswerRequest(prompt="冬天的雪。"))).match_kind == EXACT
    await r.exact_sync.sync_all()
    assert (await r.policy.decide(AnswerRequest(prompt="冬天的雪。"))).status == MISS
    await r.answering.answer(AnswerRequest(prompt=PROMPT))
    d = await r.policy.decide(AnswerRequest(prompt=PROMPT))
    r.answers.remove(d.match.id)
    assert (await r.policy.decide(AnswerRequest(prompt=PROMPT))).status == MISS


async def test_a_restarted_worker_serves_exact_hits_once_its_index_is_filled(rig):
    r = await rig(answer_cache=True, exact=True)
    r.corpus.add(PASSAGE, "b", quiet=True)  # stored before this worker started
    assert (await r.policy.decide(AnswerRequest(prompt=PASSAGE))).match_kind == SEMANTIC
    assert await r.exact_sync.sync_all()
    assert (await r.policy.decide(AnswerRequest(prompt=PASSAGE))).match_kind == EXACT


@pytest.mark.parametrize(
    "fields, options, status, reason",
    [
        ({"lookup": False}, {}, BYPASS, "no_cache"),
        ({"bypass_reason": "multi_turn"}, {}, BYPASS, "multi_turn"),
        ({}, {"shadow_mode": True}, BYPASS, "shadow_mode"),
    ],
    ids=["no-cache", "multi-turn", "shadow"],
)
async def test_bypasses_skip_the_exact_tier(rig, fields, options, status, reason):
    r = await rig(exact=True, **options)
    r.curate(PASSAGE)
    answer = await r.answering.answer(AnswerRequest(prompt=PASSAGE, **fields))
    d = answer.decision
    assert (d.status, d.bypass_reason, answer.source, d.match_kind) == (status, reason, "llm", None)
    if options:
        assert d.shadow == "would_hit" and d.tiers[0].chosen == 0 and r.encoder.calls == 0


async def test_a_prompt_longer_than_the_window_is_not_served_by_the_exact_tier(rig):
    r = await rig(exact=True)
    r.curate("长" * 201)
    d = await r.policy.decide(AnswerRequest(prompt="长" * 201))
    assert (d.status, d.bypass_reason) == (BYPASS, "prompt_longer_than_embedding_window")
    assert d.tiers[0].skipped == "prompt_longer_than_embedding_window"
    r = await rig(exact=True, retrieve_long_prompts=True)
    r.curate("长" * 201)
    assert (await r.policy.decide(AnswerRequest(prompt="长" * 201))).match_kind == EXACT


async def test_explain_shows_the_exact_lookup_first_and_counts_nothing(rig):
    r = await rig(answer_cache=True, exact=True)
    passage = r.curate(PASSAGE)
    traced = await r.policy.decide(AnswerRequest(prompt=PASSAGE), Trace(top_k=5))
    assert [t.tier for t in traced.tiers] == [EXACT, CURATED, GENERATED]
    exact = traced.tiers[0]
    assert (exact.chosen, exact.chosen_tier, exact.judged[0].match.id) == (0, CURATED, passage)
    assert [t.skipped for t in traced.tiers[1:]] == ["not_reached", "not_reached"]
    assert r.outcome("hit_curated") == 0 and r.metrics.exact_hits.labels(CURATED)._value.get() == 0
    traced = await r.policy.decide(AnswerRequest(prompt="别的"), Trace(top_k=5))
    assert traced.tiers[0].judged == [] and traced.tiers[0].skipped is None and "embed" in traced.timings.stages


async def test_exact_hits_go_on_from_memory_while_the_store_is_down(rig):
    r = await rig(exact=True)
    r.curate(PASSAGE)
    r.corpus.down = True  # nothing can be written or deleted meanwhile: the index is as current as it can be
    d = await r.policy.decide(AnswerRequest(prompt=PASSAGE))
    assert (d.status, d.match_kind, d.store_error) == (HIT, EXACT, False)
    d = await r.policy.decide(AnswerRequest(prompt="别的提示词"))
    assert d.status == MISS and d.store_error  # the semantic path: as before
