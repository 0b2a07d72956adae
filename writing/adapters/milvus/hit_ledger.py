"""Hit counts of stored answers, one row per (writer, answer): ``<answers collection>_hits``.

Every process counts its hits in memory and writes them out with the answer cache's upkeep. Adding
them to the answer's own row (read, add, rewrite) loses counts when two replicas flush the same answer
at once (each writes its own sum over the other's), and can bring back an answer deleted between the
read and the write (the rewrite is a whole row). Here each process is a *writer* with a random id and
owns its rows alone: a row holds that writer's running total for one answer since the writer started,
and is overwritten only by it (an upsert of a known total, no read). Another replica's flush touches
other rows, so nothing is lost; a flush never writes the answer, so nothing comes back.

An answer's hits are the hits on its own row (kept from before this ledger, or restored by an undo)
plus the sum over its ledger rows; its last hit is the latest of them. Rows go with their answer (its
deletion, the TTL purge, the eviction), whoever deletes it; a writer finds its row gone at its next write
and starts its total again from what it had not written (the rest went with the answer, or into the
row an undo restored). A flush racing a deletion can leave a row for an answer that is gone, which the
upkeep sweeps (``sweep``). The ledger holds at most one row per process that hit an answer while that
answer lives (the TTL bounds it).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence

from writing.adapters.milvus.collection import CollectionSpec, MilvusCollection, MilvusConnection, ScalarField
from writing.adapters.milvus.records_base import marker_vector, open_once

LEDGER_SUFFIX = "_hits"
LEDGER_SPEC = CollectionSpec(
    vector_field="v",
    fields=(
        ScalarField("answer_id", "int64"),
        ScalarField("writer", "varchar", 32),
        ScalarField("hits", "int64"),
        ScalarField("last_hit", "int64"),  # milliseconds
    ),
    auto_id=False,
)
CHUNK = 1000  # ids per ``in [...]`` filter
READ_BATCH = 2000


def row_id(writer: str, answer_id: int) -> int:
    """The row of one writer's count for one answer: a stable 63-bit id, so a rewrite replaces it."""
    digest = hashlib.blake2b(f"{writer}:{answer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << 63) - 1) or 1


def _in(ids: Sequence[int]) -> Iterable[str]:
    for start in range(0, len(ids), CHUNK):
        yield f"answer_id in [{', '.join(map(str, ids[start : start + CHUNK]))}]"


class HitLedger:
    """This process's writer of hit counts, and the reader of every writer's. Thread-safe."""

    def __init__(self, connection: MilvusConnection, collection: str) -> None:
        self._coll = MilvusCollection(connection, collection, LEDGER_SPEC)
        self.writer = secrets.token_hex(8)
        self._totals: dict[int, tuple[int, int]] = {}  # answer id -> (hits since this writer began, last hit)
        self._written: dict[int, int] = {}  # answer id -> the total its row held after this writer's last write
        self._dirty: set[int] = set()  # answers whose total is not written yet (a failed write is retried)
        self._lock = threading.Lock()

    def open(self) -> None:
        open_once(self._coll)

    def add(self, counted: dict[int, tuple[int, int]]) -> int:
        """Fold hits counted in memory ({answer id: (hits, last hit ms)}) into this writer's totals and write
        every total not written yet; how many rows were written. A failed write raises and is retried by
        the next call (the totals keep the hits). Called by one thread at a time (the upkeep)."""
        with self._lock:
            for answer_id, (n, last) in counted.items():
                total, latest = self._totals.get(answer_id, (0, 0))
                self._totals[answer_id] = (total + n, max(latest, last))
            self._dirty |= set(counted)
            dirty = sorted(self._dirty)
            written = {a: self._written.get(a, 0) for a in dirty}
        if not dirty:
            return 0
        self.open()
        present = self._present([a for a in dirty if written[a]])
        with self._lock:
            rows = []
            for answer_id in dirty:
                if answer_id not in self._totals:  # forgotten meanwhile
                    continue
                total, last = self._totals[answer_id]
                if written[answer_id] and answer_id not in present:
                    # the row was removed with its answer (deleted, perhaps restored by an undo with the hits
                    # counted so far): only what this writer had not written is new
                    total -= written[answer_id]
                    self._totals[answer_id] = (total, last)
                    self._written[answer_id] = 0
                rows.append(self._row(answer_id, total, last))
        if rows:
            self._coll.upsert(rows)
        with self._lock:
            self._dirty -= set(dirty)
            for row in rows:
                if row["answer_id"] in self._totals:
                    self._written[row["answer_id"]] = row["hits"]
        return len(rows)

    def _present(self, answer_ids: Sequence[int]) -> set[int]:
        """Which of these answers still have this writer's row."""
        found: set[int] = set()
        by_row = {row_id(self.writer, a): a for a in answer_ids}
        ids = list(by_row)
        for start in range(0, len(ids), CHUNK):
            expr = f"id in [{', '.join(map(str, ids[start : start + CHUNK]))}]"
            found |= {by_row[int(r["id"])] for r in self._coll.query(expr, ["id"])}
        return found

    def _row(self, answer_id: int, hits: int, last_hit: int) -> dict:
        return {
            "id": row_id(self.writer, answer_id),
            "v": marker_vector(),
            "answer_id": answer_id,
            "writer": self.writer,
            "hits": hits,
            "last_hit": last_hit,
        }

    def counts(self, answer_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """{answer id: (hits over every writer, last hit ms)} for those of these answers that were hit."""
        out: dict[int, tuple[int, int]] = {}
        if not answer_ids:
            return out
        self.open()
        for expr in _in(list(answer_ids)):
            for rows in self._coll.iterate(["answer_id", "hits", "last_hit"], READ_BATCH, expr=expr):
                self._fold(out, rows)
        return out

    def all_counts(self) -> dict[int, tuple[int, int]]:
        """The same for every answer in the ledger (the eviction's order)."""
        out: dict[int, tuple[int, int]] = {}
        self.open()
        for rows in self._coll.iterate(["answer_id", "hits", "last_hit"], READ_BATCH):
            self._fold(out, rows)
        return out

    @staticmethod
    def _fold(out: dict[int, tuple[int, int]], rows: list[dict]) -> None:
        for r in rows:
            answer_id = int(r["answer_id"])
            hits, last = out.get(answer_id, (0, 0))
            out[answer_id] = (hits + int(r["hits"]), max(last, int(r["last_hit"])))

    def forget(self, answer_ids: Sequence[int]) -> None:
        """Remove the rows of these answers (they were deleted), every writer's."""
        if not answer_ids:
            return
        with self._lock:
            for answer_id in answer_ids:
                self._totals.pop(answer_id, None)
                self._written.pop(answer_id, None)
                self._dirty.discard(answer_id)
        self.open()
        for expr in _in(list(answer_ids)):
            self._coll.delete(expr=expr)

    def sweep(self, existing: Callable[[Sequence[int]], set[int]]) -> int:
        """Remove the rows of answers that no longer exist (``existing`` says which ids do), left by a flush
        that raced the answer's deletion; how many answers' rows went. Then drop this writer's totals whose
        row is gone (its answer deleted through another replica, purged or evicted) and that have nothing
        left to write: they would otherwise be kept for the process's life. One read of the ledger."""
        self.open()
        counted: set[int] = set()
        mine: set[int] = set()
        for rows in self._coll.iterate(["answer_id", "writer"], READ_BATCH):
            for r in rows:
                counted.add(int(r["answer_id"]))
                if r["writer"] == self.writer:
                    mine.add(int(r["answer_id"]))
        alive = existing(sorted(counted))
        gone = sorted(counted - alive)
        self.forget(gone)
        with self._lock:
            for answer_id in [a for a in self._totals if a not in mine and a not in self._dirty]:
                del self._totals[answer_id]
                self._written.pop(answer_id, None)
        return len(gone)
