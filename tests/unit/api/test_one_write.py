"""``python app.py``'s response cycle writes a JSON answer's head and body in one write (issue 30), a
stream's head with its first piece, and a head whose body is late on the next turn of the loop."""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.flow_control import FlowControl

from writing.api.server import OneWriteCycle


class Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def cycle(transport: Transport, *, keep_alive: bool = True, method: str = "GET") -> OneWriteCycle:
    done: list[bool] = []
    scope = {"type": "http", "method": method, "http_version": "1.1", "path": "/", "query_string": b"", "headers": []}
    c = OneWriteCycle(
        scope,  # type: ignore[arg-type]
        transport,  # type: ignore[arg-type]
        FlowControl(transport),  # type: ignore[arg-type]
        logging.getLogger("test"),
        logging.getLogger("test.access"),
        False,
        [],
        asyncio.Event(),
        False,
        keep_alive,
        lambda: done.append(True),
    )
    return c


def start(length: int | None) -> dict:
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http.response.start", "status": 200, "headers": headers}


def test_a_whole_response_goes_in_one_write():
    async def go() -> Transport:
        t = Transport()
        c = cycle(t)
        await c.send(start(9))
        await c.send({"type": "http.response.body", "body": b'{"x":"y"}'})
        await asyncio.sleep(0)  # the flush a late body would get: nothing left for it
        return t

    t = asyncio.run(go())
    assert len(t.writes) == 1
    head, body = t.writes[0].split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK") and b"content-length: 9" in head
    assert body == b'{"x":"y"}'


def test_a_stream_sends_its_head_with_the_first_piece_then_the_rest_as_uvicorn_does():
    async def go() -> Transport:
        t = Transport()
        c = cycle(t)
        await c.send(start(None))
        await c.send({"type": "http.response.body", "body": b"a", "more_body": True})
        await c.send({"type": "http.response.body", "body": b"b", "more_body": False})
        return t

    t = asyncio.run(go())
    assert len(t.writes) == 2
    assert t.writes[0].startswith(b"HTTP/1.1 200 OK") and t.writes[0].endswith(b"\r\n\r\n1\r\na\r\n")
    assert t.writes[1] == b"1\r\nb\r\n0\r\n\r\n"  # uvicorn's own: the last piece and the end together


def test_a_head_whose_body_is_late_goes_out_on_the_next_turn():
    async def go() -> tuple[list[bytes], Transport]:
        t = Transport()
        c = cycle(t)
        await c.send(start(None))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        before = list(t.writes)
        await c.send({"type": "http.response.body", "body": b"", "more_body": False})
        return before, t

    before, t = asyncio.run(go())
    assert len(before) == 1 and before[0].startswith(b"HTTP/1.1 200 OK")
    assert t.writes[1:] == [b"0\r\n\r\n"]


def test_a_closing_connection_writes_before_it_closes():
    async def go() -> Transport:
        t = Transport()
        c = cycle(t, keep_alive=False)
        await c.send(start(2))
        await c.send({"type": "http.response.body", "body": b"{}"})
        return t

    t = asyncio.run(go())
    assert len(t.writes) == 1 and t.writes[0].endswith(b"\r\n\r\n{}") and b"connection: close" in t.writes[0]
    assert t.closed


def test_a_head_request_writes_the_head_alone():
    async def go() -> Transport:
        t = Transport()
        c = cycle(t, method="HEAD")
        await c.send(start(9))
        await c.send({"type": "http.response.body", "body": b""})
        return t

    t = asyncio.run(go())
    assert len(t.writes) == 1 and t.writes[0].endswith(b"\r\n\r\n")
