"""Undoing deletes of stored answers (one, or by filter): the whole rows come back under their own ids,
their prompts embedded again (vectors are not journaled). An id in use again is left alone and reported.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import numpy as np

from writing.core.links import Disabled, Link
from writing.core.ports import QueryEncoder
from writing.core.undo.entries import Conflict, JournalEntry, UndoResult

EMBED_AT_ONCE = 32  # prompts queued on the embedding model at a time while restoring


class RestorableAnswers(Protocol):
    def existing_ids(self, ids: list[int]) -> set[int]: ...

    def restore_rows(self, rows: list[dict], vectors) -> list[int]: ...


class AnswersUndo:
    actions = ("answers.delete", "answers.delete_where")

    def __init__(self, store: RestorableAnswers | None, link: Link | Disabled, encoder: QueryEncoder) -> None:
        self.store = store
        self.link = link
        self.encoder = encoder

    async def undo(self, entry: JournalEntry) -> UndoResult:
        return await self.restore(entry.intent["answers"])

    async def restore(self, rows: list[dict]) -> UndoResult:
        """Insert these exported rows again under their ids, those whose id is free."""
        result = UndoResult()
        store = self.store
        if store is None or not rows:
            return result if not rows else _off(result, rows)
        taken = await self.link.call(lambda: store.existing_ids([int(r["id"]) for r in rows]))
        free = []
        for r in rows:
            if int(r["id"]) in taken:
                result.conflicts.append(Conflict(f"answer {r['id']}", "its id is in use again; left as it is"))
            else:
                free.append(r)
        for start in range(0, len(free), EMBED_AT_ONCE):
            part = free[start : start + EMBED_AT_ONCE]
            found = await asyncio.gather(*(self.encoder.embed_query(r["prompt"], "admin") for r in part))
            vectors = np.stack([q.vector for q in found])
            await self.link.call(lambda part=part, vectors=vectors: store.restore_rows(part, vectors))
            result.applied += [f"answer {r['id']} restored" for r in part]
        return result


def _off(result: UndoResult, rows: list[dict]) -> UndoResult:
    result.conflicts += [Conflict(f"answer {r['id']}", "the answer cache is off (ANSWER_CACHE=false)") for r in rows]
    return result
