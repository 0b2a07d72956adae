"""A deadline armed only when something waits: ``within(coro, seconds)``.

``asyncio.timeout`` costs a timer (a handle pushed on the loop's heap, then cancelled) and three looks
at the running loop on every use, about 7 microseconds. Around a send that the socket takes at once,
which is nearly every send, that is paid for nothing: ``within`` runs the coroutine's first step itself
and arms the timeout only when it suspends (a client that stopped reading, its buffer full).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")


async def within(coro: Coroutine[Any, Any, T], seconds: float | None) -> T:
    """``await coro`` with a timeout of ``seconds`` (``TimeoutError``; None: none), counted from its first
    suspension: a coroutine that finishes without suspending never arms a timer."""
    if not isinstance(coro, Coroutine):  # an awaitable of another kind (a future): awaited as it is
        async with asyncio.timeout(seconds):
            return await coro
    try:
        pending = coro.send(None)
    except StopIteration as stop:
        return stop.value
    async with asyncio.timeout(seconds):
        return await _Rest(coro, pending)


class _Rest:
    """A coroutine already started, awaitable from where it suspended: what ``await coro`` does (its
    futures go up to the task; a value sent or an exception thrown goes down to it), from its first
    suspension on."""

    __slots__ = ("coro", "pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.coro = coro
        self.pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self.coro, self.pending
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - the task's cancellation (or other) goes to the coroutine
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value
