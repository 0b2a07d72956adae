"""Undoing the promotion of a stored answer into the curated corpus (``POST /v1/answers/{id}/promote``):
the retrieval key goes, the passage goes when the promotion added it (and it is unchanged since), and
the answer comes back under its id (``AnswersUndo.restore``). A passage that was stored before the
promotion stays: only the key that the promotion gave it goes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from writing.core.corpus import stored_passage
from writing.core.links import Link
from writing.core.models import Passage
from writing.core.undo.answers import AnswersUndo
from writing.core.undo.entries import Conflict, JournalEntry, UndoResult


class PromotedCorpus(Protocol):
    def ids_by_hash(self, hashes: list[str]) -> dict[str, int]: ...

    def get_passages(self, ids: list[int]) -> list[dict]: ...

    def delete_passages(self, *, ids: list[int] | None = None, biz_id: str | None = None) -> int: ...

    def delete_retrieval_key(self, passage_id: int, prompt: str) -> bool: ...


class PromoteUndo:
    actions = ("answers.promote",)

    def __init__(self, corpus: Callable[[], PromotedCorpus], link: Link, answers: AnswersUndo) -> None:
        self.corpus = corpus
        self.link = link
        self.answers = answers

    async def undo(self, entry: JournalEntry) -> UndoResult:
        result = await self.undo_passage(entry, entry.intent["answer"]["prompt"])
        restored = await self.answers.restore([entry.intent["answer"]])
        result.applied += restored.applied
        result.conflicts += restored.conflicts
        return result

    async def undo_passage(self, entry: JournalEntry, prompt: str) -> UndoResult:
        """The corpus side of a promotion (``entry.intent``: the passage and whether it was stored before;
        its outcome: the passage's id): the prompt's retrieval key goes, and the passage if it was new."""
        return await self.link.call(lambda: _undo_corpus(self.corpus(), entry, prompt))


def _undo_corpus(store: PromotedCorpus, entry: JournalEntry, prompt: str) -> UndoResult:
    result = UndoResult()
    passage = Passage(content=entry.intent["passage"]["content"], biz_id=entry.intent["passage"]["biz_id"])
    if entry.outcome is not None:
        pid: int | None = int(entry.outcome["passage_id"])
    else:
        pid = store.ids_by_hash([passage.content_hash]).get(passage.content_hash)
    if pid is None:
        return result  # interrupted before the passage was stored: nothing in the corpus to undo
    if store.delete_retrieval_key(pid, prompt):
        result.applied.append(f"passage {pid}: the promoted prompt's retrieval key removed")
    if entry.intent.get("existing") is not None:
        return result  # the passage was stored before the promotion: it stays
    rows = store.get_passages([pid])
    if not rows:
        result.conflicts.append(Conflict(f"passage {pid}", "edited or deleted since; left as it is"))
    elif stored_passage(rows[0]) != passage:
        result.conflicts.append(Conflict(f"passage {pid}", "changed since; left as it is"))
    else:
        store.delete_passages(ids=[pid])
        result.applied.append(f"passage {pid} deleted")
    return result
