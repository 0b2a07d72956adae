"""The one stream relay: LLM deltas (or a stored text replayed as deltas) -> an HTTP response body.

Used by ``/chat`` (plain text) and ``/v1/chat/completions`` (server-sent chunks); each surface supplies
a ``StreamEncoder`` that says how a piece, the end and a failure look on the wire. The relay:

- waits for the first delta before the response starts (``prime``), so an LLM that is down gets a
  JSON 502/504 rather than a 200 with an empty body;
- relays the rest as it comes, and ends with the encoder's closing pieces;
- turns an LLM failure after the start into the encoder's error pieces (the upstream text is logged,
  never sent);
- closes the upstream request when the client goes away (cancellation) or the stream ends;
- is served by ``RelayResponse``, which closes it however the response ends, a client dropped for not
  reading (the middleware's ``STREAM_STALL_TIMEOUT``) included, so the upstream request never outlives it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Protocol

from starlette.responses import StreamingResponse

from writing.core.models import Delta
from writing.errors import LLMError

logger = logging.getLogger(__name__)


class StreamEncoder(Protocol):
    def opening(self) -> Iterable[str]: ...

    def piece(self, text: str) -> str: ...

    async def closing(self, finish_reason: str, text: str) -> Iterable[str]:
        """After the last delta; ``text`` is everything that was relayed."""

    def failure(self, exc: LLMError) -> Iterable[str]: ...


class PrimedStream:
    """Deltas whose first item has been awaited already (None: the stream was empty)."""

    def __init__(self, deltas: AsyncIterator[Delta], first: Delta | None) -> None:
        self.deltas = deltas
        self._first = first
        self._ended = first is None

    def __aiter__(self) -> PrimedStream:
        return self

    async def __anext__(self) -> Delta:
        if self._ended:
            raise StopAsyncIteration
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return await self.deltas.__anext__()

    async def aclose(self) -> None:
        aclose = getattr(self.deltas, "aclose", None)
        if aclose is not None:
            await aclose()


async def prime(deltas: AsyncIterator[Delta]) -> PrimedStream:
    """Await the first delta; an LLM failure raises here, before any response has started."""
    try:
        first: Delta | None = await deltas.__anext__()
    except StopAsyncIteration:
        first = None
    except BaseException:
        aclose = getattr(deltas, "aclose", None)
        if aclose is not None:
            await aclose()
        raise
    return PrimedStream(deltas, first)


async def replay(text: str, chunk_chars: int) -> AsyncIterator[Delta]:
    """A stored text as deltas of ``chunk_chars`` characters, finishing with ``stop``."""
    for i in range(0, len(text), chunk_chars):
        yield Delta(text[i : i + chunk_chars])
    yield Delta("", "stop")


async def relay(stream: PrimedStream, encoder: StreamEncoder, *, request_id: str, route: str) -> AsyncIterator[str]:
    parts: list[str] = []
    finish: str | None = None
    try:
        for piece in encoder.opening():
            yield piece
        async for delta in stream:
            if delta.text:
                parts.append(delta.text)
                yield encoder.piece(delta.text)
            finish = delta.finish_reason or finish
        for piece in await encoder.closing(finish or "stop", "".join(parts)):
            yield piece
    except LLMError as exc:
        logger.error(
            "request_id=%s %s stream broke after %d pieces: %s: %s", request_id, route, len(parts), exc.code, exc
        )
        for piece in encoder.failure(exc):
            yield piece
    except asyncio.CancelledError:
        logger.info(
            "request_id=%s %s client went away after %d pieces; upstream cancelled", request_id, route, len(parts)
        )
        raise
    finally:
        await stream.aclose()


class RelayResponse(StreamingResponse):
    """A StreamingResponse that closes its body iterator (and so the upstream request) when it ends for
    any reason; starlette leaves an unfinished iterator to the garbage collector."""

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()
