"""Undoing run-time threshold changes (``PUT``/``DELETE /v1/settings/threshold``): each stored override
goes back to what it was before (a value, or none: the environment's). A setting changed again since is
left alone and reported."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from writing.core.links import Link
from writing.core.undo.entries import Conflict, JournalEntry, UndoResult


class StoredValue(Protocol):
    @property
    def value(self) -> object: ...


class SettingsStore(Protocol):
    def all(self) -> dict[str, StoredValue]: ...

    def put(self, name: str, value: object, actor: str) -> object: ...

    def remove(self, name: str) -> bool: ...


def stored_values(store: SettingsStore, names: list[str]) -> dict[str, object]:
    """The stored overrides of these settings (None: not set, the environment's value applies)."""
    found = store.all()
    return {n: found[n].value if n in found else None for n in names}


class ThresholdUndo:
    actions = ("settings.threshold", "settings.threshold_reset")

    def __init__(self, store: SettingsStore, link: Link, refresh: Callable[[], Awaitable[None]]) -> None:
        self.store = store
        self.link = link
        self.refresh = refresh  # apply the stored values in this worker at once (others on their refresh)

    async def undo(self, entry: JournalEntry) -> UndoResult:
        before: dict[str, object] = entry.intent["stored_before"]
        left: dict[str, object] = entry.intent["leaves"]  # what the change stores, per setting
        actor = f"undo:{entry.id}"

        def apply() -> UndoResult:
            result = UndoResult()
            now = stored_values(self.store, list(before))
            for name, value in before.items():
                if now[name] == value:
                    continue  # as it was before: the change did not get this far, or set the same
                if now[name] != left[name]:
                    result.conflicts.append(Conflict(name, f"changed since (now {now[name]}); left as it is"))
                elif value is None:
                    self.store.remove(name)
                    result.applied.append(f"{name}: override removed (the environment's value applies)")
                else:
                    self.store.put(name, value, actor)
                    result.applied.append(f"{name}: back to {value}")
            return result

        result = await self.link.call(apply)
        await self.refresh()
        return result
