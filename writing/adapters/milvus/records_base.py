"""What the record collections (audit log, feedback reports, labelled pairs, run-time settings) share:
the constant vector of a collection that needs none, opening a collection once per process, and one page
of rows after an id cursor.

Milvus needs a vector in every collection: the audit log, the labels and the settings carry a constant
2-dimensional one (``MARKER_DIM``); a feedback report carries the reported prompt's embedding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from writing.adapters.milvus.collection import MilvusCollection

MARKER_DIM = 2  # the dimension of a collection whose vector means nothing


def marker_vector() -> list[float]:
    """The constant vector of a row in a ``MARKER_DIM`` collection (a fresh list per row)."""
    return [1.0, 0.0]


def open_once(coll: MilvusCollection, dim: int = MARKER_DIM) -> None:
    """Create (when missing) and load the collection the first time this process uses it."""
    if coll.dim is None:
        coll.ensure(dim)


class _HasId(Protocol):
    @property
    def id(self) -> int: ...


T = TypeVar("T", bound=_HasId)


def id_page(
    coll: MilvusCollection, fields: list[str], expr: str, limit: int, convert: Callable[[dict], T]
) -> tuple[list[T], int | None]:
    """Up to ``limit`` rows matching ``expr`` (which starts after the cursor), oldest id first, each through
    ``convert``; with the next cursor (the last id), or None when the rows ran out."""
    out: list[T] = []
    for rows in coll.iterate(fields, batch_size=min(max(limit, 10), 1000), expr=expr):
        for r in sorted(rows, key=lambda r: int(r["id"])):
            out.append(convert(r))
            if len(out) == limit:
                return out, out[-1].id
    return out, None
