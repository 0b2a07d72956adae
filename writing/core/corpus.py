"""Adding passages to the curated corpus: one code path for ``ingest.py`` and the HTTP API.

Idempotent by content hash: a passage whose normalised text is stored already is reported as a
duplicate and not inserted again, so an interrupted ingestion can simply be run again. Concurrent adds
of one text (threads, workers, replicas) may each insert it; each then settles (the lowest id stays,
the other rows are deleted), so exactly one add reports it inserted and the corpus holds it once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from writing.core.models import Passage
from writing.core.ports import CorpusStore, PassageEncoder
from writing.errors import Conflict, InvalidRequest
from writing.text import (
    CONTROL_CHARS,
    BadEncoding,
    estimate_tokens,
    first_unencodable,
    forbidden_char,
    normalise_text,
    numbered_lines,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")


def run_here(fn: Callable[[], T], cost: int = 0) -> T:
    """``run_model`` for a process of its own (ingest.py): the work runs on this thread at once."""
    return fn()


def chunks_by_tokens(texts: list[str], budget: int) -> list[list[int]]:
    """Indexes of ``texts`` cut into runs of at most ``budget`` estimated tokens (a longer text alone),
    in length order so that each run pads little; ``budget`` 0 = one run."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    if budget <= 0:
        return [order] if order else []
    out: list[list[int]] = []
    current: list[int] = []
    used = 0
    for i in order:
        cost = estimate_tokens(texts[i])
        if current and used + cost > budget:
            out.append(current)
            current, used = [], 0
        current.append(i)
        used += cost
    if current:
        out.append(current)
    return out


MAX_CONTENT_CHARS = 16000  # the store's VARCHAR counts bytes: 16k CJK characters * 3 bytes < 65535
MAX_BIZ_ID_CHARS = 256
QUERY_WINDOW = 16384  # the most rows a store query reaches (offset + limit): Milvus refuses more


class InvalidPassage(InvalidRequest):
    """A record that cannot be stored; the message says what to fix."""


class PassageCollision(Conflict):
    """An edit whose new text another passage holds already (409, naming that passage)."""

    def __init__(self, message: str, holder: int) -> None:
        super().__init__(message)
        self.holder = holder


def stored_passage(row: dict) -> Passage:
    """A stored row as a ``Passage``, as it is (not validated again: rows stored before a rule was added
    must stay editable, or the edit that fixes them would be refused)."""
    biz_id = row.get("biz_id")
    return Passage(content=str(row.get("content") or ""), biz_id="" if biz_id is None else str(biz_id))


def make_passage(record: object) -> Passage:
    """Validate one ``{"content": ..., "biz_id": ...}`` record."""
    if not isinstance(record, dict):
        raise InvalidPassage("expected a JSON object with a 'content' field")
    content = record.get("content")
    if not isinstance(content, str) or not content.strip():
        raise InvalidPassage("'content' must be a non-empty string")
    if len(content) > MAX_CONTENT_CHARS:
        raise InvalidPassage(f"'content' is {len(content)} characters; the limit is {MAX_CONTENT_CHARS}")
    if first_unencodable(content) is not None:
        raise InvalidPassage("'content' holds a lone UTF-16 surrogate (e.g. \\ud800); send valid UTF-8 text")
    problem = forbidden_char(content)
    if problem is not None:
        raise InvalidPassage(f"'content' {problem}; remove it")
    biz_id = record.get("biz_id", "")
    if biz_id is None:
        biz_id = ""
    if isinstance(biz_id, bool) or not isinstance(biz_id, (str, int)):
        raise InvalidPassage("'biz_id' must be a string or an integer")
    biz_id = str(biz_id).strip()
    if any(ch in CONTROL_CHARS for ch in biz_id):
        raise InvalidPassage("'biz_id' must not contain control characters such as line breaks")
    if first_unencodable(biz_id) is not None:
        raise InvalidPassage("'biz_id' holds a lone UTF-16 surrogate (e.g. \\ud800); send valid UTF-8 text")
    problem = forbidden_char(biz_id)
    if problem is not None:
        raise InvalidPassage(f"'biz_id' {problem}; remove it")
    if len(biz_id) > MAX_BIZ_ID_CHARS:
        raise InvalidPassage(f"'biz_id' is longer than {MAX_BIZ_ID_CHARS} characters")
    return Passage(content=content.strip(), biz_id=biz_id)


@dataclass
class Problem:
    """A record that could not be read: where (file:line), what to fix, and the line of a JSONL source."""

    where: str
    message: str
    line: int | None = None


def read_jsonl(fh, where: str, problems: list[Problem], first_line: int = 1) -> Iterator[Passage]:
    """Passages from JSONL text (an open text stream), numbering lines from ``first_line``; bad lines go
    to ``problems`` (shared by ingest.py and ``POST /v1/corpus/import``)."""
    lines = numbered_lines(fh)
    while True:
        try:
            lineno, line = next(lines)
        except StopIteration:
            return
        except BadEncoding as exc:
            at = exc.lineno + first_line - 1
            problems.append(Problem(f"{where}:{at}", f"not UTF-8: {exc.reason}", at))
            return  # the decoder cannot resync reliably; what follows is unread
        if not line.strip():
            continue
        at = lineno + first_line - 1
        try:
            yield make_passage(json.loads(line))
        except json.JSONDecodeError as exc:
            problems.append(Problem(f"{where}:{at}", f"not valid JSON: {exc.msg}", at))
        except RecursionError:  # json.loads of a line nested thousands deep: that line only
            problems.append(Problem(f"{where}:{at}", "not a passage: JSON nested too deeply", at))
        except InvalidPassage as exc:
            problems.append(Problem(f"{where}:{at}", str(exc), at))


@dataclass
class AddResult:
    ids: list[int] = field(default_factory=list)  # one per input passage, in order
    duplicate: list[bool] = field(default_factory=list)  # True where the passage was stored already

    @property
    def inserted(self) -> int:
        return self.duplicate.count(False)

    @property
    def skipped(self) -> int:
        return self.duplicate.count(True)


class CorpusWriter:
    """``run_model(fn, cost)`` runs the embedding: here (ingest.py), or in the service as admin work on the
    embedding queue (``EmbeddingBatcher.run_blocking``: low priority, behind the prompts' batches, and
    sharing their backpressure). ``chunk_tokens`` cuts the texts into pieces of at most that many estimated
    tokens, each one call of ``run_model``, so that a prompt never waits for a whole import."""

    def __init__(
        self,
        embedder: PassageEncoder,
        store: CorpusStore,
        *,
        batch_size: int = 32,
        run_model: Callable[[Callable[[], T], int], T] = run_here,
        chunk_tokens: int = 0,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.batch_size = batch_size
        self.run_model = run_model
        self.chunk_tokens = chunk_tokens

    def embed(self, texts: list[str]) -> np.ndarray:
        """The texts' vectors (input order), embedded a chunk at a time through ``run_model``."""
        out = np.zeros((len(texts), self.embedder.dim), dtype=np.float32)
        for idx in chunks_by_tokens(texts, self.chunk_tokens):
            part = [texts[i] for i in idx]
            cost = sum(estimate_tokens(t) for t in part)
            out[idx] = self.run_model(lambda part=part: self.embedder.embed_sorted(part, self.batch_size), cost)
        return out

    def add(self, passages: list[Passage], vectors: list | None = None) -> AddResult:
        """Store the passages not stored yet; one id per input (the existing id for duplicates).

        ``vectors`` (one per passage) are stored as given instead of embedding the passages: copying a
        collection made with the same model (``ingest.py --migrate``)."""
        hashes = [p.content_hash for p in passages]
        existing = self.store.ids_by_hash(sorted(set(hashes)))
        new_index: dict[str, int] = {}  # hash -> index of its first occurrence among the new ones
        fresh: list[Passage] = []
        given: list = []
        for i, (p, h) in enumerate(zip(passages, hashes, strict=True)):
            if h not in existing and h not in new_index:
                new_index[h] = len(fresh)
                fresh.append(p)
                if vectors is not None:
                    given.append(vectors[i])
        new_ids: list[int] = []
        if fresh:
            if vectors is None:
                texts = [normalise_text(p.content) for p in fresh]
                given = self.embed(texts)
            new_ids = self.store.insert(fresh, given)
            self.store.flush()
            # a concurrent add may have stored the same text meanwhile: one row stays, the lowest id
            kept = self.store.settle_duplicates([p.content_hash for p in fresh])
            for i, p in enumerate(fresh):
                stays = kept.get(p.content_hash, new_ids[i])
                if stays != new_ids[i]:  # another add stored it first: report it as a duplicate
                    existing[p.content_hash] = stays
        result = AddResult()
        seen: set[str] = set()
        for h in hashes:
            if h in existing:
                result.ids.append(existing[h])
                result.duplicate.append(True)
            else:
                result.ids.append(new_ids[new_index[h]])
                result.duplicate.append(h in seen)
            seen.add(h)
        return result

    def check_free(self, old_id: int, old: Passage, new: Passage) -> None:
        """``PassageCollision`` when another passage than ``old_id`` holds the new text already."""
        if new.content_hash != old.content_hash:
            holder = self.store.ids_by_hash([new.content_hash]).get(new.content_hash)
            if holder is not None and holder != old_id:
                raise PassageCollision(
                    f"passage {holder} holds this text already; edit or delete that one instead", holder
                )

    def replace(self, old_id: int, old: Passage, new: Passage) -> AddResult:
        """An edit: ``new`` is stored (re-embedded) and the passage ``old_id`` removed, with its retrieval
        keys. The new text is embedded before anything changes, so a failed embedding leaves the old
        passage in place. A new text that another passage holds already is refused (``PassageCollision``,
        409, naming it): merging would delete this passage and keep the other under its own biz_id."""
        self.check_free(old_id, old, new)
        texts = [normalise_text(new.content)]
        vectors = self.embed(texts)
        if new.content_hash == old.content_hash:  # same text, new biz_id: the hash must be free first
            self.store.delete_passages(ids=[old_id])
            return self.add([new], vectors)
        result = self.add([new], vectors)
        if result.ids[0] != old_id:
            self.store.delete_passages(ids=[old_id])
        return result
