"""Run-time thresholds stay within their tier's bounds (issue 26: the answer tier had none)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from writing.core.tuning import ANSWER_TIER, CURATED_TIER, RuntimeThresholds
from writing.errors import InvalidRequest
from writing.settings import Settings


@dataclass
class Target:
    threshold: float


@dataclass
class Stored:
    value: object
    ts: int = 1
    actor: str = "admin"


def thresholds(answer_range=(0.5, 1.0)) -> tuple[RuntimeThresholds, Target, Target]:
    curated, answers = Target(0.75), Target(0.92)
    runtime = RuntimeThresholds(
        curated, answers, curated_default=0.75, answer_default=0.92, curated_range=(0.5, 1.0), answer_range=answer_range
    )
    return runtime, curated, answers


def test_the_answer_threshold_is_bounded_like_the_curated_one():
    runtime, _, _ = thresholds()
    with pytest.raises(InvalidRequest, match=r"\[0.5, 1.0\]"):
        runtime.check(ANSWER_TIER, 0.01)  # accepted before: every stored answer would match every prompt
    with pytest.raises(InvalidRequest):
        runtime.check(CURATED_TIER, 0.01)
    assert runtime.check(ANSWER_TIER, 0.95) == 0.95


def test_a_stored_answer_threshold_outside_the_bounds_is_ignored():
    runtime, _, answers = thresholds(answer_range=(0.9, 1.0))
    runtime.apply({"threshold.answer": Stored(0.6)})  # e.g. stored before the bound was narrowed
    assert answers.threshold == 0.92 and runtime.state()[ANSWER_TIER].source == "environment"
    runtime.apply({"threshold.answer": Stored(0.95)})
    assert answers.threshold == 0.95


def test_the_settings_keep_the_default_within_its_bounds():
    Settings(answer_cache_threshold=0.92, answer_cache_threshold_min=0.9)
    with pytest.raises(ValueError, match="ANSWER_CACHE_THRESHOLD_MIN"):
        Settings(answer_cache_threshold=0.85, answer_cache_threshold_min=0.9)
