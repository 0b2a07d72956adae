"""Recent history of the service's own metrics, for the console's charts (``GET /v1/stats/history``).

Every ``STATS_HISTORY_INTERVAL`` seconds the sampler reads the process's Prometheus registry and keeps
the difference from the previous reading: requests per outcome, LLM calls, tokens the hits avoided,
second-check rejections by reason and latency percentiles per stage (interpolated within histogram
buckets, as Prometheus' ``histogram_quantile`` does). ``STATS_HISTORY_POINTS`` points are kept in
memory; the history is the answering process's own (each worker keeps one), ``/metrics`` stays the
source for fleet-wide dashboards.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from writing.observability.metrics import Metrics

OUTCOMES = ("hit_curated", "hit_answers", "miss", "bypass")
STAGES = ("embed", "search", "answer_cache", "llm", "total")
QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}


@dataclass
class Reading:
    """Cumulative values at one moment."""

    ts: float
    outcomes: dict[str, float] = field(default_factory=dict)
    tokens_avoided: float = 0.0
    rejections: dict[str, float] = field(default_factory=dict)
    buckets: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # stage -> [(le, count)]
    verified: float = 0.0
    budget: dict[str, dict[str, float]] = field(default_factory=dict)  # tier -> estimate, upper, threshold


def read(metrics: Metrics) -> Reading:
    r = Reading(ts=time.time())
    for family in metrics.registry.collect():
        for s in family.samples:
            if s.name == "writing_retrieval_outcomes_total":
                r.outcomes[s.labels["outcome"]] = s.value
            elif s.name == "writing_tokens_avoided_total":
                r.tokens_avoided += s.value
            elif s.name == "writing_guard_verdicts_total" and s.labels.get("verdict") == "reject":
                reason = s.labels["reason"]
                r.rejections[reason] = r.rejections.get(reason, 0.0) + s.value
            elif s.name == "writing_verifications" and s.labels.get("outcome") == "verified":
                r.verified = s.value
            elif s.name == "writing_budget_wrong_rate":
                r.budget.setdefault(s.labels["tier"], {})[s.labels["bound"]] = s.value
            elif s.name == "writing_budget_threshold":
                r.budget.setdefault(s.labels["tier"], {})["threshold"] = s.value
            elif s.name == "writing_stage_seconds_bucket":
                le = float(s.labels["le"])
                r.buckets.setdefault(s.labels["stage"], []).append((le, s.value))
    return r


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The q-quantile in ms from cumulative (le, count) buckets; None without observations."""
    buckets = sorted(buckets)
    total = buckets[-1][1] if buckets else 0
    if total <= 0:
        return None
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return prev_le * 1000
            width = count - prev_count
            frac = (rank - prev_count) / width if width else 1.0
            return (prev_le + (le - prev_le) * frac) * 1000
        prev_le, prev_count = le, count
    return prev_le * 1000


def _delta(now: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in now.items() if v - before.get(k, 0.0) > 0}


def point(now: Reading, before: Reading) -> dict:
    """What happened between two readings."""
    outcomes = {k: now.outcomes.get(k, 0.0) - before.outcomes.get(k, 0.0) for k in OUTCOMES}
    requests = sum(outcomes.values())
    latency = {}
    for stage in STAGES:
        old = dict(before.buckets.get(stage, []))
        diff = [(le, c - old.get(le, 0.0)) for le, c in now.buckets.get(stage, [])]
        latency[stage] = {name: quantile(q, diff) for name, q in QUANTILES.items()}
    llm_now = dict(now.buckets.get("llm", [])).get(float("inf"), 0.0)
    llm_before = dict(before.buckets.get("llm", [])).get(float("inf"), 0.0)
    return {
        "ts": int(now.ts),
        "requests": int(requests),
        **{k: int(v) for k, v in outcomes.items()},
        "hit_rate_curated": outcomes["hit_curated"] / requests if requests else None,
        "hit_rate_answers": outcomes["hit_answers"] / requests if requests else None,
        "llm_calls": int(llm_now - llm_before),
        "tokens_avoided": int(now.tokens_avoided - before.tokens_avoided),
        "guard_rejections": {k: int(v) for k, v in _delta(now.rejections, before.rejections).items()},
        "latency_ms": latency,
        "verifications": int(now.verified - before.verified),
        "budget": now.budget,
    }


class StatsHistory:
    def __init__(self, metrics: Metrics, *, interval: float, points: int) -> None:
        self.metrics = metrics
        self.interval = interval
        self._points: deque[dict] = deque(maxlen=points)
        self._last = read(metrics)
        self._start = self._last

    async def sample(self) -> None:
        """One point (a periodic job; microseconds of work on the loop)."""
        now = read(self.metrics)
        self._points.append(point(now, self._last))
        self._last = now

    def view(self, minutes: float) -> dict:
        since = time.time() - minutes * 60
        now = read(self.metrics)
        totals = point(now, Reading(ts=self._start.ts))
        return {
            "interval_s": self.interval,
            "since": int(self._start.ts),
            "totals": {
                k: v
                for k, v in totals.items()
                if k not in ("ts", "latency_ms", "hit_rate_curated", "hit_rate_answers", "budget")
            },
            "points": [p for p in self._points if p["ts"] >= since],
        }
