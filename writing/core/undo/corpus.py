"""Undoing changes to the curated corpus: adds and imports (the passages go), edits (the old text and
biz_id come back), deletes (the passages come back, re-embedded: vectors are not journaled).

What changed since is left alone and reported: a passage edited or deleted since its add, an edited
passage changed again, a deleted text stored again meanwhile. A restored passage gets a new id (ids are
never re-used); retrieval keys that a deleted passage had are not restored (their prompts were not
journaled).
"""

from __future__ import annotations

from collections.abc import Callable

from writing.core.corpus import CorpusWriter, PassageCollision, stored_passage
from writing.core.links import Link
from writing.core.models import Passage
from writing.core.undo.entries import Conflict, JournalEntry, UndoResult

ADD_ACTIONS = ("corpus.add", "corpus.import")


def intent_of_add(passages: list[Passage], existing: dict[str, int]) -> dict:
    """An add's intent: the texts, and which were stored already (an interrupted add's undo keeps those)."""
    return {"passages": [{"content": p.content, "biz_id": p.biz_id} for p in passages], "existing": existing}


class CorpusUndo:
    actions = (*ADD_ACTIONS, "corpus.edit", "corpus.delete")

    def __init__(self, link: Link, writer: Callable[[], CorpusWriter]) -> None:
        self.link = link
        self.writer = writer  # the corpus writer (its store, and the embedding as admin work)

    async def undo(self, entry: JournalEntry) -> UndoResult:
        writer = self.writer()
        if entry.action in ADD_ACTIONS:
            return await self.link.call(lambda: self._undo_add(writer, entry))
        if entry.action == "corpus.edit":
            return await self.link.call(lambda: self._undo_edit(writer, entry))
        return await self.link.call(lambda: restore_passages(writer, entry.intent["passages"]))

    @staticmethod
    def _undo_add(writer: CorpusWriter, entry: JournalEntry) -> UndoResult:
        store, result = writer.store, UndoResult()
        passages = [Passage(**p) for p in entry.intent["passages"]]
        by_hash = {p.content_hash: p for p in passages}
        if entry.outcome is not None:
            added = {int(a["id"]): a for a in entry.outcome["added"]}
        else:  # interrupted: what is stored now of these texts, less what was stored before the add
            before = entry.intent.get("existing", {})
            now = store.ids_by_hash(sorted(by_hash))
            added = {i: {"id": i, "biz_id": by_hash[h].biz_id} for h, i in now.items() if h not in before}
        rows = {r["id"]: r for r in store.get_passages(sorted(added))}
        doomed = []
        for pid, a in sorted(added.items()):
            row = rows.get(pid)
            if row is None:
                result.conflicts.append(Conflict(f"passage {pid}", "edited or deleted since; left as it is"))
            elif stored_passage(row).content_hash not in by_hash or str(row["biz_id"]) != str(a["biz_id"]):
                result.conflicts.append(Conflict(f"passage {pid}", "changed since; left as it is"))
            else:
                doomed.append(pid)
        if doomed:
            store.delete_passages(ids=doomed)
            result.applied += [f"passage {pid} deleted" for pid in doomed]
        return result

    @staticmethod
    def _undo_edit(writer: CorpusWriter, entry: JournalEntry) -> UndoResult:
        store, result = writer.store, UndoResult()
        old_id = int(entry.intent["before"]["id"])
        before = stored_passage(entry.intent["before"])
        after = stored_passage(entry.intent["after"])
        if entry.outcome is not None:
            new_id: int | None = int(entry.outcome["id"])
        else:
            new_id = store.ids_by_hash([after.content_hash]).get(after.content_hash)
        current = store.get_passages([new_id]) if new_id is not None else []
        if not current or stored_passage(current[0]) != after:
            result.conflicts.append(Conflict(f"passage {new_id}", "changed or deleted since the edit; left as it is"))
            return result
        if new_id != old_id and store.get_passages([old_id]):  # interrupted before the old row went
            store.delete_passages(ids=[new_id])
            result.applied.append(f"passage {new_id} deleted; passage {old_id} was still stored")
            return result
        try:
            restored = writer.replace(new_id, after, before)
        except PassageCollision as exc:
            result.conflicts.append(Conflict(f"passage {exc.holder}", "holds the old text now; left as it is"))
            return result
        result.applied.append(f"passage {new_id} back to its text before the edit, as passage {restored.ids[0]}")
        return result


def restore_passages(writer: CorpusWriter, rows: list[dict]) -> UndoResult:
    """Store deleted passages again (re-embedded, under new ids); a text stored again since is reported."""
    result = UndoResult()
    passages = [stored_passage(r) for r in rows]
    if not passages:
        return result
    added = writer.add(passages)
    for row, pid, dup in zip(rows, added.ids, added.duplicate, strict=True):
        if dup:
            result.conflicts.append(Conflict(f"passage {row['id']}", f"its text is stored as passage {pid}"))
        else:
            result.applied.append(f"passage {row['id']} restored as passage {pid}")
    return result
