"""Undoing a delete of the error budget's evidence: the labels come back whole (under new ids; a label
has no other identity), so the budget's next plan counts them again. An interrupted delete may have
deleted nothing: only the labels no longer stored come back."""

from __future__ import annotations

from writing.core.budget.labels import Label
from writing.core.links import Link
from writing.core.ports import EvidenceRepository
from writing.core.undo.entries import JournalEntry, UndoResult

PAGE = 2000


class EvidenceUndo:
    actions = ("evidence.delete",)

    def __init__(self, evidence: EvidenceRepository, link: Link) -> None:
        self.evidence = evidence
        self.link = link

    async def undo(self, entry: JournalEntry) -> UndoResult:
        return await self.link.call(lambda: self._restore(entry))

    def _restore(self, entry: JournalEntry) -> UndoResult:
        labels = [Label(**x) for x in entry.intent["labels"]]
        if entry.outcome is None:  # interrupted: keep out what is still stored
            still: set[int] = set()
            after: int | None = 0
            while after is not None:
                items, after = self.evidence.page(tenant=entry.intent.get("tenant"), after=after, limit=PAGE)
                still |= {x.id for x in items}
            labels = [x for x in labels if x.id not in still]
        self.evidence.add([Label(**{**vars(x), "id": 0}) for x in labels])
        return UndoResult(applied=[f"{len(labels)} labels restored"])
