"""Explain is the decision, traced: the same requests through ``decide`` and ``decide(trace=...)`` in
every mode give the same served tier and match (shadow mode: what would have been served), with the
exact tier first in the chain and without it."""

from __future__ import annotations

import pytest

from tests.support.fakes import text_vector
from writing.adapters.segmenter import RJiebaTagger
from writing.api.deps import guard_label
from writing.core.feedback import Block
from writing.core.guard import HitGuard
from writing.core.models import BYPASS, CURATED, EXACT, GENERATED, AnswerRequest, Decision
from writing.core.policy import Trace

ASKED = "写一篇2019年国庆阅兵的观后感"
PLAIN = "写一段描写秋天的文字"
STORED = "请用三句话解释TCP三次握手的过程"


def served(d: Decision) -> tuple[str, int] | None:
    """What a decision serves, or (shadow mode) would have served: (tier, id)."""
    if d.hit:
        return d.match_source, d.match.id
    for t in d.tiers:
        if t.chosen is not None:
            return t.chosen_tier, t.judged[t.chosen].match.id
    return None


REQUESTS = {
    "plain-hit": AnswerRequest(prompt=PLAIN),
    "near-miss-number": AnswerRequest(prompt=ASKED),
    "stored-answer": AnswerRequest(prompt=STORED),
    "blocked-for-tenant": AnswerRequest(prompt=PLAIN, tenant="t1"),
    "no-cache": AnswerRequest(prompt=PLAIN, lookup=False),
    "multi-turn": AnswerRequest(prompt=PLAIN, bypass_reason="multi_turn"),
    "too-long": AnswerRequest(prompt="长" * 201),
    "system-message": AnswerRequest(
        prompt=PLAIN, messages=[{"role": "system", "content": "你是律师"}, {"role": "user", "content": PLAIN}]
    ),
    "override-up": AnswerRequest(prompt=PLAIN, threshold=0.99),
}


@pytest.mark.parametrize("exact", [False, True], ids=["semantic", "exact"])
@pytest.mark.parametrize("shadow", [False, True], ids=["serving", "shadow"])
@pytest.mark.parametrize("guard_mode", ["on", "shadow", "off"])
async def test_explain_serves_what_the_decision_serves(rig, shadow, guard_mode, exact):
    r = await rig(
        answer_cache=True, shadow_mode=shadow, guard=HitGuard(RJiebaTagger()), guard_mode=guard_mode, exact=exact
    )
    autumn = r.curate("秋天的枫叶红了。", similarity_to=PLAIN, similarity=0.9, biz_id="autumn")
    r.curate("秋天的稻田金黄。", similarity_to=PLAIN, similarity=0.85, biz_id="fields")
    r.curate("2009年国庆阅兵，方阵整齐地走过长安街……", similarity_to=ASKED, similarity=0.95, biz_id="2009")
    r.curate("长" * 201, biz_id="long")
    req = AnswerRequest(prompt=STORED)
    key = r.answer_tier.key(req, r.policy.context_of(req))
    r.answers.put(text_vector(STORED), prompt=STORED, content="三次握手……", key=key, stops=(), completion_tokens=9)
    r.judge.blocklist.add(Block(7, CURATED, autumn, text_vector(PLAIN), "t1"))  # t1 reported it wrong

    for name, req in REQUESTS.items():
        decided = await r.policy.decide(req)
        traced = await r.policy.decide(req, Trace(top_k=5))
        assert (traced.status, traced.bypass_reason) == (decided.status, decided.bypass_reason), name
        assert (traced.shadow, guard_label(traced.guard), traced.store_error) == (
            decided.shadow,
            guard_label(decided.guard),
            False,
        ), name
        if shadow:
            assert decided.status == BYPASS and decided.match is None, name
            assert (decided.shadow == "would_hit") == (served(traced) is not None), name
        else:
            assert served(traced) == served(decided), name
        chain = [EXACT, CURATED, GENERATED] if exact else [CURATED, GENERATED]
        assert [t.tier for t in traced.tiers] == chain, name  # every tier, searched or not
        for t in traced.tiers:  # the decision's own walk is the trace's prefix
            mine = next((d for d in decided.tiers if d.tier == t.tier), None)
            if mine is not None:
                assert [j.match.id for j in mine.judged] == [j.match.id for j in t.judged[: len(mine.judged)]], name
                assert (mine.chosen, mine.looked) == (t.chosen, t.looked), name


async def test_the_expected_outcomes_hold(rig):
    """The table above is not vacuous: the requests reach each outcome."""
    r = await rig(answer_cache=True, guard=HitGuard(RJiebaTagger()), guard_mode="on")
    autumn = r.curate("秋天的枫叶红了。", similarity_to=PLAIN, similarity=0.9, biz_id="autumn")
    fields = r.curate("秋天的稻田金黄。", similarity_to=PLAIN, similarity=0.85, biz_id="fields")
    r.curate("2009年国庆阅兵，方阵整齐地走过长安街……", similarity_to=ASKED, similarity=0.95, biz_id="2009")
    r.judge.blocklist.add(Block(7, CURATED, autumn, text_vector(PLAIN), "t1"))
    assert served(await r.policy.decide(REQUESTS["plain-hit"], Trace())) == (CURATED, autumn)
    assert served(await r.policy.decide(REQUESTS["blocked-for-tenant"], Trace())) == (CURATED, fields)
    rejected = await r.policy.decide(REQUESTS["near-miss-number"], Trace())
    assert served(rejected) is None and guard_label(rejected.guard) == "rejected:number"
    assert (await r.policy.decide(REQUESTS["no-cache"], Trace())).tiers[0].skipped == "bypass"


async def test_shadow_mode_searches_every_tier_it_would_search(rig):
    r = await rig(answer_cache=True, shadow_mode=True)
    req = AnswerRequest(prompt=STORED)
    key = r.answer_tier.key(req, r.policy.context_of(req))
    r.answers.put(text_vector(STORED), prompt=STORED, content="三次握手……", key=key, stops=(), completion_tokens=9)
    d = await r.policy.decide(req)
    assert d.shadow == "would_hit" and d.status == BYPASS and r.answers.calls == 1
    traced = await r.policy.decide(req, True)
    assert served(traced)[0] == GENERATED


async def test_a_trace_shows_top_k_beyond_what_the_decision_looks_at_and_counts_nothing(rig):
    r = await rig()
    for i in range(6):
        r.curate(f"秋天{i}", similarity_to=PLAIN, similarity=0.95 - i * 0.05, biz_id=str(i), seed=i)
    before = r.outcome("hit_curated")
    traced = await r.policy.decide(AnswerRequest(prompt=PLAIN, threshold=0.99), Trace(top_k=6))
    curated = traced.tiers[0]
    assert len(curated.judged) == 6 and curated.looked == 1 and curated.chosen is None
    assert r.outcome("hit_curated") == before and r.outcome("miss") == 0
