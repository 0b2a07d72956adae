"""Prometheus metrics, one registry per app (no process-global collectors)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from writing.core.models import BYPASS, CURATED, EXACT, HIT, CandidateVerdict, Decision


class BatcherCounters(Protocol):
    batches: int
    embedded: int
    cache_hits: int
    cache_misses: int
    rejected: int
    largest_batch: int


LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
SIMILARITY_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 20)) + (0.97, 0.99, 1.0)


def _bound(cache: dict[tuple, Any], metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, looked up once per label set: prometheus_client's ``labels()`` takes a
    lock and builds its key on every call, and the hot path counts every request."""
    key = (id(metric), *labels)
    child = cache.get(key)
    if child is None:
        child = cache[key] = metric.labels(*labels)
    return child


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self._children: dict[tuple, Any] = {}  # label children bound once (see _bound)
        self.requests = Counter(
            "writing_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.in_flight = Gauge("writing_requests_in_flight", "Requests being served now.", registry=r)
        self.outcomes = Counter(
            "writing_retrieval_outcomes",
            "Retrieval decisions: hit_curated, hit_answers, miss, bypass.",
            ["outcome"],
            registry=r,
        )
        self.bypass_reasons = Counter("writing_retrieval_bypass", "Why retrieval was skipped.", ["reason"], registry=r)
        self.shadow = Counter(
            "writing_shadow_decisions",
            "Shadow mode: what retrieval would have done (would_hit, would_miss).",
            ["decision"],
            registry=r,
        )
        self.similarity = Histogram(
            "writing_top1_similarity",
            "Top-1 cosine similarity in the curated corpus.",
            buckets=SIMILARITY_BUCKETS,
            registry=r,
        )
        self.stage_seconds = Histogram(
            "writing_stage_seconds",
            "Latency per stage: exact, embed, search, answer_cache, llm, total.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.llm_errors = Counter("writing_llm_errors", "LLM failures by kind.", ["kind"], registry=r)
        self.vector_store_errors = Counter(
            "writing_vector_store_errors", "Vector-store failures at request time.", registry=r
        )
        self.answer_cache_writes = Counter(
            "writing_answer_cache_writes", "Generated answers stored in the answer cache.", registry=r
        )
        self.curated_skipped = Counter(
            "writing_curated_tier_skipped",
            "Requests the curated tier could not answer: system_message, earlier_turns, tools, response_format.",
            ["reason"],
            registry=r,
        )
        self.feedback_blocked = Counter(
            "writing_feedback_blocked",
            "Candidates passed over because a report marked them wrong for this prompt, by tier.",
            ["tier"],
            registry=r,
        )
        self.guard_verdicts = Counter(
            "writing_guard_verdicts",
            "The second check before a hit, per candidate: tier, verdict (pass, reject, would_reject), reason.",
            ["tier", "verdict", "reason"],
            registry=r,
        )
        self.feedback_reports = Counter(
            "writing_feedback_reports",
            "Feedback reports by verdict, tier (curated, generated, llm) and similarity band.",
            ["verdict", "tier", "band"],
            registry=r,
        )
        self.answer_cache_upkeep = Counter(
            "writing_answer_cache_upkeep", "Answer-cache upkeep: hits written, purged, evicted.", ["action"], registry=r
        )
        self.tokens_avoided = Counter(
            "writing_tokens_avoided",
            "Completion tokens the LLM did not have to write because a hit answered, by tier (generated: the "
            "stored answer's count; curated: the passage's characters, an estimate of 1 token per character).",
            ["tier"],
            registry=r,
        )
        self.exact_hits = Counter(
            "writing_exact_hits",
            "Hits served by the exact tier (the same normalised prompt, no embedding, no search), by the served "
            "entry's tier (curated, generated); they are counted in writing_retrieval_outcomes_total too.",
            ["tier"],
            registry=r,
        )
        self.exact_index = Gauge(
            "writing_exact_index_entries",
            "Entries in this worker's exact-tier index: answers, passages, retrieval_keys.",
            ["kind"],
            registry=r,
        )
        self.llm_calls_shared = Counter(
            "writing_llm_calls_shared", "Requests that joined an identical in-flight LLM call.", registry=r
        )
        self.readiness_probes = Counter(
            "writing_readiness_probes", "Upstream probes /readyz made (at most one per interval).", registry=r
        )
        self.llm_failing = Gauge(
            "writing_llm_failing", "1 while the last LLM completions all failed (see /readyz).", registry=r
        )
        self.dependency_up = Gauge(
            "writing_dependency_up",
            "1 while /readyz's last check of a dependency (embedding_model, vector_store, llm) passed, else 0.",
            ["dependency"],
            registry=r,
        )
        self.rejected = Counter(
            "writing_rejected",
            "Requests refused before any work: overload, body size, auth.",
            ["reason"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "writing_embedding_queue_depth", "Prompts waiting for the embedding model.", registry=r
        )
        self.embedding_cache = Gauge(
            "writing_embedding_cache", "Prompt-embedding LRU lookups since start (hit, miss).", ["result"], registry=r
        )

        self.embedding_batches = Gauge(
            "writing_embedding_batches", "Forward passes the embedding batcher has run since start.", registry=r
        )
        self.embedding_texts = Gauge(
            "writing_embedding_texts", "Distinct prompts embedded by the batcher since start.", registry=r
        )
        self.embedding_largest_batch = Gauge(
            "writing_embedding_largest_batch", "The largest batch the embedding batcher has run.", registry=r
        )
        self.embedding_rejected = Gauge(
            "writing_embedding_rejected", "Prompts refused because the embedding queue was full.", registry=r
        )

        # the error budget (docs/error-budget.md)
        self.verifications = Gauge(
            "writing_verifications",
            "Candidates drawn for verification by what became of them (verified, capped, paused, dropped, "
            "failed, unclear, unsaved), since this worker started.",
            ["outcome"],
            registry=r,
        )
        self.budget_wrong_rate = Gauge(
            "writing_budget_wrong_rate",
            "The wrong-hit rate the evidence shows per budgeted tier: its estimate and upper confidence bound.",
            ["tier", "bound"],
            registry=r,
        )
        self.budget_threshold = Gauge(
            "writing_budget_threshold", "The threshold the error budget planned per tier.", ["tier"], registry=r
        )
        self.budget_labels = Gauge(
            "writing_budget_labels",
            "Labels the last plan rested on per tier, by source.",
            ["tier", "source"],
            registry=r,
        )

    def bind_verifier(self, outcomes: Callable[[], dict[str, int]], names: tuple[str, ...]) -> None:
        """Read the verifier's own counts at scrape time."""
        for name in names:
            self.verifications.labels(name).set_function(lambda n=name: outcomes().get(n, 0))

    def budget_planned(
        self, tier: str, estimate: float, upper: float, threshold: float, judge: int, admin: int
    ) -> None:
        self.budget_wrong_rate.labels(tier, "estimate").set(estimate)
        self.budget_wrong_rate.labels(tier, "upper").set(upper)
        self.budget_threshold.labels(tier).set(threshold)
        self.budget_labels.labels(tier, "judge").set(judge)
        self.budget_labels.labels(tier, "admin").set(admin)

    def bind_batcher(self, queue_depth: Callable[[], float], stats: Callable[[], BatcherCounters]) -> None:
        """Read the batcher's own counters at scrape time (nothing is counted twice on the hot path)."""
        self.queue_depth.set_function(queue_depth)
        self.embedding_cache.labels("hit").set_function(lambda: stats().cache_hits)
        self.embedding_cache.labels("miss").set_function(lambda: stats().cache_misses)
        self.embedding_batches.set_function(lambda: stats().batches)
        self.embedding_texts.set_function(lambda: stats().embedded)
        self.embedding_largest_batch.set_function(lambda: stats().largest_batch)
        self.embedding_rejected.set_function(lambda: stats().rejected)

    def bind_exact(self, sizes: Callable[[], dict[str, int]]) -> None:
        """Read the exact tier's index sizes at scrape time."""
        for kind in ("answers", "passages", "retrieval_keys"):
            self.exact_index.labels(kind).set_function(lambda k=kind: sizes()[k])

    def request_done(self, route: str, method: str, status: int) -> None:
        """One HTTP request counted; the label child is looked up once per (route, method, status), not
        through prometheus_client's locked ``labels()`` on every request."""
        _bound(self._children, self.requests, route, method, str(status)).inc()

    def observe_stage(self, stage: str, ms: float | None) -> None:
        if ms is not None:
            _bound(self._children, self.stage_seconds, stage).observe(ms / 1000)

    # -- writing.core.telemetry.CoreMetrics: what the core reports ----------------------------------------
    # every hit counts here: label children bound once (_bound), not through labels() per call
    def decided(self, decision: Decision) -> None:
        if decision.status == HIT:
            outcome = "hit_curated" if decision.match_source == CURATED else "hit_answers"
            tokens = decision.match.completion_tokens or len(decision.match.content)
            _bound(self._children, self.tokens_avoided, decision.match_source).inc(tokens)
            if decision.match_kind == EXACT:
                _bound(self._children, self.exact_hits, decision.match_source).inc()
        elif decision.status == BYPASS:
            outcome = "bypass"
            _bound(self._children, self.bypass_reasons, decision.bypass_reason or "unknown").inc()
        else:
            outcome = "miss"
        if decision.shadow:
            _bound(self._children, self.shadow, decision.shadow).inc()
        if decision.curated_skip:
            _bound(self._children, self.curated_skipped, decision.curated_skip).inc()
        _bound(self._children, self.outcomes, outcome).inc()
        for stage, ms in decision.timings.stages.items():
            self.observe_stage(stage, ms)

    def judged(self, tier: str, verdict: CandidateVerdict) -> None:
        if verdict.blocked:
            _bound(self._children, self.feedback_blocked, tier).inc()
        g = verdict.guard
        if g is None:
            return
        if g.ok:
            _bound(self._children, self.guard_verdicts, tier, "pass", "-").inc()
        elif verdict.guard_mode == "shadow":
            _bound(self._children, self.guard_verdicts, tier, "would_reject", g.reason).inc()
        else:
            _bound(self._children, self.guard_verdicts, tier, "reject", g.reason).inc()

    def top_similarity(self, similarity: float) -> None:
        self.similarity.observe(similarity)

    def stage(self, stage: str, ms: float | None) -> None:
        self.observe_stage(stage, ms)

    def llm_shared(self) -> None:
        self.llm_calls_shared.inc()

    def llm_error(self, code: str) -> None:
        self.llm_errors.labels(code).inc()

    def answer_written(self) -> None:
        self.answer_cache_writes.inc()

    def upkeep(self, action: str, count: int) -> None:
        self.answer_cache_upkeep.labels(action).inc(count)

    def store_error(self, domain: str) -> None:
        self.vector_store_errors.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
