"""``within``: a timeout armed only when the awaited coroutine suspends (the stall timeout of every
response piece, and the body read's deadline)."""

from __future__ import annotations

import asyncio

import pytest

from writing.api.waits import within


def test_a_coroutine_that_never_waits_arms_no_timer(monkeypatch):
    def no_timer(*_args):
        raise AssertionError("a timer was armed")

    async def ready() -> str:
        return "done"

    async def go() -> str:
        monkeypatch.setattr(asyncio, "timeout", no_timer)
        return await within(ready(), 0.001)

    assert asyncio.run(go()) == "done"


def test_a_coroutine_that_waits_less_than_the_timeout_returns_its_value():
    async def slow() -> int:
        await asyncio.sleep(0.01)
        await asyncio.sleep(0)
        return 7

    assert asyncio.run(within(slow(), 5)) == 7


def test_a_coroutine_that_waits_too_long_is_cancelled_and_raises_timeout():
    seen: list[str] = []

    async def stuck() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def go() -> None:
        await within(stuck(), 0.02)

    with pytest.raises(TimeoutError):
        asyncio.run(go())
    assert seen == ["cancelled"]


def test_no_timeout_given_waits_as_long_as_it_takes():
    async def slow() -> int:
        await asyncio.sleep(0.01)
        return 1

    assert asyncio.run(within(slow(), None)) == 1


def test_errors_come_through_before_and_after_a_suspension():
    async def at_once() -> None:
        raise ValueError("first step")

    async def later() -> None:
        await asyncio.sleep(0)
        raise KeyError("second step")

    with pytest.raises(ValueError, match="first step"):
        asyncio.run(within(at_once(), 1))
    with pytest.raises(KeyError):
        asyncio.run(within(later(), 1))


def test_a_cancelled_caller_cancels_the_coroutine_and_stays_cancelled():
    seen: list[str] = []

    async def stuck() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            seen.append("finally")

    async def go() -> None:
        task = asyncio.ensure_future(within(stuck(), 5))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert seen == ["finally"]


def test_a_coroutine_that_handles_a_thrown_error_goes_on():
    async def resilient() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0)
            return "recovered"
        return "slept"

    async def go() -> str:
        task = asyncio.ensure_future(within(resilient(), None))
        await asyncio.sleep(0.01)
        task.cancel()
        return await task

    assert asyncio.run(go()) == "recovered"


def test_an_awaitable_that_is_not_a_coroutine_is_awaited_under_the_timeout():
    async def go() -> str:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        loop.call_later(0.01, ready.set_result, "future")
        first = await within(ready, 5)
        never = loop.create_future()
        try:
            await within(never, 0.01)
        except TimeoutError:
            return first
        return "no timeout"

    assert asyncio.run(go()) == "future"
