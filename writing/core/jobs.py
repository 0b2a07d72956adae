"""Background work that outlives a request: periodic jobs and fire-and-forget tasks.

Owned by the app's lifespan (one ``Jobs`` per app, closed on shutdown), not by the decision: the
answering spawns its streamed write-backs here, the lifespan registers the periodic jobs (answer-store
upkeep, the blocklist and threshold refreshes, the stats history). A failing run is logged, not fatal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine

from writing.errors import VectorStoreError

logger = logging.getLogger(__name__)


class Jobs:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, coro: Coroutine) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def every(self, interval: float, job: Callable[[], Awaitable[object]], name: str) -> None:
        """Run ``job`` every ``interval`` seconds until ``close``; nothing when ``interval`` <= 0."""
        if interval <= 0:
            return

        async def forever() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await job()
                except VectorStoreError as exc:
                    logger.warning("%s: the store is unavailable: %s", name, exc)
                except Exception:
                    logger.exception("%s failed", name)

        self.spawn(forever())

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
