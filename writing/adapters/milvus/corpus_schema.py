"""The corpus collection's layout: its fields, which rows are passages and which are retrieval keys, how
a hit or a row reads as a passage, and the reference's schema (served read-only, integer biz_ids).

A retrieval key is an extra row holding a passage's text under the vector of a prompt it answers; its
``content_hash`` is ``k:<passage id>:<prompt hash>``, while a passage's is hex (all below "g"). The
store that reads and writes these rows is ``writing.adapters.milvus.corpus``.
"""

from __future__ import annotations

from writing.adapters.milvus.collection import CollectionSpec, Hit, ScalarField, quote
from writing.core.exact import KEY_HASH_CHARS, ExactRow
from writing.core.models import Match
from writing.errors import Conflict, InvalidRequest
from writing.text import content_hash

VECTOR_FIELD = "content_vector"
CONTENT_FIELD = "content_full"
BIZ_FIELD = "biz_id"
HASH_FIELD = "content_hash"

CORPUS_SPEC = CollectionSpec(
    vector_field=VECTOR_FIELD,
    fields=(
        ScalarField(CONTENT_FIELD, "varchar", 65535),  # bytes: MAX_CONTENT_CHARS of CJK fit
        ScalarField(BIZ_FIELD, "varchar", 1024),  # bytes: MAX_BIZ_ID_CHARS of CJK fit
        ScalarField(HASH_FIELD, "varchar", 64, optional=True),  # absent in a reference collection
    ),
)
INT64_MAX = 2**63 - 1

PASSAGE_FIELDS = ["id", BIZ_FIELD, CONTENT_FIELD]
PASSAGES_ONLY = f'{HASH_FIELD} < "g"'  # hex content hashes; retrieval keys start with "k:"
KEY_PREFIX = "k:"


class ReadOnlyCollection(Conflict):
    """A write to a collection made by the reference's schema (409); the message says how to migrate."""


def read_only_error(collection: str) -> ReadOnlyCollection:
    return ReadOnlyCollection(
        f"the collection {collection!r} has the reference's schema (no content_hash), so it is "
        "served read-only. Copy it, vectors and all, into a collection of the service's schema with "
        f"`MILVUS_COLLECTION={collection} python ingest.py --migrate --target NEW_NAME`, then "
        "restart the service with MILVUS_COLLECTION=NEW_NAME"
    )


def biz_filter(biz_id: str | int, *, integer: bool, collection: str) -> str:
    """The filter for one biz_id: a string literal, or an INT64 in a reference collection (422 when the
    biz_id is not one)."""
    if not integer:
        return f"{BIZ_FIELD} == {quote(str(biz_id))}"
    text = str(biz_id).strip()
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise InvalidRequest(f"the collection {collection!r} stores integer biz_ids (INT64): {text!r} is not one")
    return f"{BIZ_FIELD} == {value}"


def contains_filter(text: str) -> str:
    """Passages holding ``text`` (Milvus LIKE); LIKE's own wildcards in it are literal."""
    literal = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{CONTENT_FIELD} like {quote('%' + literal + '%')}"


def key_hash(passage_id: int, prompt: str) -> str:
    """The ``content_hash`` of the retrieval key that lets ``prompt`` find passage ``passage_id``."""
    return f"{KEY_PREFIX}{passage_id}:{content_hash(prompt)[:KEY_HASH_CHARS]}"


def exact_row(r: dict) -> ExactRow:
    """A stored row as the exact tier's index holds it: a retrieval key by its prompt's hash (the part of
    its ``content_hash`` after the passage id), a passage by its text's (computed from the text in a
    reference collection, which has no hashes)."""
    row_id, stored = int(r["id"]), r.get(HASH_FIELD) or ""
    if stored.startswith(KEY_PREFIX):
        _, pid, prompt_hash = stored.split(":", 2)
        return ExactRow(row_id, prompt_hash, int(pid))
    text = r.get(CONTENT_FIELD, "")
    h = (stored or content_hash(text))[:KEY_HASH_CHARS]
    return ExactRow(row_id, h, row_id, r.get(BIZ_FIELD, ""), text)


def keys_of(passage_id: int) -> str:
    """The filter for every retrieval key of one passage."""
    return f'{HASH_FIELD} like "{KEY_PREFIX}{passage_id}:%"'


def passage_id(row_id: int, row_hash: str) -> int:
    """The passage a row stands for: itself, or the passage a retrieval key points at."""
    if row_hash.startswith(KEY_PREFIX):
        return int(row_hash.split(":")[1])
    return row_id


def matches(hits: list[Hit]) -> list[Match]:
    """Hits as passages, best first: a passage and its retrieval key can both come back, the best counts."""
    out, seen = [], set()
    for h in hits:
        pid = passage_id(h.id, h.entity.get(HASH_FIELD, ""))
        if pid in seen:
            continue
        seen.add(pid)
        out.append(
            Match(
                id=pid,
                biz_id=h.entity.get(BIZ_FIELD, ""),
                content=h.entity.get(CONTENT_FIELD, ""),
                similarity=h.similarity,
            )
        )
    return out


def passage_row(r: dict) -> dict:
    """A stored row as the API shows a passage."""
    return {"id": int(r["id"]), "biz_id": r.get(BIZ_FIELD, ""), "content": r.get(CONTENT_FIELD, "")}
