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
        if candidate.similarity < threshold:
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
