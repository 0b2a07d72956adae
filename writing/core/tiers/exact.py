"""The exact tier, first in the chain: a prompt seen before word for word, served without a vector.

A request whose prompt is identical after normalisation (``writing.text.normalise_text``) to a stored
entry's is looked up in this worker's ``ExactIndex`` (``writing.core.exact``) by the prompt's hash: no
embedding (the policy embeds only when it reaches a tier that ``needs_vector``) and no vector search.
What it finds is judged by the rule the semantic tiers apply (``CandidateJudge``), as similarity 1.0:

- a curated passage, for a plain request only (``CacheContext.curated_skip``), when the prompt is the
  passage's text or one of its retrieval keys; the second check runs as it would on a search hit (an
  identical text passes it without segmenting; a retrieval key is checked against the passage);
- a stored answer under the request's key (tenant, model, context fingerprint), fitting ``max_tokens``,
  within the TTL, and passing the stop-sequence rule (``CacheContext.serves``); its second check passes
  trivially (the same prompt);
- a candidate that a feedback block may apply to (any block on the entry for this tenant, or for
  everyone) is declined here: the semantic tiers, which compare the block's vector, decide;
- a prompt longer than the embedding window is not served here (unless ``RETRIEVE_LONG_PROMPTS``), as
  the semantic path bypasses it; the tokenizer counts it once, only when an entry was found.

A hit is reported as the served entry's tier (``X-Match-Source``: curated | generated) and
``match_kind="exact"`` (``X-Match-Kind``); this tier's own name, ``exact``, is that of its step in a
trace (``POST /v1/explain``). The index answers from memory, so exact hits go on while a store is down
(as of its last refresh).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from writing.core.exact import ExactIndex
from writing.core.judge import CandidateJudge
from writing.core.models import (
    CURATED,
    EXACT,
    GENERATED,
    AnswerRequest,
    CacheContext,
    Judged,
    Match,
    StoredAnswer,
    TierTrace,
)
from writing.core.tiers.answer import AnswerTier, as_match
from writing.text import normalise_text

Candidate = tuple[str, Match | StoredAnswer, bool]  # (tier, entry, needs the second check for real)
LONG_PROMPT = "prompt_longer_than_embedding_window"  # as the semantic path's bypass says it
FITS_CACHE = 4096


class ExactTier:
    name = EXACT
    stage = "exact"  # its Server-Timing stage
    candidates = 4
    needs_vector = False
    kind = EXACT
    threshold = 1.0  # an identical prompt: at or above any threshold a tier may have (all are <= 1)

    def __init__(
        self,
        index: ExactIndex,
        judge: CandidateJudge,
        *,
        answers: AnswerTier | None,
        ttl_seconds: float,
        fits: Callable[[str], bool] | None = None,
    ) -> None:
        self.index = index
        self.judge = judge
        self.answers = answers  # None: the answer cache is off (ANSWER_CACHE=false), curated only
        self.ttl_seconds = ttl_seconds
        # whether a (normalised) prompt fits the embedding window; None: any length may be served
        # (RETRIEVE_LONG_PROMPTS). A longer prompt is bypassed by the semantic path, so here too.
        self._fits = fits
        self._fitting: OrderedDict[str, bool] = OrderedDict()  # prompt hash -> fits, the last FITS_CACHE

    async def fits(self, prompt_hash: str, prompt: str) -> bool:
        """A tokenizer count once per prompt (cached), only for a prompt found here, in a worker thread
        (tokenizing blocks: the thread rule); the cache is read and written on the loop."""
        if self._fits is None:
            return True
        known = self._fitting.get(prompt_hash)
        if known is None:
            known = await asyncio.to_thread(self._fits, normalise_text(prompt))
            self._fitting[prompt_hash] = known
            if len(self._fitting) > FITS_CACHE:
                self._fitting.popitem(last=False)
        return known

    def skip_reason(self, req: AnswerRequest, context: CacheContext) -> str | None:
        return None  # each kind of entry applies its own rule (curated: plain requests only)

    def found(self, req: AnswerRequest, context: CacheContext, h: str) -> list[Candidate]:
        """The entries stored under this prompt (hash ``h``) that the stores' own filters would return
        (the key, max_tokens, the TTL), in chain order."""
        out: list[Candidate] = []
        if context.curated_skip is None:
            for p, via_key in self.index.curated(h):
                out.append((CURATED, Match(id=p.id, biz_id=p.biz_id, content=p.content, similarity=1.0), via_key))
        if self.answers is not None:
            key = self.answers.key(req, context)
            oldest = time.time_ns() // 1_000_000 - int(self.ttl_seconds * 1000) if self.ttl_seconds > 0 else None
            for a in self.index.answers(h, key.tenant, key.model, key.context):
                if a.completion_tokens > key.max_tokens or (oldest is not None and a.created_at_ms < oldest):
                    continue
                stored = StoredAnswer(
                    id=a.id,
                    prompt=req.prompt,  # the same prompt, after normalisation
                    content=a.content,
                    stops=a.stops,
                    similarity=1.0,
                    model=a.model,
                    tenant=a.tenant,
                    created_at=a.created_at_ms // 1000,
                    completion_tokens=a.completion_tokens,
                )
                out.append((GENERATED, stored, False))
        return out

    async def lookup(
        self,
        req: AnswerRequest,
        vector: np.ndarray | None,
        context: CacheContext,
        threshold: float,
        limit: int,
        trace: bool,
    ) -> TierTrace:
        h = req.prompt_hash
        found = self.found(req, context, h)
        if not found:
            return TierTrace(EXACT, threshold)
        if not await self.fits(h, req.prompt):
            return TierTrace(EXACT, threshold, skipped=LONG_PROMPT)
        if self.judge.guard is not None and any(checked for _, _, checked in found):
            # a retrieval key: the second check segments texts, work for a worker thread (thread rule)
            judged, looked, chosen = await asyncio.to_thread(self._judge, req, context, found, threshold, trace)
        else:
            judged, looked, chosen = self._judge(req, context, found, threshold, trace)
        return TierTrace(EXACT, threshold, judged=judged, looked=looked, chosen=chosen)

    def _judge(
        self, req: AnswerRequest, context: CacheContext, found: list[Candidate], threshold: float, trace: bool
    ) -> tuple[list[Judged], int, int | None]:
        """In chain order, the first that may answer is chosen; a trace judges the rest for display."""
        judged: list[Judged] = []
        chosen: int | None = None
        for i, (tier, entry, _) in enumerate(found[: max(self.candidates, len(found) if trace else 0)]):
            if chosen is not None and not trace:
                break
            if tier == CURATED:
                verdict = self.judge.judge(CURATED, req, None, threshold, entry)
                match = entry
            else:
                verdict = self.judge.judge(GENERATED, req, None, threshold, entry, context)
                match = as_match(entry)
            judged.append(Judged(match, verdict, tier))
            if chosen is None and verdict.ok:
                chosen = i
        looked = len(judged) if chosen is None else chosen + 1
        return judged, looked, chosen

    def served(self, match: Match) -> None:
        return None  # the served entry's own tier counts the hit (the policy calls it)
