"""In-memory stand-ins for the core's ports (``writing.core.ports``), for the unit tests.

They need no model and no server, and are deterministic: ``FakeQueryModel`` gives every text its own
unit vector (similar texts are NOT close: tests that need a similarity set it on the index), the
indexes are cosine searches over numpy arrays, and ``ScriptedLLM`` answers from a script and counts.
Fault injection against a real HTTP LLM uses ``writing.devtools.fake_llm`` instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import threading
import time
from collections.abc import AsyncIterator

import numpy as np

from writing.adapters.embedding.encoder import Embedded
from writing.core.exact import KEY_HASH_CHARS, ExactAnswer, ExactRow
from writing.core.models import AnswerKey, Completion, Delta, Match, QueryVector, SamplingParams, StoredAnswer
from writing.core.undo.entries import INTENT, OUTCOME, UNDONE, JournalEntry, JournalSummary
from writing.errors import LLMUpstreamError, VectorStoreError
from writing.text import content_hash, normalise_text

DIM = 16


def text_vector(text: str, dim: int = DIM) -> np.ndarray:
    """A deterministic unit vector per (normalised) text."""
    seed = int.from_bytes(hashlib.sha256(normalise_text(text).encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


class FakeQueryModel:
    """What the batcher needs of the embedding model: deterministic vectors, optional delay and failures.

    A text longer than ``max_chars`` counts as longer than the window (``truncated``)."""

    def __init__(
        self, *, delay: float = 0.0, failures: int = 0, max_chars: int = 200, dim: int = DIM, poison: str | None = None
    ) -> None:
        self.dim = dim
        self.delay = delay
        self.failures = failures
        self.poison = poison  # a text that fails every forward pass it is part of
        self.max_chars = max_chars
        self.calls: list[list[str]] = []
        self.threads: set[str] = set()

    def embed_queries_checked(self, texts: list[str]) -> Embedded:
        self.calls.append(list(texts))
        self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("injected embedder failure")
        if self.poison is not None and self.poison in texts:
            raise RuntimeError("injected: a text the tokenizer cannot take")
        vectors = np.stack([text_vector(t, self.dim) for t in texts]) if texts else np.zeros((0, self.dim))
        return Embedded(vectors.astype(np.float32), [len(t) > self.max_chars for t in texts])


class FakeEncoder:
    """The core's ``QueryEncoder`` without a batcher: the vector of a text, straight away."""

    def __init__(self, *, max_chars: int = 200, dim: int = DIM) -> None:
        self.dim = dim
        self.max_chars = max_chars
        self.calls = 0
        self.flows: list[str] = []  # the flow each call named, in order

    async def embed_query(self, text: str, flow: str = "") -> QueryVector:
        self.calls += 1
        self.flows.append(flow)
        return QueryVector(text_vector(text, self.dim), len(text) > self.max_chars)


class _Rows:
    def __init__(self) -> None:
        self.ids: list[int] = []
        self.vectors: list[np.ndarray] = []
        self.items: list[dict] = []

    def add(self, vector: np.ndarray, item: dict) -> int:
        new_id = len(self.ids) + 1
        self.ids.append(new_id)
        self.vectors.append(np.asarray(vector, dtype=np.float32))
        self.items.append(item)
        return new_id

    def ranked(self, vector: np.ndarray, keep=lambda item: True) -> list[tuple[float, int, dict]]:
        scored = [
            (float(np.dot(v, vector)), i, item)
            for i, v, item in zip(self.ids, self.vectors, self.items, strict=True)
            if keep(item)
        ]
        return sorted(scored, key=lambda x: -x[0])


class _ExactSource:
    """What the exact tier's index reads of a fake store (``ExactSource``): the ids and rows not removed,
    one page each. The store gives ``rows``, ``removed``, ``_check`` and ``_exact(id, item)``."""

    def exact_ids(self):
        self._check()
        yield [i for i in self.rows.ids if i not in self.removed]

    def exact_rows(self, ids=None):
        self._check()
        wanted = None if ids is None else set(ids)
        yield [
            self._exact(i, item)
            for i, item in zip(self.rows.ids, self.rows.items, strict=True)
            if i not in self.removed and (wanted is None or i in wanted)
        ]


class InMemoryCorpus(_ExactSource):
    """``CorpusIndex``: cosine top-k over what was added; ``down = True`` makes every call fail. Also an
    ``ExactSource`` for the exact tier's index: ``watcher`` is told of ``add``, ``add_key`` and ``remove``
    unless ``quiet`` (a change made by another worker, which the index learns of at its next reload)."""

    kind = "in-memory"

    def __init__(self) -> None:
        self.rows = _Rows()
        self.down = False
        self.opened_with: int | None = None
        self.resets = 0
        self.searches = 0  # prompts searched
        self.calls = 0  # store calls (a batch is one)
        self.removed: set[int] = set()
        self.watcher = None

    def add(self, content: str, biz_id: str = "", vector: np.ndarray | None = None, quiet: bool = False) -> int:
        item = {"content": content, "biz_id": biz_id}
        new_id = item["id"] = self.rows.add(text_vector(content) if vector is None else vector, item)
        if self.watcher is not None and not quiet:
            self.watcher.added([self._exact(new_id, item)])
        return new_id

    def add_key(self, passage_id: int, prompt: str, quiet: bool = False) -> int:
        """A retrieval key: ``prompt``'s vector finds passage ``passage_id``."""
        content = self.rows.items[self.rows.ids.index(passage_id)]["content"]
        item = {"content": content, "biz_id": "", "key_of": passage_id, "prompt": prompt}
        new_id = item["id"] = self.rows.add(text_vector(prompt), item)
        if self.watcher is not None and not quiet:
            self.watcher.added([self._exact(new_id, item)])
        return new_id

    def remove(self, row_id: int, quiet: bool = False) -> None:
        self.removed.add(row_id)
        if self.watcher is not None and not quiet:
            self.watcher.removed([row_id])

    @staticmethod
    def _exact(row_id: int, item: dict) -> ExactRow:
        if "key_of" in item:
            return ExactRow(row_id, content_hash(item["prompt"])[:KEY_HASH_CHARS], item["key_of"])
        return ExactRow(row_id, content_hash(item["content"])[:KEY_HASH_CHARS], row_id, item["biz_id"], item["content"])

    def _check(self) -> None:
        if self.down:
            raise VectorStoreError("injected: the index is down")

    def open(self, dim: int | None) -> None:
        self._check()
        self.opened_with = dim

    def reset(self) -> None:
        self.resets += 1

    def ping(self) -> None:
        self._check()

    def search(self, vector, limit: int = 1) -> list[Match]:
        return self.search_many([vector], limit)[0]

    def search_many(self, vectors, limit: int = 1) -> list[list[Match]]:
        self._check()
        self.calls += 1
        self.searches += len(vectors)
        return [
            [
                Match(id=item.get("key_of", i), biz_id=item["biz_id"], content=item["content"], similarity=sim)
                for sim, i, item in self.rows.ranked(vector, keep=self._live)[:limit]
            ]
            for vector in vectors
        ]

    def _live(self, item: dict) -> bool:
        return not ({item.get("key_of"), item.get("id")} & self.removed)


class InMemoryAnswers(_ExactSource):
    """``AnswerIndex``: cosine top-k over stored answers under the same key (no TTL); ``down`` fails calls.
    Also an ``ExactSource``: ``watcher`` is told of ``put`` and ``remove`` (unless ``quiet``)."""

    def __init__(self, threshold: float = 0.92) -> None:
        self.threshold = threshold
        self.rows = _Rows()
        self.hits: dict[int, int] = {}
        self.down = False
        self.calls = 0  # store calls (a batch is one)
        self.removed: set[int] = set()
        self.watcher = None

    def remove(self, answer_id: int, quiet: bool = False) -> None:
        self.removed.add(answer_id)
        if self.watcher is not None and not quiet:
            self.watcher.removed([answer_id])

    @staticmethod
    def _exact(answer_id: int, item: dict) -> ExactAnswer:
        k = item["key"]
        return ExactAnswer(
            answer_id, content_hash(item["prompt"]), k.tenant, k.model, k.context, tuple(item["stops"]),
            item["completion_tokens"], item["created_at_ms"], item["content"],
        )  # fmt: skip

    def _check(self) -> None:
        if self.down:
            raise VectorStoreError("injected: the answer store is down")

    def open(self, dim: int) -> None:
        self._check()

    def maintain(self) -> dict[str, int]:
        return {}

    def flush_hits(self) -> int:
        return 0

    def record_hit(self, answer_id: int) -> None:
        self.hits[answer_id] = self.hits.get(answer_id, 0) + 1

    def lookup(self, vector, key: AnswerKey, limit: int) -> list[StoredAnswer]:
        return self.lookup_many([vector], key, limit)[0]

    def lookup_many(self, vectors, key: AnswerKey, limit: int) -> list[list[StoredAnswer]]:
        self._check()
        self.calls += 1
        return [self._lookup(v, key, limit) for v in vectors]

    def _lookup(self, vector, key: AnswerKey, limit: int) -> list[StoredAnswer]:

        def keep(item: dict) -> bool:
            k = item["key"]
            return (k.tenant, k.model, k.context) == (key.tenant, key.model, key.context) and (
                item["completion_tokens"] <= key.max_tokens and item["id"] not in self.removed
            )

        return [
            StoredAnswer(id=i, prompt=item["prompt"], content=item["content"], stops=item["stops"], similarity=sim)
            for sim, i, item in self.rows.ranked(vector, keep=keep)[:limit]
        ]

    def put(
        self, vector, *, prompt: str, content: str, key: AnswerKey, stops: tuple[str, ...], completion_tokens: int
    ) -> int:
        self._check()
        item = {
            "prompt": prompt,
            "content": content,
            "key": key,
            "tenant": key.tenant,
            "stops": stops,
            "completion_tokens": completion_tokens,
            "created_at_ms": time.time_ns() // 1_000_000,
        }
        new_id = item["id"] = self.rows.add(vector, item)
        if self.watcher is not None:
            self.watcher.added([self._exact(new_id, item)])
        return new_id

    @property
    def stored(self) -> list[dict]:
        return list(self.rows.items)


class ScriptedLLM:
    """``LLM``: answers ``text`` after ``delay`` seconds, or fails when ``fail`` is set; counts calls."""

    def __init__(self, text: str = "这是一段生成的文字。", *, finish_reason: str = "stop", delay: float = 0.0) -> None:
        self.text = text
        self.finish_reason = finish_reason
        self.delay = delay
        self.fail = False
        self.calls: list[list[dict]] = []
        self._defaults = SamplingParams()
        self.model_name = "scripted-llm"

    @property
    def model(self) -> str:
        return self.model_name

    @property
    def defaults(self) -> SamplingParams:
        return self._defaults

    async def complete(self, messages: list[dict], params: SamplingParams | None = None) -> Completion:
        self.calls.append(messages)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise LLMUpstreamError("injected: HTTP 500")
        return Completion(self.text, self.finish_reason, self.model, 3, len(self.text))

    async def stream(self, messages: list[dict], params: SamplingParams | None = None) -> AsyncIterator[Delta]:
        self.calls.append(messages)
        if self.fail:
            raise LLMUpstreamError("injected: HTTP 500")
        for i in range(0, len(self.text), 3):
            yield Delta(self.text[i : i + 3])
        yield Delta("", self.finish_reason)


# -- the records of reviews (writing.core.reviews): reports, labels, audit; and the entries a review changes --
class InMemoryReports:
    """``ReportRepository``; ``down = True`` makes every call fail; ``pages`` counts ``report_page`` calls."""

    def __init__(self) -> None:
        self.rows: dict[int, tuple] = {}  # id -> (Report, vector)
        self.down = False
        self.pages = 0

    def _check(self) -> None:
        if self.down:
            raise VectorStoreError("injected: the records store is down")

    def save(self, report, vector) -> None:
        self._check()
        self.rows[report.id] = (report, [float(x) for x in vector])

    def get(self, rid: int):
        self._check()
        return self.rows.get(rid)

    def find(self, tenant: str, request_id: str):
        self._check()
        found = [r for rid, (r, _) in sorted(self.rows.items()) if (r.tenant, r.request_id) == (tenant, request_id)]
        return found[0] if found else None

    def _after(self, after: int, limit: int, keep) -> tuple[list, int | None]:
        found = [r for rid, (r, _) in sorted(self.rows.items()) if rid > after and keep(r)]
        if len(found) > limit:
            return found[:limit], found[limit - 1].id
        return found, None

    def list_reports(self, *, status=None, tier=None, verdict=None, after: int = 0, limit: int = 50):
        self._check()
        wanted = {"status": status, "tier": tier, "verdict": verdict}
        return self._after(after, limit, lambda r: all(v is None or getattr(r, k) == v for k, v in wanted.items()))

    def report_page(self, *, tier: str, statuses, after: int = 0, limit: int = 1000):
        self._check()
        self.pages += 1
        return self._after(after, limit, lambda r: r.tier == tier and r.status in statuses)

    def blocking(self) -> list[tuple]:
        self._check()
        return [
            (r, v)
            for r, v in self.rows.values()
            if r.verdict == "wrong" and r.entry_id is not None and r.status in ("open", "confirmed")
        ]


class InMemoryLabels:
    """``LabelRepository``."""

    def __init__(self) -> None:
        self.pairs: dict[int, object] = {}

    def save(self, pair):
        self.pairs[pair.id] = pair
        return pair

    def list_pairs(self, *, tier=None, after: int = 0, limit: int = 50):
        found = [p for i, p in sorted(self.pairs.items()) if i > after and (tier is None or p.tier == tier)]
        return (found[:limit], found[limit - 1].id) if len(found) > limit else (found, None)

    def get(self, pair_id: int):
        return self.pairs.get(pair_id)

    def delete(self, pair_id: int) -> bool:
        return self.pairs.pop(pair_id, None) is not None


class InMemoryAudit:
    """``AuditTrail``: ``entries`` holds (actor, action, target, detail)."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str, str, dict]] = []

    def record(self, actor: str, action: str, target: str, detail: dict, entry_id: int | None = None) -> int:
        self.entries.append((actor, action, target, detail))
        return len(self.entries) if entry_id is None else entry_id

    @property
    def actions(self) -> list[str]:
        return [a for _, a, _, _ in self.entries]


class ReviewedCorpusFake(InMemoryCorpus):
    """``ReviewedCorpus`` over ``InMemoryCorpus``: deleted passages stay in ``rows`` but are listed in
    ``deleted``; retrieval keys are recorded in ``keys`` as (passage id, prompt)."""

    def __init__(self) -> None:
        super().__init__()
        self.deleted: set[int] = set()
        self.keys: list[tuple[int, str]] = []

    def get_passages(self, ids: list[int]) -> list[dict]:
        self._check()
        return [
            {"id": i, **item}
            for i, item in zip(self.rows.ids, self.rows.items, strict=True)
            if i in ids and i not in self.deleted
        ]

    def delete_passages(self, *, ids: list[int] | None = None, biz_id: str | None = None) -> int:
        self._check()
        found = [p["id"] for p in self.get_passages(list(ids or []))]
        self.deleted.update(found)
        for i in found:
            self.remove(i)
        return len(found)

    def ids_by_hash(self, hashes) -> dict[str, int]:
        self._check()
        wanted = set(hashes)
        return {
            h: i
            for i, item in zip(self.rows.ids, self.rows.items, strict=True)
            if "key_of" not in item and i not in self.deleted and (h := content_hash(item["content"])) in wanted
        }

    def add_retrieval_key(self, passage_id: int, prompt: str, vector) -> int:
        self._check()
        self.keys.append((passage_id, prompt))
        return 10_000 + len(self.keys)


class FakeCorpusWriter:
    """What a review needs of ``CorpusWriter``: ``add`` passages to a ``ReviewedCorpusFake``."""

    def __init__(self, corpus: ReviewedCorpusFake) -> None:
        self.corpus = corpus

    def add(self, passages):
        from writing.core.corpus import AddResult

        ids = [self.corpus.add(p.content, p.biz_id) for p in passages]
        return AddResult(ids=ids, duplicate=[False] * len(ids))


class ReviewedAnswersFake(InMemoryAnswers):
    """``ReviewedAnswers`` over ``InMemoryAnswers``."""

    def __init__(self, threshold: float = 0.92) -> None:
        super().__init__(threshold)
        self.deleted: set[int] = set()

    def get_answer(self, answer_id: int) -> StoredAnswer | None:
        self._check()
        if answer_id not in self.rows.ids or answer_id in self.deleted:
            return None
        item = self.rows.items[self.rows.ids.index(answer_id)]
        return StoredAnswer(id=answer_id, prompt=item["prompt"], content=item["content"], tenant=item["tenant"])

    def export_rows(self, *, ids=None) -> list[dict]:
        found = [self.get_answer(i) for i in (ids if ids is not None else self.rows.ids)]
        return [dataclasses.asdict(a) for a in found if a is not None]

    def delete_answer(self, answer_id: int) -> bool:
        if self.get_answer(answer_id) is None:
            return False
        self.deleted.add(answer_id)
        self.remove(answer_id)
        return True


class InMemoryJournal:
    """``ChangeJournal``: records kept as written (payloads are copied through JSON, as the store does);
    ``crash_on`` (a record kind) raises ``InjectedCrash`` instead of writing it, as a process that dies
    there would leave the journal."""

    def __init__(self) -> None:
        self.records: list[
            tuple[int, str, str, str, str, str, int]
        ] = []  # entry, kind, actor, action, target, json, ts
        self.crash_on: str | None = None

    def write(self, entry_id: int, kind: str, actor: str, action: str, target: str, payload: dict) -> None:
        if kind == self.crash_on:
            raise InjectedCrash(f"injected crash before the {kind} record")
        self.records.append((entry_id, kind, actor, action, target, json.dumps(payload), int(time.time())))

    def read(self, entry_id: int) -> JournalEntry | None:
        mine = {r[1]: r for r in self.records if r[0] == entry_id}
        if INTENT not in mine:
            return None
        _, _, actor, action, target, text, ts = mine[INTENT]
        other = {k: json.loads(r[5]) for k, r in mine.items()}
        return JournalEntry(
            entry_id, ts, actor, action, target, json.loads(text), other.get(OUTCOME), other.get(UNDONE)
        )

    def list_entries(self, *, state=None, after: int = 0, limit: int = 50):
        entries = sorted({r[0] for r in self.records if r[1] == INTENT and r[0] > after})
        out = []
        for e in entries:
            entry = self.read(e)
            if state is None or entry.state == state:
                out.append(JournalSummary(e, entry.ts, entry.actor, entry.action, entry.target, entry.state))
                if len(out) == limit:
                    return out, e
        return out, None

    def purge(self, older_than_ts: int) -> int:
        before = len(self.records)
        self.records = [r for r in self.records if r[6] >= older_than_ts]
        return before - len(self.records)


class InjectedCrash(BaseException):
    """A process dying at a chosen point: not an Exception, so no handler on the way catches it."""


class InMemoryEvidence:
    """``EvidenceRepository``; ``down = True`` makes every call fail."""

    def __init__(self) -> None:
        self.rows: list = []
        self.down = False
        self._next = 0

    def _check(self) -> None:
        if self.down:
            raise VectorStoreError("injected: the evidence store is down")

    def add(self, labels) -> list[int]:
        self._check()
        ids = []
        for x in labels:
            self._next += 1
            self.rows.append(dataclasses.replace(x, id=self._next))
            ids.append(self._next)
        return ids

    def labels(self, tier: str, since: int = 0) -> list:
        self._check()
        return [x for x in self.rows if x.tier == tier and x.ts >= since]

    def page(self, *, tier=None, tenant=None, after: int = 0, limit: int = 100):
        self._check()
        found = [
            x for x in self.rows
            if x.id > after and (tier is None or x.tier == tier) and (tenant is None or x.tenant == tenant)
        ]  # fmt: skip
        return found[:limit], (found[limit - 1].id if len(found) > limit else None)

    def delete(self, *, tenant=None, before=None) -> int:
        self._check()
        keep = [
            x
            for x in self.rows
            if (tenant is not None and x.tenant != tenant) or (before is not None and x.ts >= before)
        ]
        gone = len(self.rows) - len(keep)
        self.rows = keep
        return gone
