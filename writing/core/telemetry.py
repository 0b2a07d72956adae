"""What the core reports, as a small protocol: the core never imports a metrics library.

``writing.observability.metrics.Metrics`` implements it with Prometheus counters; ``NullMetrics`` counts
nothing (a traced decision for ``/v1/explain``, and unit tests that do not look at metrics). Every call
is made on the event loop (the thread rule in ``docs/architecture.md``).
"""

from __future__ import annotations

from typing import Protocol

from writing.core.models import CandidateVerdict, Decision


class CoreMetrics(Protocol):
    def decided(self, decision: Decision) -> None:
        """A finished decision: its outcome, bypass reason, shadow verdict, tokens avoided, stage times."""

    def judged(self, tier: str, verdict: CandidateVerdict) -> None:
        """One candidate the decision looked at: feedback blocks and the second check's verdicts."""

    def top_similarity(self, similarity: float) -> None:
        """The curated tier's top-1 similarity for a searched prompt."""

    def stage(self, stage: str, ms: float | None) -> None: ...

    def llm_shared(self) -> None:
        """A request joined an identical LLM call in flight."""

    def llm_error(self, code: str) -> None: ...

    def answer_written(self) -> None:
        """A generated answer was stored for reuse."""

    def upkeep(self, action: str, count: int) -> None:
        """Answer-store upkeep: hits written, purged, evicted."""

    def store_error(self, domain: str) -> None:
        """A call to one failure domain's store failed."""


class NullMetrics:
    """``CoreMetrics`` that counts nothing."""

    def decided(self, decision: Decision) -> None:
        return None

    def judged(self, tier: str, verdict: CandidateVerdict) -> None:
        return None

    def top_similarity(self, similarity: float) -> None:
        return None

    def stage(self, stage: str, ms: float | None) -> None:
        return None

    def llm_shared(self) -> None:
        return None

    def llm_error(self, code: str) -> None:
        return None

    def answer_written(self) -> None:
        return None

    def upkeep(self, action: str, count: int) -> None:
        return None

    def store_error(self, domain: str) -> None:
        return None
