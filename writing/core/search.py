"""One vector-store call per batch: the searches of requests that arrive together are made together.

The embedding batcher resolves a whole batch of prompts at once, so their requests resume in the same
turn of the event loop and each asks for its search. ``BatchedSearch`` collects the searches asked for
in that turn (grouped by a key: the filter they share, e.g. the answer tier's tenant and context) and
makes one call per group in one worker thread, instead of one round trip and one thread hop per
request. Each request's own follow-up (``then``: the threshold, the blocklist, the second check) runs in
that same thread right after the call, so the event loop never runs it and no extra hop is paid.

Nothing waits for company: the flush is scheduled with ``call_soon``, i.e. after the requests that are
already runnable, so a lone request costs one loop turn, not a timer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

H = TypeVar("H")  # what the store returns per vector


@dataclass
class _Pending:
    vector: Any
    then: Callable[[Any], Any]
    future: asyncio.Future


@dataclass
class SearchStats:
    calls: int = 0  # store calls made
    searches: int = 0  # searches asked for
    largest: int = 0  # most vectors in one call


class BatchedSearch(Generic[H]):
    """``await search(key, vector, then)`` -> ``then(hits)``, computed in a worker thread where the
    searches asked for in one loop turn under the same ``key`` share one ``search_many(key, vectors)``."""

    def __init__(self, search_many: Callable[[Hashable, Sequence[Any]], list[H]], *, max_batch: int = 64) -> None:
        self._search_many = search_many
        self.max_batch = max_batch
        self._pending: dict[Hashable, list[_Pending]] = {}
        self._scheduled = False
        self.stats = SearchStats()

    async def search(self, key: Hashable, vector: Any, then: Callable[[H], Any]) -> Any:
        loop = asyncio.get_running_loop()
        item = _Pending(vector, then, loop.create_future())
        self._pending.setdefault(key, []).append(item)
        self.stats.searches += 1
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await item.future

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, {}
        for key, items in pending.items():
            for start in range(0, len(items), self.max_batch):
                group = [i for i in items[start : start + self.max_batch] if not i.future.cancelled()]
                if group:
                    asyncio.ensure_future(self._run(key, group))

    async def _run(self, key: Hashable, group: list[_Pending]) -> None:
        self.stats.calls += 1
        self.stats.largest = max(self.stats.largest, len(group))
        try:
            results = await asyncio.to_thread(self._call, key, group)
        except Exception as exc:  # noqa: BLE001 - the store's failure is every waiter's failure
            for item in group:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        for item, (ok, value) in zip(group, results, strict=True):
            if item.future.done():
                continue
            if ok:
                item.future.set_result(value)
            else:
                item.future.set_exception(value)

    def _call(self, key: Hashable, group: list[_Pending]) -> list[tuple[bool, Any]]:
        hits = self._search_many(key, [i.vector for i in group])
        out: list[tuple[bool, Any]] = []
        for item, h in zip(group, hits, strict=True):
            try:  # one request's follow-up failing must not fail its batch-mates
                out.append((True, item.then(h)))
            except Exception as exc:  # noqa: BLE001 - handed to that request's own future
                out.append((False, exc))
        return out
