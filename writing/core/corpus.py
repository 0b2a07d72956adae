"""Adding passages to the curated corpus: one code path for ``ingest.py`` and the HTTP API.

Idempotent by content hash: a passage whose normalised text is stored already is reported as a
duplicate and not inserted again, so an interrupted ingestion can simply be run again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from writing.core.models import Passage
from writing.core.ports import CorpusStore, PassageEncoder
from writing.errors import InvalidRequest
from writing.text import CONTROL_CHARS, normalise_text

logger = logging.getLogger(__name__)

MAX_CONTENT_CHARS = 16000  # the store's VARCHAR counts bytes: 16k CJK characters * 3 bytes < 65535
MAX_BIZ_ID_CHARS = 256


class InvalidPassage(InvalidRequest):
    """A record that cannot be stored; the message says what to fix."""


def make_passage(record: object) -> Passage:
    """Validate one ``{"content": ..., "biz_id": ...}`` record."""
    if not isinstance(record, dict):
        raise InvalidPassage("expected a JSON object with a 'content' field")
    content = record.get("content")
    if not isinstance(content, str) or not content.strip():
        raise InvalidPassage("'content' must be a non-empty string")
    if len(content) > MAX_CONTENT_CHARS:
        raise InvalidPassage(f"'content' is {len(content)} characters; the limit is {MAX_CONTENT_CHARS}")
    biz_id = record.get("biz_id", "")
    if biz_id is None:
        biz_id = ""
    if isinstance(biz_id, bool) or not isinstance(biz_id, (str, int)):
        raise InvalidPassage("'biz_id' must be a string or an integer")
    biz_id = str(biz_id).strip()
    if any(ch in CONTROL_CHARS for ch in biz_id):
        raise InvalidPassage("'biz_id' must not contain control characters such as line breaks")
    if len(biz_id) > MAX_BIZ_ID_CHARS:
        raise InvalidPassage(f"'biz_id' is longer than {MAX_BIZ_ID_CHARS} characters")
    return Passage(content=content.strip(), biz_id=biz_id)


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
    def __init__(self, embedder: PassageEncoder, store: CorpusStore, *, batch_size: int = 32) -> None:
        self.embedder = embedder
        self.store = store
        self.batch_size = batch_size

    def add(self, passages: list[Passage]) -> AddResult:
        """Store the passages not stored yet; one id per input (the existing id for duplicates)."""
        hashes = [p.content_hash for p in passages]
        existing = self.store.ids_by_hash(sorted(set(hashes)))
        new_index: dict[str, int] = {}  # hash -> index of its first occurrence among the new ones
        fresh: list[Passage] = []
        for p, h in zip(passages, hashes, strict=True):
            if h not in existing and h not in new_index:
                new_index[h] = len(fresh)
                fresh.append(p)
        new_ids: list[int] = []
        if fresh:
            vectors = self.embedder.embed_sorted([normalise_text(p.content) for p in fresh], self.batch_size)
            new_ids = self.store.insert(fresh, vectors)
            self.store.flush()
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
