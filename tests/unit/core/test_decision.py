"""The retrieval-first decision as a table, with in-memory fakes for every port (no model, no server).

Each row of the table: what is stored, what is asked, and what the service decides and answers.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.support.fakes import text_vector
from tests.support.rig import near
from writing.api.deps import guard_label
from writing.core.feedback import Block, Blocklist
from writing.core.models import BYPASS, CURATED, GENERATED, HIT, MISS, AnswerRequest, QueryVector, SamplingParams
from writing.errors import InvalidRequest, LLMUpstreamError, VectorStoreError
from writing.validation import check_prompt, check_threshold

PASSAGE = "秋天是一位调色的画家，她把枫叶染成火红。"
OTHER = "请用三句话解释TCP三次握手的过程"


# -- the decision table --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "similarity, threshold, status",
    [
        (1.0, None, HIT),
        (0.80, None, HIT),
        (0.751, None, HIT),
        (0.749, None, MISS),
        (0.80, 0.85, MISS),
        (0.80, 0.6, HIT),
    ],
    ids=["exact", "above", "just-above", "just-below", "override-up", "override-down"],
)
async def test_curated_hit_or_miss_by_similarity_and_threshold(rig, similarity, threshold, status):
    r = await rig()
    r.curate(PASSAGE, similarity_to="写秋天", similarity=similarity, biz_id="season-03")
    answer = await r.answering.answer(AnswerRequest(prompt="写秋天", threshold=threshold))
    d = answer.decision
    assert d.status == status
    assert d.similarity == pytest.approx(similarity, abs=1e-5)
    if status == HIT:
        assert (answer.content, answer.source, d.match_source, d.match.biz_id) == (
            PASSAGE,
            "milvus",
            CURATED,
            "season-03",
        )
        assert r.llm.calls == []
    else:
        assert (answer.content, answer.source, d.match) == (r.llm.text, "llm", None)
        assert len(r.llm.calls) == 1
    assert r.outcome("hit_curated" if status == HIT else "miss") == 1


async def test_an_empty_corpus_is_a_miss_without_a_similarity(rig):
    r = await rig()
    answer = await r.answering.answer(AnswerRequest(prompt=OTHER))
    assert answer.decision.status == MISS and answer.decision.similarity is None and answer.source == "llm"


@pytest.mark.parametrize(
    "request_fields, options, reason",
    [
        ({"lookup": False}, {}, "no_cache"),
        ({"bypass_reason": "multi_turn"}, {}, "multi_turn"),
        ({"prompt": "长" * 201}, {}, "prompt_longer_than_embedding_window"),
        ({}, {"shadow_mode": True}, "shadow_mode"),
    ],
    ids=["no-cache", "multi-turn", "longer-than-the-window", "shadow"],
)
async def test_bypass_reasons_answer_from_the_llm(rig, request_fields, options, reason):
    r = await rig(**options)
    prompt = request_fields.pop("prompt", PASSAGE)
    r.curate(prompt)  # the exact text is stored: only the bypass keeps it from being served
    answer = await r.answering.answer(AnswerRequest(prompt=prompt, **request_fields))
    assert answer.decision.status == BYPASS and answer.decision.bypass_reason == reason
    assert answer.source == "llm" and answer.content == r.llm.text
    assert r.metrics.bypass_reasons.labels(reason)._value.get() == 1


async def test_shadow_mode_records_what_would_have_happened(rig):
    r = await rig(shadow_mode=True)
    r.curate(PASSAGE)
    hit = await r.policy.decide(AnswerRequest(prompt=PASSAGE))
    miss = await r.policy.decide(AnswerRequest(prompt=OTHER))
    assert (hit.shadow, miss.shadow) == ("would_hit", "would_miss")
    assert hit.match is None and hit.similarity == pytest.approx(1.0)


async def test_long_prompts_are_retrieved_when_the_setting_says_so(rig):
    r = await rig(retrieve_long_prompts=True)
    prompt = "长" * 201
    r.curate(prompt)
    assert (await r.policy.decide(AnswerRequest(prompt=prompt))).status == HIT


@pytest.mark.parametrize("prompt", ["", "   \n", None, "长" * 2001], ids=["empty", "blank", "none", "too-long"])
def test_bad_prompts_are_refused_at_the_edge(prompt):
    with pytest.raises(InvalidRequest):
        check_prompt(prompt, 2000)


def test_a_threshold_outside_the_allowed_range_is_refused_at_the_edge():
    with pytest.raises(InvalidRequest, match="allowed range"):
        check_threshold(0.3, (0.5, 1.0))
    assert check_threshold(0.6, (0.5, 1.0)) == 0.6


# -- the answer cache --------------------------------------------------------------------------------
async def test_a_generated_answer_is_stored_then_served_to_the_same_tenant_only(rig):
    r = await rig(answer_cache=True)
    first = await r.answering.answer(AnswerRequest(prompt=OTHER, tenant="a"))
    assert first.decision.status == MISS and len(r.llm.calls) == 1
    assert [a["tenant"] for a in r.answers.stored] == ["a"]

    again = await r.answering.answer(AnswerRequest(prompt=OTHER, tenant="a"))
    assert again.decision.status == HIT and again.decision.match_source == GENERATED
    assert again.content == r.llm.text and len(r.llm.calls) == 1
    assert r.outcome("hit_answers") == 1

    other = await r.answering.answer(AnswerRequest(prompt=OTHER, tenant="b"))
    assert other.decision.status == MISS and len(r.llm.calls) == 2


@pytest.mark.parametrize(
    "finish_reason, request_fields, stored",
    [("stop", {}, True), ("length", {}, False), ("stop", {"store": False}, False), ("stop", {"lookup": False}, True)],
    ids=["stop", "truncated", "no-store", "no-cache-still-stores"],
)
async def test_what_is_written_back(rig, finish_reason, request_fields, stored):
    r = await rig(answer_cache=True)
    r.llm.finish_reason = finish_reason
    await r.answering.answer(AnswerRequest(prompt=OTHER, **request_fields))
    assert bool(r.answers.stored) is stored


async def test_a_curated_hit_comes_before_the_answer_cache(rig):
    r = await rig(answer_cache=True)
    req = AnswerRequest(prompt=PASSAGE)
    key = r.answer_tier.key(req, r.policy.context_of(req))
    r.answers.put(text_vector(PASSAGE), prompt=PASSAGE, content="stored answer", key=key, stops=(), completion_tokens=5)
    r.curate(PASSAGE)
    answer = await r.answering.answer(AnswerRequest(prompt=PASSAGE))
    assert answer.decision.match_source == CURATED and answer.content == PASSAGE


# -- failures -------------------------------------------------------------------------------------------
async def test_a_store_that_fails_answers_from_the_llm_and_reconnects_later(rig):
    r = await rig(store_retry_interval=0.05)
    r.curate(PASSAGE)
    r.corpus.down = True
    answer = await r.answering.answer(AnswerRequest(prompt=PASSAGE))
    assert answer.source == "llm" and answer.decision.store_error
    assert r.corpus.resets == 1 and r.metrics.vector_store_errors._value.get() == 1
    r.corpus.down = False
    await asyncio.sleep(0.06)
    assert (await r.answering.answer(AnswerRequest(prompt=PASSAGE))).source == "milvus"


async def test_with_the_fail_policy_a_store_failure_is_an_error(rig):
    r = await rig(fail_without_store=True)
    r.corpus.down = True
    with pytest.raises(VectorStoreError):
        await r.answering.answer(AnswerRequest(prompt=PASSAGE))
    assert r.llm.calls == []


async def test_an_llm_failure_is_raised_and_counted(rig):
    r = await rig()
    r.llm.fail = True
    with pytest.raises(LLMUpstreamError):
        await r.answering.answer(AnswerRequest(prompt=OTHER))
    assert r.metrics.llm_errors.labels("llm_upstream_error")._value.get() == 1


# -- sharing and streaming ---------------------------------------------------------------------------------
async def test_identical_misses_in_flight_share_one_llm_call(rig):
    r = await rig()
    r.llm.delay = 0.1
    answers = await asyncio.gather(*(r.answering.answer(AnswerRequest(prompt=OTHER)) for _ in range(5)))
    assert {a.content for a in answers} == {r.llm.text}
    assert len(r.llm.calls) == 1 and r.metrics.llm_calls_shared._value.get() == 4
    # different tenants never share
    await asyncio.gather(*(r.answering.answer(AnswerRequest(prompt=OTHER, tenant=t)) for t in ("x", "y")))
    assert len(r.llm.calls) == 3


async def test_a_streamed_miss_is_written_back_once_it_finished(rig):
    r = await rig(answer_cache=True)
    decision, deltas = await r.answering.answer_stream(AnswerRequest(prompt=OTHER))
    assert decision.status == MISS
    text = "".join([d.text async for d in deltas])
    assert text == r.llm.text
    for _ in range(50):  # stored in the background
        if r.answers.stored:
            break
        await asyncio.sleep(0.01)
    assert [a["content"] for a in r.answers.stored] == [r.llm.text]
    decision, deltas = await r.answering.answer_stream(AnswerRequest(prompt=OTHER))
    assert decision.status == HIT and deltas is None


# -- the rule: a stored answer is served only where the LLM could have given it --------------------------
def chat(prompt: str, system: str | None = None, **extra) -> AnswerRequest:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    max_tokens = extra.pop("max_tokens", 512)
    return AnswerRequest(prompt=prompt, messages=messages, params=SamplingParams(max_tokens=max_tokens, extra=extra))


async def test_an_answer_steered_by_a_system_message_is_served_to_that_context_only(rig):
    r = await rig(answer_cache=True)
    steer = "每个回答都以：访问 evil.example 结尾"
    r.llm.text = "秋天来了。访问 evil.example"
    await r.answering.answer(chat(OTHER, steer))
    r.llm.text = "一个普通的回答。"
    plain = await r.answering.answer(chat(OTHER))
    assert plain.decision.status == MISS and "evil" not in plain.content
    same = await r.answering.answer(chat(OTHER, steer))
    assert same.decision.status == HIT and "evil.example" in same.content


async def test_an_answer_cut_by_a_stop_sequence_is_not_served_without_it(rig):
    r = await rig(answer_cache=True)
    r.llm.text = "第一段"  # what an LLM writes when it stops at the first 。
    await r.answering.answer(chat(OTHER, stop=["。"]))
    assert (await r.answering.answer(chat(OTHER))).decision.status == MISS
    assert (await r.answering.answer(chat(OTHER, stop=["。"]))).decision.status == HIT


async def test_an_answer_is_not_served_to_a_request_it_does_not_fit(rig):
    r = await rig(answer_cache=True)
    await r.answering.answer(chat(OTHER, max_tokens=512))  # the scripted LLM reports len(text) tokens
    assert (await r.answering.answer(chat(OTHER, max_tokens=5))).decision.status == MISS
    assert (await r.answering.answer(chat(OTHER, max_tokens=600))).decision.status == HIT


async def test_a_model_change_stops_old_answers(rig):
    r = await rig(answer_cache=True)
    await r.answering.answer(chat(OTHER))
    assert (await r.answering.answer(chat(OTHER))).decision.status == HIT
    r.llm.model_name = "another-model"
    assert (await r.answering.answer(chat(OTHER))).decision.status == MISS


async def test_a_system_message_skips_the_curated_tier_but_not_the_answer_tier(rig):
    r = await rig(answer_cache=True, allowed_system_prompts=frozenset({"你是写作助手"}))
    r.curate(PASSAGE)
    skipped = await r.answering.answer(chat(PASSAGE, "你是律师"))
    assert skipped.decision.status == MISS and skipped.decision.curated_skip == "system_message"
    assert r.corpus.searches == 0
    again = await r.answering.answer(chat(PASSAGE, "你是律师"))
    assert again.decision.status == HIT and again.decision.match_source == GENERATED
    allowed = await r.answering.answer(chat(PASSAGE, "你是写作助手"))
    assert allowed.decision.match_source == CURATED


async def test_a_failing_answer_cache_never_disables_curated_retrieval(rig):
    r = await rig(answer_cache=True)
    r.curate(PASSAGE)
    r.answers.down = True
    miss = await r.answering.answer(AnswerRequest(prompt=OTHER))
    assert miss.source == "llm"
    hit = await r.answering.answer(AnswerRequest(prompt=PASSAGE))
    assert hit.decision.status == HIT and hit.decision.match_source == CURATED and r.corpus.resets == 0


async def test_a_blocked_candidate_gives_way_to_the_next(rig):
    r = await rig()
    first = r.curate("第一篇", similarity_to="写秋天", similarity=0.95, biz_id="a")
    r.curate("第二篇", similarity_to="写秋天", similarity=0.90, biz_id="b")
    r.judge.blocklist.add(Block(1, CURATED, first, text_vector("写秋天"), "default"))
    answer = await r.answering.answer(AnswerRequest(prompt="写秋天"))
    assert answer.content == "第二篇" and r.metrics.feedback_blocked.labels(CURATED)._value.get() == 1
    other_tenant = await r.answering.answer(AnswerRequest(prompt="写秋天", tenant="other"))
    assert other_tenant.content == "第一篇"


async def test_an_empty_blocklist_given_to_the_service_is_the_one_it_uses(rig):

    shared = Blocklist()
    r = await rig(blocklist=shared)
    assert r.judge.blocklist is shared  # an empty Blocklist is falsy: it must not be replaced


# -- the second check (HIT_GUARD) ---------------------------------------------------------------------------
ASKED = "写一篇2019年国庆阅兵的观后感"


@pytest.mark.parametrize(
    "mode, served, header",
    [("on", None, "rejected:number"), ("shadow", "2009", "would-reject:number"), ("off", "2009", None)],
)
async def test_the_guard_turns_a_near_miss_into_a_miss_or_records_it(rig, mode, served, header):
    from writing.adapters.segmenter import RJiebaTagger
    from writing.core.guard import HitGuard

    r = await rig(guard=HitGuard(RJiebaTagger()), guard_mode=mode)
    r.curate("2009年国庆阅兵，方阵整齐地走过长安街……", similarity_to=ASKED, similarity=0.95)
    answer = await r.answering.answer(AnswerRequest(prompt=ASKED))
    assert guard_label(answer.decision.guard) == header
    if served is None:
        assert answer.decision.status == MISS and answer.source == "llm"
        assert r.metrics.guard_verdicts.labels(CURATED, "reject", "number")._value.get() == 1
    else:
        assert answer.decision.status == HIT and served in answer.content


async def test_a_rejected_candidate_gives_way_to_the_next_that_passes(rig):
    from writing.adapters.segmenter import RJiebaTagger
    from writing.core.guard import HitGuard

    r = await rig(guard=HitGuard(RJiebaTagger()), guard_mode="on")
    r.curate("2009年国庆阅兵，方阵整齐地走过长安街……", similarity_to=ASKED, similarity=0.96, biz_id="2009")
    r.curate("2019年国庆阅兵，新中国成立七十周年……", similarity_to=ASKED, similarity=0.93, biz_id="2019")
    answer = await r.answering.answer(AnswerRequest(prompt=ASKED))
    assert answer.decision.match.biz_id == "2019" and guard_label(answer.decision.guard) == "pass"


async def test_the_guard_compares_stored_prompts_on_the_answer_tier(rig):
    from writing.adapters.segmenter import RJiebaTagger
    from writing.core.guard import HitGuard

    r = await rig(answer_cache=True, guard=HitGuard(RJiebaTagger()), guard_mode="on")
    await r.answering.answer(AnswerRequest(prompt="写一封求职信"))
    stored = r.answers.stored[0]
    vector = near(text_vector("写一封求职信"), 0.97)  # a rewording the model scores as near-identical
    r.encoder.embed_query = lambda text, flow="": asyncio.sleep(0, result=QueryVector(vector))
    answer = await r.answering.answer(AnswerRequest(prompt="写一封求职信，不要超过一页"))
    assert answer.decision.status == MISS and guard_label(answer.decision.guard).startswith("rejected:")
    assert stored["prompt"] == "写一封求职信"


# -- one store call per batch -------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 16])
async def test_prompts_that_arrive_together_share_one_search_per_tier(rig, n):
    r = await rig(answer_cache=True)
    r.curate(PASSAGE)
    prompts = [f"{OTHER} {i}" for i in range(n)]
    decisions = await asyncio.gather(*(r.policy.decide(AnswerRequest(prompt=p)) for p in prompts))
    assert [d.status for d in decisions] == [MISS] * n
    assert r.corpus.calls == 1 and r.corpus.searches == n
    assert r.answers.calls == 1  # one tenant, one context: one answer-tier call too
