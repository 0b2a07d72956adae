"""Recording admin changes for undo, and undoing them.

``ChangeLog`` writes a change's intent to the journal before the change and its outcome (with the audit
entry, under the same id) after it: a process that dies between the two leaves an interrupted entry,
which can be listed and undone like a finished one. ``Undoer`` reads an entry back and hands it to the
handler for its action (one per kind of change, ``writing.core.undo.corpus`` and its siblings), which
reverses what it can and reports conflicts instead of overwriting; the undo is audited in turn.

Every journal call goes through the records' link (``writing.core.links``): in a worker thread, a 503
when the records store is down, so a change is never made without its intent on record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Protocol

from writing.core.ids import time_ordered_id
from writing.core.links import Link
from writing.core.ports import AuditTrail, ChangeJournal
from writing.core.undo.entries import (
    INTENT,
    OUTCOME,
    UNDONE,
    JournalEntry,
    JournalSummary,
    UndoResult,
)
from writing.errors import Conflict, NotFound

logger = logging.getLogger(__name__)

PURGE_EVERY_S = 3600.0  # the retention is applied at most this often per process, as changes begin
UNDO_ACTION = "audit.undo"


class ChangeLog:
    def __init__(self, journal: ChangeJournal, audit: AuditTrail, link: Link, *, retention_days: float) -> None:
        self.journal = journal
        self.audit = audit
        self.link = link
        self.retention_s = retention_days * 86400
        self._next_purge = 0.0

    async def begin(self, actor: str, action: str, target: str, intent: dict) -> int:
        """Write the intent (what reverses the change, whole); the entry's id. Call before the change."""
        entry_id = time_ordered_id()
        purge_before = self._purge_due()

        def write() -> None:
            if purge_before is not None:
                purged = self.journal.purge(purge_before)
                if purged:
                    logger.info("undo journal: %d records past the retention purged", purged)
            self.journal.write(entry_id, INTENT, actor, action, target, intent)

        await self.link.call(write)
        return entry_id

    async def finish(self, entry_id: int, actor: str, action: str, target: str, outcome: dict, detail: dict) -> None:
        """Write the outcome, then the audit entry (``detail``: what the listing shows) under the same id."""

        def write() -> None:
            self.journal.write(entry_id, OUTCOME, actor, action, target, outcome)
            self.audit.record(actor, action, target, detail, entry_id=entry_id)

        await self.link.call(write)

    async def read(self, entry_id: int) -> JournalEntry:
        entry = await self.link.call(lambda: self.journal.read(entry_id))
        if entry is None:
            raise NotFound(f"no journal entry {entry_id} (never journaled, or past UNDO_RETENTION_DAYS)")
        return entry

    async def list_entries(
        self, *, state: str | None, after: int, limit: int
    ) -> tuple[list[JournalSummary], int | None]:
        return await self.link.call(lambda: self.journal.list_entries(state=state, after=after, limit=limit))

    def _purge_due(self) -> int | None:
        if self.retention_s <= 0:
            return None
        now = time.monotonic()
        if now < self._next_purge:
            return None
        self._next_purge = now + PURGE_EVERY_S
        return int(time.time() - self.retention_s)


class UndoHandler(Protocol):
    """Reverses one kind of change from its journal entry (an interrupted one too: no outcome)."""

    actions: tuple[str, ...]

    async def undo(self, entry: JournalEntry) -> UndoResult: ...


class Undoer:
    def __init__(self, changes: ChangeLog, handlers: Sequence[UndoHandler]) -> None:
        self.changes = changes
        self._handlers = {action: h for h in handlers for action in h.actions}
        self._lock = asyncio.Lock()  # one undo at a time in this process: two of one entry never interleave

    @property
    def actions(self) -> list[str]:
        return sorted(self._handlers)

    async def undo(self, entry_id: int, actor: str) -> tuple[JournalEntry, UndoResult, int]:
        """Undo an entry; the entry, what was done and left alone, and the id of the undo's audit entry."""
        async with self._lock:
            entry = await self.changes.read(entry_id)
            if entry.undone is not None:
                raise Conflict(f"entry {entry_id} was undone already (audit entry {entry.undone.get('by')})")
            handler = self._handlers.get(entry.action)
            if handler is None:
                raise Conflict(f"{entry.action} cannot be undone from the journal; undoable: {', '.join(self.actions)}")
            result = await handler.undo(entry)
            audit_id = time_ordered_id()
            report = {"by": audit_id, "actor": actor, **result.as_dict()}
            detail = {"undone": entry_id, "action": entry.action, **result.as_dict()}

            def write() -> None:
                self.changes.journal.write(entry_id, UNDONE, actor, entry.action, entry.target, report)
                self.changes.audit.record(actor, UNDO_ACTION, str(entry_id), detail, entry_id=audit_id)

            await self.changes.link.call(write)
            logger.info(
                "undo of %s %d: %d applied, %d conflicts",
                entry.action,
                entry_id,
                len(result.applied),
                len(result.conflicts),
            )
            return entry, result, audit_id
