"""``python app.py``'s response cycle writes a JSON answer's head and body in one write (issue 30), a
stream's head with its first piece, and a head whose body is late on the next turn of the loop."""

from __future__ import annotations

import asyncio
import logging

import pytest
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

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


def cycle(transport: Transport, *, keep_alive: bool = True, method: str = "GET", kind=OneWriteCycle):
    done: list[bool] = []
    scope = {"type": "http", "method": method, "http_version": "1.1", "path": "/", "query_string": b"", "headers": []}
    c = kind(
        scope,  # type: ignore[arg-type]
        transport,  # type: ignore[arg-type]
        FlowControl(transport),  # type: ignore[arg-type]
        logging.getLogger("test"),
        logging.getLogger("test.access"),
        False,
        [(b"server", b"uvicorn")],
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


HEADS = [
    ("json", "GET", True, 200, [(b"content-type", b"application/json"), (b"content-length", b"2")], b"{}"),
    ("mixed case names", "GET", True, 200, [(b"Content-Length", b"2"), (b"X-Writing-Source", b"milvus")], b"{}"),
    ("no length: chunked", "GET", True, 200, [(b"content-type", b"text/plain")], b"ab"),
    ("chunked given", "GET", True, 200, [(b"Transfer-Encoding", b"Chunked")], b"ab"),
    ("connection close", "GET", True, 200, [(b"content-length", b"2"), (b"connection", b"keep-alive, Close")], b"{}"),
    ("not kept alive", "GET", False, 200, [(b"content-length", b"2")], b"{}"),
    ("head", "HEAD", True, 200, [(b"content-length", b"9")], b""),
    ("no content", "GET", True, 204, [], b""),
    ("not modified", "GET", True, 304, [(b"etag", b'"x"')], b""),
    ("tab in a value", "GET", True, 200, [(b"content-length", b"2"), (b"x-a", b"a\tb")], b"{}"),
    ("two lengths: the first counts", "GET", True, 200, [(b"content-length", b"2"), (b"Content-Length", b"5")], b"{}"),
    ("length then chunked", "GET", True, 200, [(b"content-length", b"2"), (b"transfer-encoding", b"chunked")], b"ab"),
    ("connection keep-alive", "GET", True, 200, [(b"connection", b"keep-alive"), (b"content-length", b"2")], b"{}"),
]


@pytest.mark.parametrize(
    ("method", "keep_alive", "status", "headers", "body"), [h[1:] for h in HEADS], ids=[h[0] for h in HEADS]
)
def test_the_head_is_uvicorns_byte_for_byte(method, keep_alive, status, headers, body):
    """``_start`` builds the head itself (two checks for all the headers, not two per header): the bytes on
    the wire and the cycle's state after the response are uvicorn's own."""

    async def go(kind) -> tuple[bytes, tuple]:
        t = Transport()
        c = cycle(t, keep_alive=keep_alive, method=method, kind=kind)
        await c.send({"type": "http.response.start", "status": status, "headers": list(headers)})
        await c.send({"type": "http.response.body", "body": body})
        await asyncio.sleep(0)
        state = (c.keep_alive, c.chunked_encoding, c.expected_content_length, c.response_complete, t.closed)
        return b"".join(t.writes), state

    assert asyncio.run(go(OneWriteCycle)) == asyncio.run(go(RequestResponseCycle))


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ([(b"bad name", b"x")], "Invalid HTTP header name."),
        ([(b"x-a", b"ok"), (b"x-b(", b"x")], "Invalid HTTP header name."),
        ([(b"x-a", b"line\r\nx-injected: 1")], "Invalid HTTP header value."),
        ([(b"x-a", b"ok"), (b"x-b", b"nul\x00")], "Invalid HTTP header value."),
    ],
)
def test_a_bad_header_is_refused_as_uvicorn_refuses_it(headers, error):
    async def go(kind) -> str:
        c = cycle(Transport(), kind=kind)
        with pytest.raises(RuntimeError) as info:
            await c.send({"type": "http.response.start", "status": 200, "headers": headers})
        return str(info.value)

    assert asyncio.run(go(OneWriteCycle)) == asyncio.run(go(RequestResponseCycle)) == error


@pytest.mark.parametrize(
    ("length", "body", "error"),
    [
        (b"2", b"{}}", "Response content longer than Content-Length"),
        (b"5", b"{}", "Response content shorter than Content-Length"),
    ],
)
def test_a_body_that_is_not_its_content_length_is_refused_as_uvicorn_refuses_it(length, body, error):
    async def go(kind) -> str:
        c = cycle(Transport(), kind=kind)
        await c.send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]})
        with pytest.raises(RuntimeError) as info:
            await c.send({"type": "http.response.body", "body": body})
        return str(info.value)

    assert asyncio.run(go(OneWriteCycle)) == asyncio.run(go(RequestResponseCycle)) == error


def test_a_head_held_while_the_peer_reads_goes_out_once_with_its_body():
    """A connection paused for writing when the body comes: the head waits with it (never written alone by
    the next turn's flush, then again with the body)."""

    async def go() -> Transport:
        t = Transport()
        c = cycle(t)
        await c.send(start(2))
        c.flow.pause_writing()
        asyncio.get_running_loop().call_later(0.01, c.flow.resume_writing)
        await c.send({"type": "http.response.body", "body": b"{}"})
        await asyncio.sleep(0)
        return t

    t = asyncio.run(go())
    assert len(t.writes) == 1 and t.writes[0].startswith(b"HTTP/1.1 200 OK") and t.writes[0].endswith(b"\r\n\r\n{}")
