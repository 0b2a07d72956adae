"""The interfaces where the core meets the outside world.

The decision (``writing.core.decision``) and the corpus writer depend on these protocols only; the
adapters in ``writing.adapters`` implement them with the embedding model, Milvus and an
OpenAI-compatible LLM server, and the unit tests with in-memory fakes. Index methods are synchronous
(pymilvus is); the core runs them in worker threads, so the event loop never waits on them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Protocol

import numpy as np

from writing.core.exact import ExactAnswer, ExactRow
from writing.core.models import AnswerKey, Completion, Delta, Match, Passage, QueryVector, SamplingParams, StoredAnswer
from writing.core.undo.entries import JournalEntry, JournalSummary


class QueryEncoder(Protocol):
    """Turns a prompt into a unit vector (the embedding batcher in the service)."""

    @property
    def dim(self) -> int: ...

    async def embed_query(self, text: str, flow: str = "") -> QueryVector:
        """``flow``: who pays for the model time (a key); the encoder serves flows in turn."""


class PassageEncoder(Protocol):
    """Embeds passages in bulk for storage (the embedding model itself; blocking)."""

    @property
    def dim(self) -> int: ...

    def embed_sorted(self, texts: list[str], batch_size: int) -> np.ndarray: ...


class CorpusIndex(Protocol):
    """The curated corpus as retrieval sees it."""

    kind: str

    def open(self, dim: int | None) -> None:
        """Connect and make sure the collection exists with this dimension; idempotent."""

    def reset(self) -> None:
        """Forget a failed connection; the next ``open`` connects afresh."""

    def ping(self) -> None: ...

    def search(self, vector: np.ndarray, limit: int = 1) -> list[Match]: ...

    def search_many(self, vectors: Sequence[np.ndarray], limit: int = 1) -> list[list[Match]]:
        """One call for a batch of prompts: the matches of each, best first."""


class CorpusStore(CorpusIndex, Protocol):
    """The curated corpus as the corpus writer sees it: idempotent by content hash."""

    def ids_by_hash(self, hashes: Sequence[str]) -> dict[str, int]: ...

    def insert(self, passages: Sequence[Passage], vectors: np.ndarray) -> list[int]: ...

    def settle_duplicates(self, hashes: Sequence[str]) -> dict[str, int]:
        """Keep one row per hash (the lowest id), delete the others; hash -> the id that stays."""

    def delete_passages(self, *, ids: list[int] | None = None, biz_id: str | None = None) -> int: ...

    def flush(self) -> None: ...


class AnswerIndex(Protocol):
    """Generated answers stored for reuse under the rule of ``writing.core.context``, with a time to live."""

    threshold: float

    def open(self, dim: int) -> None: ...

    def lookup(self, vector: np.ndarray, key: AnswerKey, limit: int) -> list[StoredAnswer]:
        """The nearest answers stored under ``key`` (same tenant, model and context, fitting max_tokens,
        not expired), best first; the caller applies the stop-sequence rule and the threshold."""

    def lookup_many(self, vectors: Sequence[np.ndarray], key: AnswerKey, limit: int) -> list[list[StoredAnswer]]:
        """``lookup`` for a batch of prompts under one key, in one call."""

    def put(
        self,
        vector: np.ndarray,
        *,
        prompt: str,
        content: str,
        key: AnswerKey,
        stops: tuple[str, ...],
        completion_tokens: int,
    ) -> int: ...

    def record_hit(self, answer_id: int) -> None:
        """Count a hit; cheap and in memory, written out by ``maintain``."""

    def maintain(self) -> dict[str, int]:
        """Write out hit counts, purge expired answers, evict beyond the size cap; returns what it did."""

    def flush_hits(self) -> int:
        """Write out the hit counts counted since the last write (at shutdown too); how many entries."""


class StoreWatcher(Protocol):
    """Told by a store of its own writes and deletions (the exact tier's index, ``writing.core.exact``);
    called from the store call's worker thread, after the call succeeded."""

    def added(self, rows: Sequence[ExactAnswer | ExactRow]) -> None: ...

    def removed(self, ids: Sequence[int]) -> None: ...


class ExactSource(Protocol):
    """A store as the exact tier's index reads it (``writing.core.exact_sync``): every row's id, and the
    rows themselves (all, or those ids) as the index holds them. Stored answers past the TTL are left out."""

    watcher: StoreWatcher | None

    def exact_ids(self) -> Iterator[list[int]]: ...

    def exact_rows(self, ids: Sequence[int] | None = None) -> Iterator[list[ExactAnswer]] | Iterator[list[ExactRow]]:
        """In batches; ``ids`` None: every row."""


class LLM(Protocol):
    """An OpenAI-compatible chat model (vLLM in production)."""

    @property
    def model(self) -> str: ...

    @property
    def defaults(self) -> SamplingParams: ...

    async def complete(self, messages: list[dict], params: SamplingParams | None = None) -> Completion: ...

    def stream(self, messages: list[dict], params: SamplingParams | None = None) -> AsyncIterator[Delta]: ...


# -- the records of reviews: feedback reports, labelled pairs, the audit log (``writing.core.reviews``) --
from writing.core.reports import LabelledPair, Report  # noqa: E402


class ReportRepository(Protocol):
    """Feedback reports with the reported prompt's embedding, shared by every worker; one per report id."""

    def save(self, report: Report, vector: Sequence[float]) -> None:
        """Insert or replace (a report id is one per answered request and tenant)."""

    def get(self, rid: int) -> tuple[Report, list[float]] | None: ...

    def find(self, tenant: str, request_id: str) -> Report | None:
        """The report on this tenant's answered request, if any (a retry replaces it)."""

    def list_reports(
        self,
        *,
        status: str | None = None,
        tier: str | None = None,
        verdict: str | None = None,
        after: int = 0,
        limit: int = 50,
    ) -> tuple[list[Report], int | None]:
        """Oldest first (ids are time-ordered) after the cursor ``after`` (a report id); the next cursor, or
        None at the end."""

    def report_page(
        self, *, tier: str, statuses: Sequence[str], after: int = 0, limit: int = 1000
    ) -> tuple[list[Report], int | None]:
        """One page of a tier's reports in any of ``statuses``, after the cursor (the export)."""

    def blocking(self) -> list[tuple[Report, Sequence[float]]]:
        """Every report that may block an entry ("wrong" on a hit, not dismissed), with its vector."""


class LabelRepository(Protocol):
    """Labelled pairs an admin made from reports; one per report (a relabel replaces it)."""

    def save(self, pair: LabelledPair) -> LabelledPair: ...

    def list_pairs(
        self, *, tier: str | None = None, after: int = 0, limit: int = 50
    ) -> tuple[list[LabelledPair], int | None]: ...

    def get(self, pair_id: int) -> LabelledPair | None: ...

    def delete(self, pair_id: int) -> bool:
        """False when there was no such pair."""


class AuditTrail(Protocol):
    """The audit log of admin actions."""

    def record(self, actor: str, action: str, target: str, detail: dict, entry_id: int | None = None) -> int: ...


class ReviewedCorpus(Protocol):
    """The curated corpus as a review changes it: delete a reported passage, add a retrieval key."""

    def get_passages(self, ids: list[int]) -> list[dict]: ...

    def ids_by_hash(self, hashes: Sequence[str]) -> dict[str, int]: ...

    def delete_passages(self, *, ids: list[int] | None = None, biz_id: str | None = None) -> int: ...

    def add_retrieval_key(self, passage_id: int, prompt: str, vector: Sequence[float]) -> int:
        """Let ``prompt`` (embedded as ``vector``) find passage ``passage_id``; idempotent per prompt."""


class ReviewedAnswers(Protocol):
    """The answer store as a review changes it: delete a reported stored answer."""

    def get_answer(self, answer_id: int) -> StoredAnswer | None: ...

    def export_rows(self, *, ids: Sequence[int] | None = None) -> list[dict]:
        """Whole stored rows but the vector, as the undo journal holds them."""

    def delete_answer(self, answer_id: int) -> bool: ...


class ChangeJournal(Protocol):
    """The undo journal (``writing.core.undo``): records written whole (never cut), read back by entry."""

    def write(self, entry_id: int, kind: str, actor: str, action: str, target: str, payload: dict) -> None: ...

    def read(self, entry_id: int) -> JournalEntry | None: ...

    def list_entries(
        self, *, state: str | None = None, after: int = 0, limit: int = 50
    ) -> tuple[list[JournalSummary], int | None]:
        """Oldest first after the cursor ``after`` (an entry id)."""
        ...

    def purge(self, older_than_ts: int) -> int:
        """Delete the entries begun before this Unix time (the retention); how many records went."""
        ...


# -- the error budget's evidence (``writing.core.budget``) ----------------------------------------------
from writing.core.budget.labels import Label  # noqa: E402


class EvidenceRepository(Protocol):
    """Verified labels (judge verdicts), shared by every worker and replica; time-ordered ids."""

    def add(self, labels: Sequence[Label]) -> list[int]: ...

    def labels(self, tier: str, since: int = 0) -> list[Label]:
        """Every label of a tier (``curated`` | ``answer``) stored at or after ``since`` (unix seconds)."""

    def page(
        self, *, tier: str | None = None, tenant: str | None = None, after: int = 0, limit: int = 100
    ) -> tuple[list[Label], int | None]:
        """Oldest first after the cursor (a label id); the next cursor, or None at the end."""

    def delete(self, *, tenant: str | None = None, before: int | None = None) -> int:
        """Delete a tenant's labels, or those older than ``before`` (unix seconds), or all; how many."""
