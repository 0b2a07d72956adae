"""The values the core works with: what is asked, what was found, what was decided, what is answered.

Plain dataclasses with no I/O, shared by the core, the adapters that produce them and the HTTP layer
that renders them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from writing.text import content_hash

if TYPE_CHECKING:
    from writing.core.guard import Verdict as GuardVerdict

HIT, MISS, BYPASS = "HIT", "MISS", "BYPASS"
CURATED, GENERATED = "curated", "generated"
EXACT, SEMANTIC = "exact", "semantic"  # how a hit was found (X-Match-Kind)
SOURCE_MILVUS, SOURCE_LLM = "milvus", "llm"
DEFAULT_TENANT = "default"


# -- stored things ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Match:
    """One search result: a stored text and its cosine similarity to the prompt."""

    id: int
    biz_id: str | int  # as stored: an integer in a collection made by the reference (INT64 biz_id)
    content: str
    similarity: float
    prompt: str = ""  # a stored answer: the prompt it was written for
    completion_tokens: int = 0  # a stored answer: what the LLM wrote (0: unknown, a curated passage)


@dataclass(frozen=True)
class CandidateVerdict:
    """Whether one candidate above may answer a request (``writing.core.judge.CandidateJudge``)."""

    above: bool  # at or above the tier's threshold
    serves: bool = True  # answer tier: fits the request's max_tokens and stops
    blocked: bool = False  # reported wrong for this prompt (feedback)
    guard: GuardVerdict | None = None  # the second check (None: not run)
    guard_mode: str = "off"

    @property
    def ok(self) -> bool:
        passes = self.guard is None or self.guard.ok or self.guard_mode == "shadow"
        return self.above and self.serves and not self.blocked and passes


@dataclass(frozen=True)
class CacheContext:
    """What besides the prompt an answer depends on (``writing.core.context.cache_context`` makes it)."""

    fingerprint: str  # sha256 hex of instructions + content-changing fields + greedy/sampled
    stops: tuple[str, ...]  # sorted, distinct
    max_tokens: int
    curated_skip: str | None  # why a curated passage may not answer this request (None: it may)

    def serves(self, stored_stops: tuple[str, ...], content: str) -> bool:
        """The stop-sequence half of the rule, for one stored answer that matched the fingerprint."""
        return set(stored_stops) <= set(self.stops) and not any(s in content for s in self.stops)


@dataclass(frozen=True)
class AnswerKey:
    """What a stored answer must share with a request to be served (``writing.core.context``)."""

    tenant: str
    model: str
    context: str  # CacheContext.fingerprint
    max_tokens: int


@dataclass(frozen=True)
class StoredAnswer:
    """A generated answer from the answer store, as a lookup or the admin API sees it."""

    id: int
    prompt: str
    content: str
    stops: tuple[str, ...] = ()
    similarity: float = 0.0
    model: str = ""
    tenant: str = ""
    created_at: int = 0
    hits: int = 0
    last_hit: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Passage:
    """A curated passage to store."""

    content: str
    biz_id: str | int  # a string in the service's schema; an integer read from a reference collection

    @property
    def content_hash(self) -> str:
        return content_hash(self.content)


@dataclass(frozen=True)
class QueryVector:
    """A prompt's embedding, and whether the prompt fitted the embedding model's window.

    ``truncated`` is True when the tokenizer had to cut the prompt: the vector then describes only its
    beginning, so a hit on it would be a guess (see ``RETRIEVE_LONG_PROMPTS``)."""

    vector: np.ndarray
    truncated: bool = False


# -- the LLM's side -----------------------------------------------------------------------------------
@dataclass
class SamplingParams:
    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.9
    extra: dict = field(default_factory=dict)  # other request fields passed through verbatim


@dataclass(frozen=True)
class Delta:
    """One streamed piece: text, and on the last piece the finish reason."""

    text: str
    finish_reason: str | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None


# -- one request through the decision ---------------------------------------------------------------------
@dataclass
class Timings:
    """Milliseconds per stage, in the order the stages ran: embed, then each tier's search (``search``
    for the curated tier, ``answer_cache`` for stored answers), then ``llm``."""

    stages: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, ms: float) -> None:
        self.stages[stage] = ms

    def get(self, stage: str) -> float | None:
        return self.stages.get(stage)

    def header(self) -> str:
        """A Server-Timing header value."""
        return ", ".join(f"{name};dur={value:.1f}" for name, value in self.stages.items())


@dataclass
class AnswerRequest:
    prompt: str  # what retrieval looks up: the (last) user message
    messages: list[dict] | None = None  # what the LLM sees; default: the prompt as one user message
    params: SamplingParams | None = None
    threshold: float | None = None
    lookup: bool = True  # False: Cache-Control: no-cache
    store: bool = True  # False: Cache-Control: no-store
    tenant: str = DEFAULT_TENANT
    bypass_reason: str | None = None  # set by the caller, e.g. "multi_turn"
    flow: str = ""  # who pays for the model time (the caller's key): the embedding queue serves flows in turn

    def llm_messages(self) -> list[dict]:
        return self.messages if self.messages is not None else [{"role": "user", "content": self.prompt}]

    @functools.cached_property
    def prompt_hash(self) -> str:
        """The normalised prompt's sha256 (``writing.text.content_hash``), worked out once per request: the
        exact tier looks the prompt up by it and the feedback token carries it."""
        return content_hash(self.prompt)


@dataclass(frozen=True)
class Judged:
    """One candidate a tier found, and the verdict on it."""

    match: Match  # a stored answer as a Match: its prompt and token count set, no biz_id
    verdict: CandidateVerdict
    tier: str | None = None  # whose entry it is, where the trace's tier holds several (the exact lookup)


@dataclass
class TierTrace:
    """What one tier of the chain did for a request: why it was skipped, or what it found and judged."""

    tier: str
    threshold: float
    skipped: str | None = None  # why this tier was not searched (curated_tier reasons, answer_cache_off, ...)
    judged: list[Judged] = field(default_factory=list)  # rank order; a traced decision judges them all
    looked: int = 0  # how many of ``judged`` the decision itself looked at
    chosen: int | None = None  # the index in ``judged`` of the candidate the decision chose
    store_error: bool = False  # the tier's store failed (the tier missed)

    @property
    def chosen_match(self) -> Match | None:
        return None if self.chosen is None else self.judged[self.chosen].match

    @property
    def chosen_tier(self) -> str | None:
        """The tier whose entry was chosen (X-Match-Source): the candidate's own, else this trace's."""
        return None if self.chosen is None else self.judged[self.chosen].tier or self.tier


@dataclass
class Decision:
    status: str = MISS
    match: Match | None = None
    match_source: str | None = None
    match_kind: str | None = None  # a hit's: exact (the same normalised prompt) | semantic (a vector search)
    similarity: float | None = None  # top-1 curated similarity, whenever a search ran
    bypass_reason: str | None = None
    curated_skip: str | None = None  # why the curated tier could not answer (system message, tools ...)
    guard: CandidateVerdict | None = None  # the verdict whose second check X-Cache-Guard reports
    shadow: str | None = None  # shadow mode: "would_hit" / "would_miss"
    store_error: bool = False
    vector: np.ndarray | None = None  # the prompt's embedding, when computed
    context: CacheContext | None = None  # what besides the prompt the answer depends on
    timings: Timings = field(default_factory=Timings)
    tiers: list[TierTrace] = field(default_factory=list)  # each tier's part, in chain order

    @property
    def hit(self) -> bool:
        return self.status == HIT


@dataclass
class Answer:
    content: str
    source: str  # milvus | llm
    decision: Decision
    model: str | None = None
    finish_reason: str | None = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
