"""What the change journal holds: one entry per admin change, its intent (everything needed to reverse
the change, never cut) written before the change, its outcome after, and an undo record once undone."""

from __future__ import annotations

from dataclasses import dataclass, field

INTENT, OUTCOME, UNDONE = "intent", "outcome", "undone"
# an entry's state: done (outcome written), interrupted (intent only: the change failed or the process
# died between the two; it may be partly applied), undone
DONE, INTERRUPTED = "done", "interrupted"
STATES = (DONE, INTERRUPTED, UNDONE)


@dataclass(frozen=True)
class JournalEntry:
    id: int
    ts: int
    actor: str
    action: str
    target: str
    intent: dict
    outcome: dict | None = None  # None: interrupted
    undone: dict | None = None  # the undo's report, once undone

    @property
    def state(self) -> str:
        return UNDONE if self.undone is not None else DONE if self.outcome is not None else INTERRUPTED


@dataclass(frozen=True)
class JournalSummary:
    id: int
    ts: int
    actor: str
    action: str
    target: str
    state: str
    undone_by: int | None = None


@dataclass(frozen=True)
class Conflict:
    """Something the undo left alone: what (``target``) and why."""

    target: str
    reason: str


@dataclass
class UndoResult:
    applied: list[str] = field(default_factory=list)  # what was reversed, one line per row or setting
    conflicts: list[Conflict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"applied": self.applied, "conflicts": [vars(c) for c in self.conflicts]}
