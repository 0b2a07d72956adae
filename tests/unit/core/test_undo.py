"""The undo journal's rules with in-memory fakes: the intent is on record before a change, the outcome and
the audit entry (one id) after; a crash between them (injected) leaves an interrupted entry; an entry
undoes once; the retention purges old entries."""

from __future__ import annotations

import time

import pytest

from tests.support.fakes import InjectedCrash, InMemoryAudit, InMemoryJournal
from writing.core.links import Link
from writing.core.undo.entries import INTENT, OUTCOME, Conflict, JournalEntry, UndoResult
from writing.core.undo.service import UNDO_ACTION, ChangeLog, Undoer
from writing.errors import Conflict as ConflictError
from writing.errors import NotFound


class Counter:
    """A toy change and its undo: ``value`` goes up by the intent's ``by``, and back down."""

    actions = ("counter.add",)

    def __init__(self) -> None:
        self.value = 0

    async def undo(self, entry: JournalEntry) -> UndoResult:
        result = UndoResult()
        if entry.outcome is None:
            result.conflicts.append(Conflict("counter", "interrupted: not known whether it was applied"))
        else:
            self.value -= entry.intent["by"]
            result.applied.append(f"counter -{entry.intent['by']}")
        return result


def make(retention_days: float = 30.0):
    journal, audit = InMemoryJournal(), InMemoryAudit()
    changes = ChangeLog(
        journal, audit, Link("records", lambda: None, retry_interval=1.0), retention_days=retention_days
    )
    counter = Counter()
    return journal, audit, changes, counter, Undoer(changes, [counter])


async def change(changes: ChangeLog, counter: Counter, by: int) -> int:
    entry = await changes.begin("admin-1", "counter.add", "counter", {"by": by})
    counter.value += by
    await changes.finish(entry, "admin-1", "counter.add", "counter", {"now": counter.value}, {"by": by})
    return entry


async def test_the_intent_comes_first_then_the_outcome_and_the_audit_entry_under_one_id():
    journal, audit, changes, counter, _ = make()
    entry = await change(changes, counter, 5)
    assert [(r[0], r[1]) for r in journal.records] == [(entry, INTENT), (entry, OUTCOME)]
    assert audit.entries == [("admin-1", "counter.add", "counter", {"by": 5})]
    assert (await changes.read(entry)).state == "done"


async def test_a_crash_before_the_outcome_leaves_an_interrupted_entry_with_no_audit_entry():
    journal, audit, changes, counter, undoer = make()
    journal.crash_on = OUTCOME
    with pytest.raises(InjectedCrash):
        await change(changes, counter, 3)
    journal.crash_on = None
    assert counter.value == 3 and audit.entries == []
    (summary,), _ = await changes.list_entries(state="interrupted", after=0, limit=10)
    entry, result, audit_id = await undoer.undo(summary.id, "admin-2")
    assert entry.state == "interrupted" and result.conflicts[0].target == "counter"
    assert audit.entries[-1][1:3] == (UNDO_ACTION, str(summary.id))


async def test_an_entry_undoes_once_and_unknown_entries_and_actions_are_refused():
    journal, _, changes, counter, undoer = make()
    entry = await change(changes, counter, 2)
    await undoer.undo(entry, "admin-2")
    assert counter.value == 0
    with pytest.raises(ConflictError, match="undone already"):
        await undoer.undo(entry, "admin-2")
    assert counter.value == 0
    with pytest.raises(NotFound):
        await undoer.undo(424242, "admin-2")
    other = await changes.begin("admin-1", "labels.delete", "7", {})
    with pytest.raises(ConflictError, match="cannot be undone"):
        await undoer.undo(other, "admin-2")


async def test_the_retention_purges_old_entries_as_new_changes_begin():
    journal, _, changes, counter, _ = make(retention_days=1)
    old = await change(changes, counter, 1)
    journal.records = [(*r[:6], int(time.time()) - 2 * 86400) if r[0] == old else r for r in journal.records]
    changes._next_purge = 0.0  # due again (it runs at most hourly)
    await change(changes, counter, 1)
    with pytest.raises(NotFound, match="UNDO_RETENTION_DAYS"):
        await changes.read(old)
