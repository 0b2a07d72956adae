"""The error budget's arithmetic on hand-built evidence (issue 27): the bound, the judge's correction, the
threshold sweep, the per-entry thresholds, what reports may count, and the sampling rule and cap."""

from __future__ import annotations

import random

import pytest

from writing.core.budget.bound import estimate_judge_errors, wilson_upper, wrong_rate
from writing.core.budget.from_reports import from_reports
from writing.core.budget.labels import ADMIN, EXACT, JudgeErrors, Label
from writing.core.budget.sampling import SamplingRule
from writing.core.budget.thresholds import NO_LABELS, NOT_SHOWN, WITHIN, Budget, plan
from writing.core.reports import CONFIRMED, DISMISSED, OPEN, Report
from writing.core.reviews.limits import RateLimiter

BUDGET = Budget(rate=0.02, low=0.70, high=0.98, min_labels=30, entry_min_labels=20)


def labels(n: int, *, wrong_every: int = 0, sim=(0.80, 0.99), entry=lambda i: i % 7, seed=0) -> list[Label]:
    rng = random.Random(seed)
    return [
        Label("generated", entry(i), rng.uniform(*sim), wrong=bool(wrong_every) and i % wrong_every == 0)
        for i in range(n)
    ]


def test_no_evidence_keeps_the_configured_threshold():
    chosen = plan([], BUDGET, EXACT, configured=0.92)
    assert (chosen.tier.value, chosen.tier.reason, chosen.tier.bound.upper) == (0.92, NO_LABELS, 1.0)
    few = plan(labels(10), BUDGET, EXACT, configured=0.92)
    assert (few.tier.value, few.tier.reason) == (0.92, NO_LABELS)


def test_all_wrong_goes_to_the_upper_bound():
    chosen = plan(labels(200, wrong_every=1), BUDGET, EXACT, configured=0.92)
    assert (chosen.tier.value, chosen.tier.reason) == (0.98, NOT_SHOWN)
    assert {c.value for c in chosen.entries.values()} == {0.98} and len(chosen.entries) == 7  # shown bad


def test_all_right_goes_as_low_as_the_labels_reach_and_no_lower():
    many = labels(2000, sim=(0.80, 0.99))
    chosen = plan(many, BUDGET, EXACT, configured=0.92)
    assert chosen.tier.reason == WITHIN
    lowest = min(x.similarity for x in many)
    assert lowest <= chosen.tier.value < lowest + BUDGET.step  # the last grid step above what was seen
    assert chosen.tier.value >= BUDGET.low and chosen.tier.bound.upper <= 0.02


def test_a_band_of_wrong_hits_sets_the_threshold_above_it():
    rng = random.Random(3)
    band = [Label("curated", i % 50, s := rng.uniform(0.75, 0.99), wrong=s < 0.85) for i in range(3000)]
    chosen = plan(band, BUDGET, EXACT, configured=0.75)
    # some of the band's top is let in: the budget allows 2% wrong, the bound keeps it there
    assert 0.84 <= chosen.tier.value < 0.88 and chosen.tier.bound.upper <= 0.02


def test_the_wilson_bound():
    assert wilson_upper(0.0, 100, 1.645) == pytest.approx(0.0263, abs=1e-3)
    assert wilson_upper(0.5, 0, 1.645) == 1.0
    plain = wrong_rate([Label("curated", 1, 0.9, wrong=i < 2, source=ADMIN) for i in range(100)], EXACT, 0.95)
    assert (plain.estimate, plain.effective) == (0.02, 100.0)


def test_a_judge_with_known_error_is_corrected_for():
    rng = random.Random(5)
    truth = [rng.random() < 0.05 for _ in range(20000)]
    errors = JudgeErrors(miss=0.10, false_alarm=0.10)
    judged = [t if rng.random() >= 0.10 else not t for t in truth]
    raw = wrong_rate([Label("g", 1, 0.9, wrong=j) for j in judged], EXACT, 0.95)
    fixed = wrong_rate([Label("g", 1, 0.9, wrong=j) for j in judged], errors, 0.95)
    assert raw.estimate == pytest.approx(0.14, abs=0.01)  # 5% true + 10% of the 95% right flagged
    assert fixed.estimate == pytest.approx(0.05, abs=0.01)
    assert fixed.effective == pytest.approx(20000 * 0.8**2)  # a noisy verdict counts for less
    # the judge's rates from labelled pairs, each at the safe end of its interval: misses high, false
    # alarms low (a false alarm lowers the corrected estimate)
    seen = [(True, True)] * 18 + [(True, False)] * 2 + [(False, False)] * 78 + [(False, True)] * 2
    est = estimate_judge_errors(seen)
    assert est.miss > 2 / 20 and est.false_alarm < 2 / 80
    perfect = estimate_judge_errors([(True, True)] * 50 + [(False, False)] * 50)
    assert perfect.false_alarm == 0.0 and 0 < perfect.miss < 0.06
    with pytest.raises(ValueError):
        JudgeErrors(miss=0.5, false_alarm=0.5)


def test_sampling_weights_undo_oversampling():
    rng = random.Random(9)
    # wrong hits oversampled 10x: weighed by 1/p, the estimate is the traffic's rate (1%), not 9%
    sample = []
    for _ in range(40000):
        wrong = rng.random() < 0.01
        p = 1.0 if wrong else 0.1
        if rng.random() < p:
            sample.append(Label("g", 1, 0.9, wrong=wrong, sampled_with=p))
    assert wrong_rate(sample, EXACT, 0.95).estimate == pytest.approx(0.01, abs=0.003)


def test_an_entry_with_enough_labels_gets_its_own_threshold():
    rng = random.Random(11)
    good = [Label("g", 1, rng.uniform(0.80, 0.99), wrong=False) for _ in range(400)]
    bad = [Label("g", 2, s := rng.uniform(0.80, 0.99), wrong=s < 0.95) for _ in range(400)]
    thin = [Label("g", 3, 0.9, wrong=False) for _ in range(5)]
    chosen = plan(good + bad + thin, BUDGET, EXACT, configured=0.9)
    assert chosen.entries[1].value < 0.81 and chosen.threshold_for(2) >= 0.95
    assert 3 not in chosen.entries and chosen.threshold_for(3) == chosen.tier.value


def report(rid: int, status: str, verdict: str = "wrong", tenant: str = "noisy") -> Report:
    return Report(
        id=rid, ts=0, request_id=f"r{rid}", tenant=tenant, actor="k", tier="curated", entry_id=5, similarity=0.9,
        verdict=verdict, note="", prompt="p", prompt_hash="h", matched="b", status=status,
    )  # fmt: skip


def test_one_tenants_open_reports_never_move_anything():
    base = labels(2000, sim=(0.80, 0.99))
    before = plan(base, BUDGET, EXACT, configured=0.9)
    noisy = [report(i, OPEN) for i in range(300)] + [report(1000 + i, DISMISSED) for i in range(30)]
    assert from_reports(noisy, set()) == []
    after = plan(base + from_reports(noisy, set()), BUDGET, EXACT, configured=0.9)
    assert after == before
    # a confirmed wrong report counts, as the truth; a confirmed good one does not lower anything
    counted = from_reports([report(1, CONFIRMED), report(2, CONFIRMED, "good")], set())
    assert [(x.source, x.wrong, x.entry_id) for x in counted] == [(ADMIN, True, 5)]
    assert from_reports([report(1, CONFIRMED)], relabelled_right={1}) == []


def test_the_sampling_rule_and_its_cap():
    rule = SamplingRule(floor=0.02, boost=2.0, margin=0.03)
    assert rule.probability(0.95, 0.95, 0) == 1.0  # new entry, at the threshold
    assert rule.probability(0.99, 0.90, 1000) == 0.02  # well-known entry, far above: the floor
    assert rule.probability(0.90, 0.90, 10) > rule.probability(0.99, 0.90, 10)
    assert rule.considers(0.81, 0.90, low=0.80) and rule.considers(0.95, 0.90, low=0.80)
    assert not rule.considers(0.79, 0.82, low=0.80)  # a miss below the tier's bound is never judged
    now = [0.0]
    cap = RateLimiter(3)  # the verifier's cap, one key
    assert [cap.allow("verify", now[0]) for _ in range(4)] == [True, True, True, False]
    now[0] = 60.0
    assert cap.allow("verify", now[0]) and cap.used("verify", now[0]) == 1
