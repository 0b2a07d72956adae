"""Undoing report resolutions that changed another store as well as the report: the deleted passage or
stored answer comes back (``restore_passages``, ``AnswersUndo.restore``), a promoted passage loses the
reported prompt's retrieval key and goes if the promotion added it (``PromoteUndo.undo_passage``), a
relabel's pair goes (or the pair it replaced comes back). Then the report goes back to its status before
(``ReviewsUndo.undo_decision``). Each part reports what changed since instead of overwriting it.
"""

from __future__ import annotations

from collections.abc import Callable

from writing.core.corpus import CorpusWriter
from writing.core.links import Link
from writing.core.ports import LabelRepository
from writing.core.reports import LabelledPair
from writing.core.reviews.service import RESOLUTIONS
from writing.core.undo.answers import AnswersUndo
from writing.core.undo.corpus import restore_passages
from writing.core.undo.entries import Conflict, JournalEntry, UndoResult
from writing.core.undo.promote import PromoteUndo
from writing.core.undo.reviews import ReviewsUndo


class ResolutionUndo:
    actions = RESOLUTIONS

    def __init__(
        self,
        *,
        decisions: ReviewsUndo,
        answers: AnswersUndo,
        promoted: PromoteUndo,
        corpus_link: Link,
        writer: Callable[[], CorpusWriter],
        labels: LabelRepository,
        records_link: Link,
    ) -> None:
        self.decisions = decisions
        self.answers = answers
        self.promoted = promoted
        self.corpus_link = corpus_link
        self.writer = writer
        self.labels = labels
        self.records_link = records_link

    async def undo(self, entry: JournalEntry) -> UndoResult:
        intent = entry.intent
        if entry.action == "feedback.delete_entry":
            if "passages" in intent:
                writer = self.writer()
                result = await self.corpus_link.call(lambda: restore_passages(writer, intent["passages"]))
            else:
                result = await self.answers.restore(intent["answers"])
        elif entry.action == "feedback.promote":
            result = await self.promoted.undo_passage(entry, intent["prompt"])
        else:
            result = await self.records_link.call(lambda: self._undo_relabel(intent))
        status = await self.decisions.undo_decision(entry)
        result.applied += status.applied
        result.conflicts += status.conflicts
        return result

    def _undo_relabel(self, intent: dict) -> UndoResult:
        result = UndoResult()
        made = LabelledPair(**intent["label"])
        now = self.labels.get(made.id)
        if now is not None and now != made:
            result.conflicts.append(Conflict(f"label {made.id}", "relabelled again since; left as it is"))
        elif intent["label_before"] is not None:
            self.labels.save(LabelledPair(**intent["label_before"]))
            result.applied.append(f"label {made.id}: back to the pair before the relabel")
        elif now is not None:
            self.labels.delete(made.id)
            result.applied.append(f"label {made.id} deleted")
        return result
