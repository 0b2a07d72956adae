"""Write-back cache of generated answers, in its own collection ``<collection>_answers_v3``.

An LLM answer that finished normally is stored with the embedding of the *prompt* that produced it,
the prompt itself and its hash (``prompt_hash``: sha256 of the normalised prompt, the exact tier's key),
and what the rule of ``writing.core.context`` compares: the tenant, the served model, the context
fingerprint, the stop sequences and the answer's length in tokens. A lookup filters
on all of them but the stops (the core applies that rule) and on the TTL. Hits are counted in memory
and written out by ``maintain`` (with the expiry purge and the size cap, least recently hit first) to
a ledger beside the collection, one row per process and answer (``writing.adapters.milvus.hit_ledger``:
replicas never overwrite each other's counts), so the hit path never writes and an answer's row is
written once. Ids are chosen here (not by Milvus); times are in milliseconds (the order of hits within
a second decides evictions). The curated collection is never written to from here.
Implements ``writing.core.ports.AnswerIndex``; the admin API uses the listing and deletion methods.

Its writes and deletions (the write-back, admin deletes, the purge and the eviction) are told to the
``watcher`` (the exact tier's index, ``writing.core.exact``) once they succeeded.

``prompt_hash`` is new after 1.3 (CHANGELOG.md, "From 1.3"): answers of ``<collection>_answers_v2``
are copied into this collection by ``python ingest.py --migrate-answers``
(``writing.adapters.milvus.answers_migration``). Earlier versions stored answers in
``<collection>_answers`` without the context: those are never served.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence

from writing.adapters.milvus.answer_rows import AnswerIds, ago_ms, evictions, now_ms
from writing.adapters.milvus.collection import CollectionSpec, MilvusCollection, MilvusConnection, ScalarField, quote
from writing.adapters.milvus.hit_ledger import LEDGER_SUFFIX, HitLedger
from writing.core.exact import ExactAnswer
from writing.core.models import AnswerKey, StoredAnswer
from writing.core.ports import StoreWatcher
from writing.errors import VectorStoreError
from writing.text import content_hash

logger = logging.getLogger(__name__)

VECTOR_FIELD = "prompt_vector"
COLLECTION_SUFFIX = "_answers_v3"
ANSWERS_SPEC = CollectionSpec(
    vector_field=VECTOR_FIELD,
    fields=(
        ScalarField("prompt", "varchar", 65535),
        ScalarField("prompt_hash", "varchar", 64),
        ScalarField("content_full", "varchar", 65535),
        ScalarField("model", "varchar", 256),
        ScalarField("tenant", "varchar", 128),
        ScalarField("context", "varchar", 64),
        ScalarField("stops", "varchar", 8192),
        ScalarField("completion_tokens", "int64"),
        ScalarField("created_at", "int64"),
        ScalarField("hits", "int64"),  # hits counted before the ledger, or restored by an undo
        ScalarField("last_hit", "int64"),
    ),
    auto_id=False,
)
FIELDS = [f.name for f in ANSWERS_SPEC.fields]
LIST_FIELDS = ["id", *FIELDS]
EXACT_FIELDS = ["id", "prompt_hash", "tenant", "model", "context", "stops", "completion_tokens", "created_at"]
SCAN_LIMIT = 5000  # rows one listing page may read while filtering by text
DELETE_CHUNK = 1000
EXACT_BATCH = 2000  # rows per read while the exact tier's index loads


def _answer(row: dict, similarity: float = 0.0) -> StoredAnswer:
    return StoredAnswer(
        id=int(row["id"]),
        prompt=row.get("prompt", ""),
        content=row.get("content_full", ""),
        stops=tuple(json.loads(row.get("stops") or "[]")),
        similarity=similarity,
        model=row.get("model", ""),
        tenant=row.get("tenant", ""),
        created_at=int(row.get("created_at", 0)) // 1000,
        hits=int(row.get("hits", 0)),
        last_hit=int(row.get("last_hit", 0)) // 1000,
        completion_tokens=int(row.get("completion_tokens", 0)),
    )


def _exact(row: dict) -> ExactAnswer:
    return ExactAnswer(
        id=int(row["id"]),
        prompt_hash=row.get("prompt_hash", ""),
        tenant=row.get("tenant", ""),
        model=row.get("model", ""),
        context=row.get("context", ""),
        stops=tuple(json.loads(row.get("stops") or "[]")),
        completion_tokens=int(row.get("completion_tokens", 0)),
        created_at_ms=int(row.get("created_at", 0)),
        content=row.get("content_full", ""),
    )


class MilvusAnswerStore:
    def __init__(
        self,
        connection: MilvusConnection,
        collection: str,
        *,
        threshold: float,
        ttl_seconds: float,
        max_entries: int = 0,
        max_per_tenant: int = 0,
    ) -> None:
        self.collection = collection
        self.threshold = threshold
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self.max_per_tenant = max_per_tenant
        self._coll = MilvusCollection(connection, collection, ANSWERS_SPEC)
        self._hits: dict[int, tuple[int, int]] = {}  # id -> (hits since the last write-out, last hit)
        self._hits_lock = threading.Lock()
        self.ledger = HitLedger(connection, f"{collection}{LEDGER_SUFFIX}")
        self.watcher: StoreWatcher | None = None  # told of this store's writes (the exact tier's index)
        self._id_source = AnswerIds()

    def open(self, dim: int) -> None:
        self._coll.ensure(dim)
        self.ledger.open()

    def _fresh(self) -> str:
        return f"created_at >= {ago_ms(self.ttl)}" if self.ttl > 0 else ""

    # -- the hit path -----------------------------------------------------------------------------------
    def lookup(self, vector, key: AnswerKey, limit: int) -> list[StoredAnswer]:
        return self.lookup_many([vector], key, limit)[0]

    def lookup_many(self, vectors, key: AnswerKey, limit: int) -> list[list[StoredAnswer]]:
        """One Milvus call for a batch of prompts under the same key (tenant, model, context, max_tokens)."""
        expr = " and ".join(
            e
            for e in (
                f"tenant == {quote(key.tenant)}",
                f"model == {quote(key.model)}",
                f"context == {quote(key.context)}",
                f"completion_tokens <= {int(key.max_tokens)}",
                self._fresh(),
            )
            if e
        )
        per_vector = self._coll.search_many(
            vectors, limit=limit, filter=expr, output_fields=["prompt", "content_full", "stops"]
        )
        return [[_answer({"id": h.id, **h.entity}, h.similarity) for h in hits] for hits in per_vector]

    def record_hit(self, answer_id: int) -> None:
        now = now_ms()
        with self._hits_lock:
            n, _ = self._hits.get(answer_id, (0, 0))
            self._hits[answer_id] = (n + 1, now)

    def put(
        self, vector, *, prompt: str, content: str, key: AnswerKey, stops: tuple[str, ...], completion_tokens: int
    ) -> int:
        return self.put_many([vector], [(prompt, content)], key=key, stops=stops, completion_tokens=completion_tokens)[
            0
        ]

    def put_many(
        self, vectors, texts: list[tuple[str, str]], *, key: AnswerKey, stops: tuple[str, ...], completion_tokens: int
    ) -> list[int]:
        """Store answers (prompt, answer) under one key in one insert (a bulk load); their ids."""
        rows = [
            {
                "id": self._id_source.next(),
                VECTOR_FIELD: list(map(float, vector)),
                "prompt": prompt,
                "prompt_hash": content_hash(prompt),
                "content_full": content,
                "model": key.model[:256],
                "tenant": key.tenant,
                "context": key.context,
                "stops": json.dumps(list(stops), ensure_ascii=False),
                "completion_tokens": int(completion_tokens),
                "created_at": now_ms(),
                "hits": 0,
                "last_hit": 0,
            }
            for vector, (prompt, content) in zip(vectors, texts, strict=True)
        ]
        self._coll.insert(rows)
        if self.watcher is not None:
            self.watcher.added([_exact(row) for row in rows])
        return [row["id"] for row in rows]

    # -- upkeep -------------------------------------------------------------------------------------------
    def maintain(self) -> dict[str, int]:
        return {
            "hits_written": self.flush_hits(),
            "purged": self.purge_expired(),
            "evicted": self.evict(),
            "ledger_swept": self.ledger.sweep(self.existing_ids),
        }

    def flush_hits(self) -> int:
        """Write the hits counted since the last call to this process's ledger rows; how many rows. A
        failed write keeps the hits for the next call."""
        with self._hits_lock:
            pending, self._hits = self._hits, {}
        return self.ledger.add(pending)

    def _with_hits(self, rows: list[dict]) -> list[dict]:
        """The rows with their ledger hits added to their own (in place)."""
        counted = self.ledger.counts([int(r["id"]) for r in rows])
        for r in rows:
            hits, last = counted.get(int(r["id"]), (0, 0))
            r["hits"] = int(r.get("hits", 0)) + hits
            r["last_hit"] = max(int(r.get("last_hit", 0)), last)
        return rows

    def purge_expired(self) -> int:
        """Delete answers older than the TTL (lookups already ignore them); returns how many."""
        if self.ttl <= 0:
            return 0
        return self._delete_ids(self._ids(f"created_at < {ago_ms(self.ttl)}"))

    def evict(self) -> int:
        """Keep at most ``max_per_tenant`` answers per tenant, then at most ``max_entries`` in all: the least
        recently hit (never hit: oldest) go first. A tenant's quota evicts within that tenant only, so one
        tenant storing many answers cannot push out another's; the global cap is the backstop."""
        if self.max_entries <= 0 and self.max_per_tenant <= 0:
            return 0
        total = self._coll.count()
        over_cap = 0 < self.max_entries < total
        if not over_cap and (self.max_per_tenant <= 0 or total <= self.max_per_tenant):
            return 0  # neither the cap nor any tenant's quota can be exceeded
        counted = self.ledger.all_counts()
        rows = [
            (
                max(int(r["last_hit"]), counted.get(int(r["id"]), (0, 0))[1], int(r["created_at"])),
                int(r["id"]),
                str(r.get("tenant", "")),
            )
            for batch in self._coll.iterate(["id", "created_at", "last_hit", "tenant"], batch_size=2000)
            for r in batch
        ]
        return self._delete_ids(evictions(rows, self.max_entries, self.max_per_tenant))

    def _ids(self, expr: str) -> list[int]:
        return [int(r["id"]) for rows in self._coll.iterate(["id"], batch_size=2000, expr=expr) for r in rows]

    def _delete_ids(self, ids: list[int]) -> int:
        deleted = 0
        for start in range(0, len(ids), DELETE_CHUNK):
            chunk = ids[start : start + DELETE_CHUNK]
            self._coll.delete(ids=chunk)
            self._forget_hits(chunk)
            deleted += len(chunk)
            if self.watcher is not None:
                self.watcher.removed(chunk)
        if deleted:
            self._coll.flush()
        return deleted

    def _forget_hits(self, ids: list[int]) -> None:
        try:
            self.ledger.forget(ids)
        except VectorStoreError as exc:  # the answers' fate is decided: their counts are swept by the upkeep
            logger.warning("hit counts of %d answers left for the upkeep: %s", len(ids), exc)

    # -- the admin API --------------------------------------------------------------------------------------
    @staticmethod
    def _where(tenant: str | None, model: str | None, older_than: float | None, newer_than: float | None) -> str:
        parts = ["id > 0"]
        if tenant is not None:
            parts.append(f"tenant == {quote(tenant)}")
        if model is not None:
            parts.append(f"model == {quote(model)}")
        if older_than is not None:
            parts.append(f"created_at < {ago_ms(older_than)}")
        if newer_than is not None:
            parts.append(f"created_at >= {ago_ms(newer_than)}")
        return " and ".join(parts)

    def list_answers(
        self,
        *,
        tenant: str | None = None,
        model: str | None = None,
        older_than: float | None = None,
        newer_than: float | None = None,
        text: str | None = None,
        after: int = 0,
        limit: int = 50,
    ) -> tuple[list[StoredAnswer], int | None]:
        """One page in id order after the cursor ``after``, and the cursor of the next page (None: the
        last page). A text filter (in the prompt or the answer) is applied while reading, up to
        SCAN_LIMIT rows per page, so a page may hold fewer than ``limit`` items and still have a next."""
        expr = self._where(tenant, model, older_than, newer_than) + f" and id > {int(after)}"
        found: list[dict] = []
        scanned, last, cursor = 0, after, None
        for rows in self._coll.iterate(LIST_FIELDS, batch_size=min(max(limit, 50), 1000), expr=expr):
            for row in sorted(rows, key=lambda r: int(r["id"])):
                scanned += 1
                last = int(row["id"])
                if text is None or text in row.get("prompt", "") or text in row.get("content_full", ""):
                    found.append(row)
                if len(found) == limit or scanned >= SCAN_LIMIT:
                    cursor = last
                    break
            if cursor is not None:
                break
        return [_answer(r) for r in self._with_hits(found)], cursor

    def get_answer(self, answer_id: int) -> StoredAnswer | None:
        rows = self._coll.get([answer_id], LIST_FIELDS)
        return _answer(self._with_hits(rows)[0]) if rows else None

    def get_with_vector(self, answer_id: int) -> tuple[StoredAnswer, list[float]] | None:
        rows = self._coll.get([answer_id], [VECTOR_FIELD, *LIST_FIELDS])
        if not rows:
            return None
        return _answer(self._with_hits(rows)[0]), [float(x) for x in rows[0][VECTOR_FIELD]]

    def delete_answer(self, answer_id: int) -> bool:
        if not self._coll.get([answer_id], ["id"]):
            return False
        self._delete_ids([answer_id])
        return True

    def count(self) -> int:
        return self._coll.count()

    # -- undo (writing.core.undo.answers) ---------------------------------------------------------------
    def export_rows(
        self,
        *,
        ids: Sequence[int] | None = None,
        tenant: str | None = None,
        model: str | None = None,
        older_than: float | None = None,
    ) -> list[dict]:
        """Whole stored rows but the vector (re-embedded from the prompt on restore), their ledger hits
        added to their own: these ids, or every row matching the filters, as a delete would find them."""
        expr = (
            f"id in [{', '.join(map(str, ids))}]" if ids is not None else self._where(tenant, model, older_than, None)
        )
        if ids is not None and not ids:
            return []
        rows = [dict(r) for batch in self._coll.iterate(LIST_FIELDS, batch_size=1000, expr=expr) for r in batch]
        return self._with_hits(rows)

    def restore_rows(self, rows: Sequence[dict], vectors) -> list[int]:
        """Insert exported rows again under their own ids (the caller checked the ids are free)."""
        fresh = [
            {**{k: r[k] for k in LIST_FIELDS}, VECTOR_FIELD: list(map(float, v))}
            for r, v in zip(rows, vectors, strict=True)
        ]
        if not fresh:
            return []
        self._forget_hits([int(r["id"]) for r in fresh])  # rows left behind would count twice: the row has them
        self._coll.insert(fresh)
        self._coll.flush()
        if self.watcher is not None:
            self.watcher.added([_exact(row) for row in fresh])
        return [int(r["id"]) for r in fresh]

    def delete_ids(self, ids: Sequence[int]) -> int:
        """Delete these answers (those still stored); how many ids were given."""
        return self._delete_ids(list(ids))

    def existing_ids(self, ids: Sequence[int]) -> set[int]:
        found: set[int] = set()
        for start in range(0, len(ids), DELETE_CHUNK):
            chunk = ", ".join(map(str, ids[start : start + DELETE_CHUNK]))
            found |= {int(r["id"]) for r in self._coll.query(f"id in [{chunk}]", ["id"])}
        return found

    # -- the exact tier's index (writing.core.exact_sync) ---------------------------------------------------
    def exact_ids(self) -> Iterator[list[int]]:
        """The id of every answer within the TTL."""
        for rows in self._coll.iterate(["id"], EXACT_BATCH, expr=self._fresh() or "id > 0"):
            yield [int(r["id"]) for r in rows]

    def exact_rows(self, ids: Sequence[int] | None = None) -> Iterator[list[ExactAnswer]]:
        """Answers within the TTL as the index holds them (no vector, no prompt): all, or those ids."""
        fields = [*EXACT_FIELDS, "content_full"]
        if ids is None:
            for rows in self._coll.iterate(fields, EXACT_BATCH, expr=self._fresh() or "id > 0"):
                yield [_exact(r) for r in rows]
            return
        for start in range(0, len(ids), EXACT_BATCH):
            expr = f"id in [{', '.join(map(str, ids[start : start + EXACT_BATCH]))}]"
            yield [_exact(r) for r in self._coll.query(" and ".join(e for e in (expr, self._fresh()) if e), fields)]
