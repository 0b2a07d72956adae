"""Filling the exact tier's index (``writing.core.exact``) and bringing it other workers' changes.

- **At start-up**, in the background (``Jobs``; start-up waits for it at most ``START_WAIT`` seconds,
  and until the index is filled requests miss the exact tier and take the semantic tiers): every row of
  the curated corpus and of the answer store, one read each (``ExactSource.exact_rows``), retried every
  ``MILVUS_RETRY_INTERVAL`` while a store is down.
- **Then every ``EXACT_REFRESH_INTERVAL`` seconds**, with a Milvus server only (other workers and
  ``ingest.py`` write to it; a Milvus Lite file has one owning process, whose own changes reach its index
  at once): one id-only scan per store (Strong consistency), the rows of the ids the index lacks, and the
  removal of the ids the store no longer holds (a passage or answer deleted by another worker, its TTL
  purge or eviction). A store that is down is skipped until the next run; the index answers as it was.

The reads run in a worker thread through the store's own link (``Link.call``); the changes are applied
on the event loop, in chunks, so a large first fill does not stall requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from writing.core.exact import ExactIndex
from writing.core.links import Link
from writing.core.ports import ExactSource
from writing.errors import VectorStoreError

logger = logging.getLogger(__name__)

APPLY_CHUNK = 2000  # rows added per turn of the event loop
START_WAIT = 2.0  # seconds start-up waits for the first fill (a small store is then served exactly at once)


class ExactSync:
    def __init__(self, index: ExactIndex, sources: Sequence[tuple[str, ExactSource, Link]]) -> None:
        self.index = index
        self.sources = list(sources)  # (domain, store, its link)
        self.runs = 0  # completed reloads of all stores (tests wait on it)
        self.filled = asyncio.Event()  # the first fill read every store

    async def sync(self, domain: str, source: ExactSource, link: Link) -> tuple[int, int]:
        """Reload one store into the index; returns (rows added, ids removed)."""
        entries = self.index.entries(domain)
        since = entries.begin()
        try:
            known = entries.ids()

            def read() -> tuple[set[int], list]:
                if not known:  # the first fill (or an empty store): every row, in one pass
                    rows = [r for batch in source.exact_rows() for r in batch]
                    return {r.id for r in rows}, rows
                seen = {i for batch in source.exact_ids() for i in batch}
                new = sorted(seen - known)
                return seen, [r for batch in source.exact_rows(new) for r in batch] if new else []

            seen, rows = await link.call(read)
            held = entries.ids()
            entries.reconcile_removed(seen, since)
            removed = len(held) - len(entries.ids())
            for start in range(0, len(rows), APPLY_CHUNK):
                entries.reconcile_added(rows[start : start + APPLY_CHUNK], since)
                await asyncio.sleep(0)
            self.index.filled[domain] = True
            return len(rows), removed
        finally:
            entries.end()

    async def sync_all(self) -> bool:
        """Reload every store; False when one could not be read (the others are reloaded all the same)."""
        ok = True
        for domain, source, link in self.sources:
            try:
                added, removed = await self.sync(domain, source, link)
            except VectorStoreError as exc:
                logger.warning("exact index: the %s store is unavailable, reloaded later: %s", domain, exc)
                ok = False
                continue
            except Exception:
                logger.exception("exact index: reloading the %s store failed", domain)
                ok = False
                continue
            if added or removed:
                logger.debug("exact index: %s +%d -%d", domain, added, removed)
        self.runs += 1
        return ok

    async def run(self, interval: float, retry_interval: float) -> None:
        """The job: fill the index (retried until every store was read), then reload every ``interval``
        seconds (0: never)."""
        while not await self.sync_all():
            await asyncio.sleep(retry_interval)
        self.filled.set()
        logger.info("exact index filled: %s", self.index.sizes())
        while interval > 0:
            await asyncio.sleep(interval)
            await self.sync_all()

    async def wait_filled(self, timeout: float = START_WAIT) -> bool:
        """Wait (at most ``timeout`` seconds) for the first fill; False when it is still running."""
        try:
            await asyncio.wait_for(self.filled.wait(), timeout)
        except TimeoutError:
            return False
        return True
