"""Whether one candidate may answer a request: the rule every tier applies to what it found.

A candidate answers when it is at or above the tier's threshold, (stored answers) fits the request's
context (``writing.core.context``), is not reported wrong for this prompt (``writing.core.feedback``)
and passes the second check (``writing.core.guard``, ``HIT_GUARD``; in shadow mode the check only says
what it would have rejected). Without the prompt's vector (the exact tier) a candidate counts as blocked
when any block on it could apply to the tenant: the semantic tiers, which have the vector, then decide.
No side effects: it runs in the search's worker thread and returns a verdict; the decision records
what it used on the event loop.
"""

from __future__ import annotations

import numpy as np

from writing.core.feedback import Blocklist
from writing.core.guard import HitGuard
from writing.core.models import CURATED, AnswerRequest, CacheContext, CandidateVerdict, Match, StoredAnswer


class CandidateJudge:
    def __init__(self, blocklist: Blocklist | None = None, guard: HitGuard | None = None, guard_mode: str = "off"):
        self.blocklist = blocklist if blocklist is not None else Blocklist()  # an empty one is falsy
        self.guard = guard if guard_mode != "off" else None
        self.guard_mode = guard_mode
        # the error budget's per-entry thresholds (writing.core.budget.keeper): tier -> (the tier's
        # budgeted threshold, entry id -> its own); replaced whole, so a reader sees one plan or the next
        self._entries: dict[str, tuple[float, dict[int, float]]] = {}

    def set_entry_thresholds(self, tier: str, tier_value: float | None, entries: dict[int, float]) -> None:
        """The budget's per-entry thresholds for a tier (``curated`` | ``generated``); None clears them."""
        plans = dict(self._entries)
        if tier_value is None or not entries:
            plans.pop(tier, None)
        else:
            plans[tier] = (tier_value, dict(entries))
        self._entries = plans

    def threshold_for(self, tier: str, entry_id: int, threshold: float) -> float:
        """The threshold a candidate is held to: its own budgeted one where it has one. A caller's override
        (a threshold above the tier's budgeted one) may raise it, never lower it."""
        found = self._entries.get(tier)
        own = found[1].get(entry_id) if found is not None else None
        if own is None:
            return threshold
        return own if threshold <= found[0] else max(own, threshold)

    def judge(
        self,
        tier: str,
        req: AnswerRequest,
        vector: np.ndarray | None,
        threshold: float,
        candidate: Match | StoredAnswer,
        context: CacheContext | None = None,
    ) -> CandidateVerdict:
        """Thread-safe: reads the blocklist's current snapshot and the guard's locked cache only."""
        if candidate.similarity < self.threshold_for(tier, candidate.id, threshold):
            return CandidateVerdict(above=False)
        if context is not None and not context.serves(candidate.stops, candidate.content):
            return CandidateVerdict(above=True, serves=False)
        if vector is None:  # no vector to compare with a block's (the exact tier): any block that may apply
            if self.blocklist.may_block(tier, candidate.id, req.tenant):
                return CandidateVerdict(above=True, blocked=True)
        elif self.blocklist.blocks(tier, candidate.id, vector, req.tenant):
            return CandidateVerdict(above=True, blocked=True)
        if self.guard is None:
            return CandidateVerdict(above=True)
        text = candidate.content if tier == CURATED else candidate.prompt
        return CandidateVerdict(above=True, guard=self.guard.check(req.prompt, text, tier), guard_mode=self.guard_mode)
