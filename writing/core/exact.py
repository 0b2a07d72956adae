"""The exact tier's index: in this worker's memory, the stored entries a prompt gets word for word.

A request whose last user message is identical, after ``writing.text.normalise_text`` (NFC, whitespace),
to the prompt a stored answer was written for (under the same tenant, model and context fingerprint), or
to a curated passage's text or one of its retrieval keys, is found here by the prompt's hash
(``writing.text.content_hash``), with what serving it needs (the text, the stops, the token count, the
creation time): an exact hit reads nothing from a store and embeds nothing (``tiers/exact.py``).

What fills it and keeps it current (``writing.core.exact_sync``): a load of every row at start-up; the
stores' own writes and deletions in this worker, reported by the adapters through ``watcher(domain)``
(the answering's write-back, admin deletes, the upkeep's purge and eviction, corpus adds and deletes);
and a periodic reload that brings other workers' changes (``EXACT_REFRESH_INTERVAL``).

Thread rule: only the event loop changes or reads it. A watcher called from a store's worker thread
hands the change to the loop (``call_soon_threadsafe``): it is applied before the awaiting caller
resumes, since the thread's own result reaches the loop after it. A reload started at ``since`` may
not see what this worker changed after that moment: such changes are remembered while a reload runs,
and the reload leaves them as they are (``reconcile``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

ANSWERS, CORPUS = "answers", "corpus"
KEY_HASH_CHARS = 40  # a retrieval key row stores this many hex digits of its prompt's hash


@dataclass(frozen=True, slots=True)
class ExactAnswer:
    """A stored answer as the exact tier serves it (no vector, no prompt: its hash stands for it)."""

    id: int
    prompt_hash: str  # content_hash of the prompt it was written for
    tenant: str
    model: str
    context: str  # CacheContext.fingerprint
    stops: tuple[str, ...]
    completion_tokens: int
    created_at_ms: int
    content: str


@dataclass(frozen=True, slots=True)
class ExactRow:
    """A row of the curated corpus: a passage (``passage_id == id``), or a retrieval key pointing at one
    (its ``content`` left empty: the passage's text is held once)."""

    id: int
    prompt_hash: str  # KEY_HASH_CHARS hex digits: of the passage's text, or of the key's prompt
    passage_id: int
    biz_id: str | int = ""
    content: str = ""

    @property
    def is_key(self) -> bool:
        return self.passage_id != self.id


class _Entries:
    """One store's entries, and what this worker changed while a reload runs."""

    def __init__(self) -> None:
        self.since: float | None = None  # a reload in flight started then (monotonic)
        self.changed: dict[int, float] = {}  # id -> when this worker added or removed it, during a reload

    def _mark(self, ids: Iterable[int]) -> None:
        if self.since is not None:
            now = time.monotonic()
            self.changed.update((i, now) for i in ids)

    def begin(self) -> float:
        """A reload starts now: remember this worker's changes until ``end``."""
        self.since = time.monotonic()
        self.changed = {}
        return self.since

    def end(self) -> None:
        self.since = None
        self.changed = {}

    def ids(self) -> set[int]:
        raise NotImplementedError

    def put(self, rows: Sequence) -> None:
        raise NotImplementedError

    def drop(self, ids: Iterable[int]) -> None:
        raise NotImplementedError

    def add(self, rows: Sequence) -> None:
        self._mark(r.id for r in rows)
        self.put(rows)

    def remove(self, ids: Sequence[int]) -> None:
        self._mark(ids)
        self.drop(ids)

    def reconcile_removed(self, seen: set[int], since: float) -> None:
        """Drop what the store no longer holds, except what this worker added since the reload began."""
        self.drop([i for i in self.ids() - seen if self.changed.get(i, -1.0) < since])

    def reconcile_added(self, rows: Sequence, since: float) -> None:
        """Add what the reload read, except what this worker removed since it began."""
        self.put([r for r in rows if self.changed.get(r.id, -1.0) < since])


class AnswerEntries(_Entries):
    def __init__(self) -> None:
        super().__init__()
        self.by_key: dict[tuple[str, str, str, str], tuple[ExactAnswer, ...]] = {}
        self.by_id: dict[int, ExactAnswer] = {}

    @staticmethod
    def key(a: ExactAnswer) -> tuple[str, str, str, str]:
        return (a.prompt_hash, a.tenant, a.model, a.context)

    def ids(self) -> set[int]:
        return set(self.by_id)

    def put(self, rows: Sequence[ExactAnswer]) -> None:
        for a in rows:
            if a.id in self.by_id:
                continue
            a = ExactAnswer(  # one copy of the strings many answers share
                a.id, a.prompt_hash, sys.intern(a.tenant), sys.intern(a.model), sys.intern(a.context),
                a.stops, a.completion_tokens, a.created_at_ms, a.content,
            )  # fmt: skip
            self.by_id[a.id] = a
            key = self.key(a)
            self.by_key[key] = (*self.by_key.get(key, ()), a)

    def drop(self, ids: Iterable[int]) -> None:
        for i in ids:
            a = self.by_id.pop(i, None)
            if a is None:
                continue
            key = self.key(a)
            kept = tuple(x for x in self.by_key.get(key, ()) if x.id != i)
            if kept:
                self.by_key[key] = kept
            else:
                self.by_key.pop(key, None)


class CorpusEntries(_Entries):
    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[int, ExactRow] = {}  # row id -> passage or retrieval key
        self.by_hash: dict[str, tuple[int, ...]] = {}  # prompt hash (KEY_HASH_CHARS) -> row ids
        self.keys = 0  # how many of the rows are retrieval keys

    def ids(self) -> set[int]:
        return set(self.rows)

    def put(self, rows: Sequence[ExactRow]) -> None:
        for r in rows:
            if r.id in self.rows:
                continue
            self.rows[r.id] = r
            self.keys += r.is_key
            self.by_hash[r.prompt_hash] = (*self.by_hash.get(r.prompt_hash, ()), r.id)

    def drop(self, ids: Iterable[int]) -> None:
        for i in ids:
            r = self.rows.pop(i, None)
            if r is None:
                continue
            self.keys -= r.is_key
            kept = tuple(x for x in self.by_hash.get(r.prompt_hash, ()) if x != i)
            if kept:
                self.by_hash[r.prompt_hash] = kept
            else:
                self.by_hash.pop(r.prompt_hash, None)


class Watcher:
    """What a store reports to the index (``writing.core.ports.StoreWatcher``); callable from any thread."""

    def __init__(self, index: ExactIndex, entries: _Entries) -> None:
        self._index = index
        self._entries = entries

    def added(self, rows: Sequence) -> None:
        self._index.on_loop(self._entries.add, list(rows))

    def removed(self, ids: Sequence[int]) -> None:
        self._index.on_loop(self._entries.remove, [int(i) for i in ids])


class ExactIndex:
    def __init__(self) -> None:
        self.answer_entries = AnswerEntries()
        self.corpus_entries = CorpusEntries()
        self.filled: dict[str, bool] = {ANSWERS: False, CORPUS: False}  # the first load is done
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop that owns the index (the app's); changes reported from other threads go to it."""
        self._loop = loop

    def entries(self, domain: str) -> _Entries:
        return self.answer_entries if domain == ANSWERS else self.corpus_entries

    def watcher(self, domain: str) -> Watcher:
        return Watcher(self, self.entries(domain))

    def on_loop(self, fn: Callable, *args) -> None:
        loop = self._loop
        if loop is None or _running_loop() is loop:
            fn(*args)
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the process is stopping
            loop.call_soon_threadsafe(fn, *args)

    # -- lookups (the exact tier) ------------------------------------------------------------------------
    def answers(self, prompt_hash: str, tenant: str, model: str, context: str) -> tuple[ExactAnswer, ...]:
        return self.answer_entries.by_key.get((prompt_hash, tenant, model, context), ())

    def curated(self, prompt_hash: str) -> list[tuple[ExactRow, bool]]:
        """The passages whose text, or one of whose retrieval keys, has this hash: (passage, via a key);
        a passage found both ways once, as itself."""
        c = self.corpus_entries
        found: dict[int, bool] = {}
        for row_id in c.by_hash.get(prompt_hash[:KEY_HASH_CHARS], ()):
            row = c.rows.get(row_id)
            if row is not None and c.rows.get(row.passage_id) is not None:
                found[row.passage_id] = found.get(row.passage_id, True) and row.is_key
        return [(c.rows[pid], via_key) for pid, via_key in found.items()]

    def sizes(self) -> dict[str, int]:
        c = self.corpus_entries
        return {"answers": len(self.answer_entries.by_id), "passages": len(c.rows) - c.keys, "retrieval_keys": c.keys}


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
