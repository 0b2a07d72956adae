"""Undoing review decisions: a report confirmed, dismissed or blocked goes back to its status before (and
its block with it, here at once, on other workers at their next blocklist refresh); a deleted labelled
pair comes back whole. A report decided again since, or a label id in use again, is left alone.

Resolutions that changed another store as well (delete the entry, promote a passage, relabel) are undone
by ``writing.core.undo.resolutions``, which uses ``undo_decision`` here for the report's status.
"""

from __future__ import annotations

import dataclasses

from writing.core.feedback import Blocklist
from writing.core.links import Link
from writing.core.ports import LabelRepository, ReportRepository
from writing.core.reports import LabelledPair
from writing.core.reviews.blocks import apply_block
from writing.core.reviews.service import DECISIONS
from writing.core.undo.entries import Conflict, JournalEntry, UndoResult


class ReviewsUndo:
    actions = (*DECISIONS, "labels.delete")

    def __init__(self, reports: ReportRepository, labels: LabelRepository, link: Link, blocklist: Blocklist) -> None:
        self.reports = reports
        self.labels = labels
        self.link = link
        self.blocklist = blocklist

    async def undo(self, entry: JournalEntry) -> UndoResult:
        if entry.action == "labels.delete":
            return await self.link.call(lambda: self._undo_label_delete(entry))
        return await self.undo_decision(entry)

    async def undo_decision(self, entry: JournalEntry) -> UndoResult:
        """The report back to its status before the entry's decision, unless decided again since."""
        result, restored = await self.link.call(lambda: self._undo_decision(entry))
        if restored is not None:
            apply_block(self.blocklist, *restored)
        return result

    def _undo_decision(self, entry: JournalEntry):
        result = UndoResult()
        rid, before, decided = int(entry.intent["report"]), entry.intent["status_before"], entry.intent["status"]
        found = self.reports.get(rid)
        if found is None:
            result.conflicts.append(Conflict(f"report {rid}", "deleted since; nothing to restore"))
            return result, None
        report, vector = found
        if before == decided:
            return result, None  # the decision changed nothing
        if report.status != decided:
            result.conflicts.append(
                Conflict(
                    f"report {rid}",
                    f"now {report.status}, not {decided}: decided again since (or the decision was not stored)",
                )
            )
            return result, None
        restored = dataclasses.replace(report, status=before)
        self.reports.save(restored, vector)
        result.applied.append(f"report {rid}: back to {before}")
        return result, (restored, vector)

    def _undo_label_delete(self, entry: JournalEntry) -> UndoResult:
        result = UndoResult()
        pair = LabelledPair(**entry.intent["label"])
        if self.labels.get(pair.id) is not None:
            result.conflicts.append(Conflict(f"label {pair.id}", "a pair with this id exists again (a relabel)"))
        else:
            self.labels.save(pair)
            result.applied.append(f"label {pair.id} restored")
        return result
