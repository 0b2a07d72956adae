"""The verifier and the keeper over fakes (issue 27): what is drawn, the cap, the pauses, a failing judge;
a plan applied in enforce mode (tier and entries), shown only in shadow mode, audited once per change,
and never moved by open reports."""

from __future__ import annotations

import random

from tests.support.fakes import InMemoryAudit, InMemoryEvidence, InMemoryReports, ScriptedLLM
from writing.core.budget.keeper import BudgetKeeper
from writing.core.budget.labels import JUDGE, JudgeErrors, Label
from writing.core.budget.sampling import SamplingRule
from writing.core.budget.thresholds import Budget
from writing.core.budget.verifier import Candidate, Verifier, VerifyLimits, candidates_of
from writing.core.judge import CandidateJudge
from writing.core.links import Link
from writing.core.models import CURATED, AnswerRequest, CandidateVerdict, Decision, Judged, Match, TierTrace
from writing.core.reports import OPEN, Report
from writing.core.tuning import RuntimeThresholds


class Target:
    def __init__(self, threshold: float) -> None:
        self.threshold = threshold


def link() -> Link:
    return Link("records", lambda: None, retry_interval=60)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rig(*, text="否", per_minute=2, busy=0, failing=False):
    clock = Clock()
    llm = ScriptedLLM(text)
    evidence = InMemoryEvidence()
    state = {"busy": busy, "failing": failing}
    v = Verifier(
        llm=llm,
        evidence=evidence,
        link=link(),
        judge=CandidateJudge(),
        rule=SamplingRule(floor=1.0),
        limits=VerifyLimits(per_minute=per_minute, max_llm_in_flight=2, pause_after_failure=30),
        low={"curated": 0.5, "answer": 0.5},
        llm_busy=lambda: state["busy"],
        llm_failing=lambda: state["failing"],
        rng=random.Random(1),
        clock=clock,
    )
    return v, llm, evidence, clock, state


CAND = Candidate("curated", 7, 0.91, 0.9, "写一段秋天的文字", "秋天来了。", "acme")


async def drain(v: Verifier) -> None:
    while not v.queue.empty():
        c, p = v.queue.get_nowait()
        await v.verify(c, p)


async def test_a_drawn_candidate_is_judged_and_stored():
    v, llm, evidence, _, _ = rig()
    v.offer(CAND)
    await drain(v)
    (label,) = evidence.rows
    assert (label.tier, label.entry_id, label.wrong, label.source, label.sampled_with, label.tenant) == (
        "curated", 7, True, JUDGE, 1.0, "acme",
    )  # fmt: skip
    assert llm.calls[0][1]["content"].startswith("请求：写一段秋天的文字")
    assert v.entry_labels[("curated", 7)] == 1 and v.outcomes["verified"] == 1


async def test_the_cap_the_pauses_and_a_failing_judge():
    v, llm, evidence, clock, state = rig(per_minute=2)
    for _ in range(3):
        v.offer(CAND)
    assert v.queue.qsize() == 2 and v.outcomes["capped"] == 1
    await drain(v)
    clock.now += 61  # a new minute
    state["busy"] = 2  # callers keep the LLM busy: nothing is drawn into the queue
    v.offer(CAND)
    assert v.outcomes["paused"] == 1 and v.queue.empty()
    state["busy"] = 0
    llm.fail = True
    v.offer(CAND)
    await drain(v)
    assert v.outcomes["failed"] == 1 and v.paused()  # paused for VERIFY_PAUSE_AFTER_FAILURE after it
    v.offer(CAND)
    assert v.outcomes["paused"] == 2
    clock.now += 31
    assert not v.paused()
    state["failing"] = True  # the LLM's own health says failing
    assert v.paused()
    assert len(llm.calls) == 3 and len(evidence.rows) == 2


async def test_no_verdict_is_dropped_not_guessed():
    v, _, evidence, _, _ = rig(text="嗯")
    v.offer(CAND)
    await drain(v)
    assert v.outcomes["unclear"] == 1 and evidence.rows == []


def test_the_candidates_of_a_decision():
    judge = CandidateJudge()
    hit = Match(3, "b", "text", 0.93)
    below = Match(4, "c", "other", 0.80)
    ok, low = CandidateVerdict(above=True), CandidateVerdict(above=False)
    decision = Decision(tiers=[TierTrace(CURATED, 0.9, judged=[Judged(hit, ok)], looked=1, chosen=0)])
    req = AnswerRequest("写", tenant="t")
    assert [(c.tier, c.entry_id, c.threshold) for c in candidates_of(req, decision, judge)] == [("curated", 3, 0.9)]
    miss = Decision(tiers=[TierTrace("generated", 0.92, judged=[Judged(below, low)], looked=1)])
    assert [(c.tier, c.entry_id, c.similarity) for c in candidates_of(req, miss, judge)] == [("answer", 4, 0.80)]
    judge.set_entry_thresholds(CURATED, 0.9, {3: 0.95})
    (c,) = candidates_of(req, decision, judge)
    assert c.threshold == 0.95  # the entry's own
    assert judge.threshold_for(CURATED, 3, 0.97) == 0.97  # a caller's higher override wins
    assert judge.threshold_for(CURATED, 3, 0.85) == 0.95  # a lower one never


def keeper(evidence, *, mode="enforce", reports=None):
    thresholds = RuntimeThresholds(
        Target(0.75), Target(0.92), curated_default=0.75, answer_default=0.92, curated_range=(0.5, 0.99)
    )
    judge = CandidateJudge()
    audit = InMemoryAudit()
    k = BudgetKeeper(
        budgets={"curated": Budget(rate=0.02, low=0.5, high=0.99, min_labels=30)},
        evidence=evidence,
        reports=reports or InMemoryReports(),
        relabels=lambda tier: [],
        audit=audit,
        link=link(),
        judge_errors=JudgeErrors(),
        mode=mode,
        window_days=30,
        thresholds=thresholds,
        judge=judge,
    )
    return k, thresholds, judge, audit


def right_labels(n=600, entry=lambda i: i % 3) -> list[Label]:
    rng = random.Random(2)
    import time

    now = int(time.time())
    return [Label("curated", entry(i), rng.uniform(0.80, 0.99), wrong=False, ts=now) for i in range(n)]


async def test_enforce_applies_the_plan_and_audits_a_change_once():
    evidence = InMemoryEvidence()
    evidence.add(right_labels())
    k, thresholds, judge, audit = keeper(evidence)
    plans = await k.replan()
    planned = plans["curated"].plan.tier.value
    assert plans["curated"].applied and 0.80 <= planned < 0.81
    assert thresholds.state()["curated"].source == "budget" and thresholds.state()["curated"].value == planned
    await k.replan()
    assert audit.actions == ["budget.threshold"]  # a second plan that changes nothing is not audited
    own = plans["curated"].plan.entries
    assert own and all(judge.threshold_for(CURATED, e, planned) == c.value for e, c in own.items())


async def test_shadow_only_reports_and_open_reports_never_move_anything():
    evidence = InMemoryEvidence()
    evidence.add(right_labels())
    reports = InMemoryReports()
    for i in range(50):  # one tenant's unreviewed reports: wrong at every similarity
        r = Report(
            id=i + 1, ts=0, request_id=f"r{i}", tenant="noisy", actor="k", tier="curated", entry_id=0,
            similarity=0.85, verdict="wrong", note="", prompt="p", prompt_hash="h", matched="b", status=OPEN,
        )  # fmt: skip
        reports.save(r, [1.0, 0.0])
    k, thresholds, _, audit = keeper(evidence, mode="shadow", reports=reports)
    plans = await k.replan()
    quiet, _, _, _ = keeper(evidence, mode="shadow")
    assert plans["curated"].plan == (await quiet.replan())["curated"].plan
    assert not plans["curated"].applied and thresholds.state()["curated"].value == 0.75 and audit.actions == []
