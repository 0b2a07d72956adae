"""The one stream relay, with scripted deltas: priming, relaying, closing, failures, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import pytest

from writing.api.serving.generate import PlainTextEncoder
from writing.api.streaming import prime, relay, replay
from writing.core.models import Delta
from writing.errors import LLMError, LLMTimeout, LLMUnavailable


class Upstream:
    """Deltas as an LLM stream yields them; records whether it was closed."""

    def __init__(
        self, pieces: list[str], *, fail_at: int | None = None, fail_first: bool = False, hang_at: int | None = None
    ) -> None:
        self.pieces = pieces
        self.fail_at = fail_at
        self.fail_first = fail_first
        self.hang_at = hang_at
        self.closed = False

    async def deltas(self) -> AsyncIterator[Delta]:
        try:
            if self.fail_first:
                raise LLMUnavailable("injected: connection refused")
            for i, piece in enumerate(self.pieces):
                if i == self.fail_at:
                    raise LLMTimeout("injected: no chunk in time")
                if i == self.hang_at:
                    await asyncio.sleep(3600)
                yield Delta(piece)
            yield Delta("", "length")
        finally:
            self.closed = True


class Recorder:
    """A StreamEncoder that shows what the relay asked of it."""

    def opening(self) -> Iterable[str]:
        return ["<open>"]

    def piece(self, text: str) -> str:
        return f"[{text}]"

    async def closing(self, finish_reason: str, text: str) -> Iterable[str]:
        return [f"<end {finish_reason} {text!r}>"]

    def failure(self, exc: LLMError) -> Iterable[str]:
        return [f"<error {exc.code}: {exc.public_message}>"]


async def collect(upstream: Upstream, encoder=None) -> list[str]:
    stream = await prime(upstream.deltas())
    return [p async for p in relay(stream, encoder or Recorder(), request_id="r1", route="/test")]


async def test_pieces_are_relayed_in_order_between_opening_and_closing():
    up = Upstream(["春", "天", "来了"])
    assert await collect(up) == ["<open>", "[春]", "[天]", "[来了]", "<end length '春天来了'>"]
    assert up.closed


async def test_a_failure_before_the_first_delta_raises_before_anything_is_sent():
    up = Upstream(["x"], fail_first=True)
    with pytest.raises(LLMUnavailable):
        await prime(up.deltas())
    assert up.closed


async def test_a_failure_mid_stream_ends_with_the_encoders_error_and_no_upstream_text():
    up = Upstream(["a", "b", "c"], fail_at=2)
    out = await collect(up)
    assert out == ["<open>", "[a]", "[b]", "<error llm_timeout: the language model did not answer in time>"]
    assert not any("injected" in p for p in out) and up.closed


async def test_the_client_going_away_closes_the_upstream():
    up = Upstream(["a", "b", "c"], hang_at=1)
    stream = await prime(up.deltas())
    body = relay(stream, Recorder(), request_id="r1", route="/test")
    got = [await body.__anext__(), await body.__anext__()]
    pending = asyncio.ensure_future(body.__anext__())
    await asyncio.sleep(0.01)
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    assert got == ["<open>", "[a]"] and up.closed


async def test_an_empty_stream_still_opens_and_closes():
    async def nothing() -> AsyncIterator[Delta]:
        return
        yield  # pragma: no cover - makes this an async generator

    stream = await prime(nothing())
    out = [p async for p in relay(stream, Recorder(), request_id="r1", route="/test")]
    assert out == ["<open>", "<end stop ''>"]


async def test_a_stored_text_replays_as_pieces_that_finish_with_stop():
    stream = await prime(replay("一二三四五六七八九", 4))
    out = [p async for p in relay(stream, Recorder(), request_id="r1", route="/test")]
    assert out == ["<open>", "[一二三四]", "[五六七八]", "[九]", "<end stop '一二三四五六七八九'>"]


async def test_plain_text_for_chat_shows_a_failure_as_a_last_line():
    out = await collect(Upstream(["a", "b"], fail_at=1), PlainTextEncoder())
    assert out[0] == "a" and out[-1].startswith("\n[error] the language model did not answer in time")
