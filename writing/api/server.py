"""How ``python app.py`` serves: uvicorn with its HTTP protocol bounded (``serve``).

uvicorn arms its only idle timer (``timeout_keep_alive``) after a response. A connection that opens and
then sends its request head slowly, or never finishes it, is held forever: a few hundred of them
(slowloris) and the service stops answering. Two bounds, in each worker process:

- a header-read timeout: a connection that has not sent a complete request head (request line and
  headers) ``HEADER_READ_TIMEOUT`` seconds after it opened, or after the first byte of its next request
  on a kept-alive connection, is closed. Idle between requests, ``KEEP_ALIVE_TIMEOUT`` applies as before;
- a connection cap: past ``MAX_CONNECTIONS`` open connections (``MAX_CONNECTIONS_PER_CLIENT`` from one
  address) a new connection is closed at once, before anything is read from it.

``uvicorn app:app`` cannot have them (the app never sees a connection): a proxy in front must bound
connections instead (docs/operations.md). Imported by ``main()`` only, so importing the app stays cheap.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
import time
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol  # httptools when installed (here), else h11
from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE, STATUS_LINE, RequestResponseCycle
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

if TYPE_CHECKING:
    from writing.settings import Settings

log = logging.getLogger(__name__)

STATE_HEADERS = frozenset((b"content-length", b"transfer-encoding", b"connection"))  # what uvicorn's send reads
CONTENT_LENGTH = frozenset((b"content-length",))
HEADER_LINE = b"%s: %s\r\n"
FD_RESERVE = 256  # descriptors besides the connections: model files, Milvus, the LLM client's pool, logs
WARN_EVERY = 10.0  # seconds between two log lines about refused connections (a flood writes no flood)


@dataclass
class Limits:
    """The bounds, from the settings; one copy per worker process (uvicorn pickles the factory to each)."""

    header_timeout: float
    max_connections: int  # 0 = no cap
    max_per_client: int  # 0 = no cap
    warned_at: float = float("-inf")  # when a refusal was last logged, in this process


class BoundedHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
    """uvicorn's default HTTP/1.1 protocol, with the header-read timeout and the connection cap."""

    def __init__(self, *args: Any, limits: Limits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # joins the server's set of connections, which the cap counts
        reason = self._over_cap()
        if reason:
            self._warn(reason)
            transport.close()  # connection_lost follows at once and takes it out of the set
            return
        self.header_timer = self.loop.call_later(self.limits.header_timeout, self._header_timeout)

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle  # uvicorn starts a new request-response cycle when a request head is complete
        super().data_received(data)
        if self.cycle is not cycle or self.transport.get_protocol() is not self:  # or on a WebSocket upgrade
            self._cancel_header_timer()
        elif (
            self.header_timer is None and (cycle is None or cycle.response_complete) and not self.transport.is_closing()
        ):
            # the first bytes of the next request on a kept-alive connection (uvicorn has just cancelled
            # its keep-alive timer): its head is due in time too. Later bytes never restart the timer.
            self.header_timer = self.loop.call_later(self.limits.header_timeout, self._header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()  # type: ignore[misc]  # httptools' callback: a new cycle per request
        if type(self.cycle) is RequestResponseCycle:
            self.cycle.__class__ = OneWriteCycle  # its ASGI task runs from the next loop turn: it sends as one
            self.cycle.loop = self.loop

    def _header_timeout(self) -> None:
        self.header_timer = None
        if not self.transport.is_closing():
            log.debug("closing %s: no complete request head in %.1f s", self.client, self.limits.header_timeout)
            self.transport.close()

    def _cancel_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _over_cap(self) -> str | None:
        limits = self.limits
        if limits.max_connections and len(self.connections) > limits.max_connections:
            return f"{limits.max_connections} connections open (MAX_CONNECTIONS)"
        if limits.max_per_client and self.client:
            host = self.client[0]
            same = sum(1 for c in self.connections if (getattr(c, "client", None) or ("",))[0] == host)
            if same > limits.max_per_client:
                return f"{limits.max_per_client} connections open from {host} (MAX_CONNECTIONS_PER_CLIENT)"
        return None

    def _warn(self, reason: str) -> None:
        now = time.monotonic()
        if now - self.limits.warned_at >= WARN_EVERY:
            self.limits.warned_at = now
            log.warning("refusing new connections: %s (logged at most every %.0f s)", reason, WARN_EVERY)


class _Held:
    """A transport stand-in for one ``send``: what uvicorn writes is kept, a close waits for it."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.data: list[bytes] = []
        self.close_after = False

    def write(self, data: bytes) -> None:
        self.data.append(data)

    def close(self) -> None:
        self.close_after = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class OneWriteCycle(RequestResponseCycle):
    """uvicorn's request-response cycle, with the response head held back and written together with the
    first body bytes: a whole JSON answer in one write (one syscall, one delivery to the peer) instead of
    two. A head whose body does not follow in the same turn of the loop (a stream still waiting for its
    first piece) goes out alone on the next turn, as before.

    The head is built by ``_start``, uvicorn's own code for ``http.response.start`` with its header checks
    made once over all the headers instead of twice per header."""

    loop: asyncio.AbstractEventLoop | None = None  # the connection's loop (BoundedHTTPProtocol sets it)
    _head: bytes | None = None
    _flush: asyncio.Handle | None = None

    async def send(self, message: Any) -> None:
        kind = message["type"]
        if kind == "http.response.start" and not self.response_started:
            if self.flow.write_paused and not self.disconnected:  # as uvicorn's send: the peer reads first
                await self.flow.drain()
            if self.disconnected:
                return
            self._head = self._start(message)
            self._flush = (self.loop or asyncio.get_running_loop()).call_soon(self._write_head)
            return
        if self._head is None or kind != "http.response.body":
            self._write_head()
            return await super().send(message)
        head, self._head = self._head, None
        if self._flush is not None:
            self._flush.cancel()
        if self._whole(message):  # the usual JSON answer: head and body in one write, without uvicorn's send
            return self._finish(head, message.get("body", b""))
        held = await self._send_held(message)  # uvicorn's send, for a body in pieces or a HEAD's
        if not self.disconnected and not self.transport.is_closing():
            self.transport.write(head + b"".join(held.data))
        if held.close_after:
            self.transport.close()

    def _start(self, message: Any) -> bytes:
        """The response head, as uvicorn's ``RequestResponseCycle.send`` makes it (the same bytes, the same
        state, the same errors), returned instead of written. uvicorn searches each header's name and value
        for a forbidden byte, two searches per header; both patterns match a single byte, so one search
        over all the names and one over all the values find the same."""
        self.response_started = True
        self.waiting_for_100_continue = False
        status_code = message["status"]
        headers = self.default_headers + list(message.get("headers", []))
        if self.access_log:
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d',
                get_client_addr(self.scope),
                self.scope["method"],
                get_path_with_query_string(self.scope),
                self.scope["http_version"],
                status_code,
            )
        names = list(map(bytes.lower, map(itemgetter(0), headers)))  # lower case changes no forbidden byte
        values = list(map(itemgetter(1), headers))
        if HEADER_RE.search(b"".join(names)):
            raise RuntimeError("Invalid HTTP header name.")
        if HEADER_VALUE_RE.search(b"".join(values)):
            raise RuntimeError("Invalid HTTP header value.")
        has_connection_close = False
        state = STATE_HEADERS.intersection(names)
        if state == CONTENT_LENGTH and self.chunked_encoding is None:  # the usual case: uvicorn reads the first
            self.expected_content_length = int(values[names.index(b"content-length")].decode())
            self.chunked_encoding = False
        elif state:  # uvicorn's reading of them, in their order
            for name, value in zip(names, values, strict=True):
                if name == b"content-length" and self.chunked_encoding is None:
                    self.expected_content_length = int(value.decode())
                    self.chunked_encoding = False
                elif name == b"transfer-encoding" and value.lower() == b"chunked":
                    self.expected_content_length = 0
                    self.chunked_encoding = True
                elif name == b"connection" and b"close" in [token.lower().strip() for token in value.split(b",")]:
                    self.keep_alive = False
                    has_connection_close = True
        content = [STATUS_LINE[status_code], *map(HEADER_LINE.__mod__, zip(names, values, strict=True))]
        if not self.keep_alive and not has_connection_close:
            content.append(b"connection: close\r\n")
        if self.chunked_encoding is None and self.scope["method"] != "HEAD" and status_code not in (204, 304):
            self.chunked_encoding = True  # neither content-length nor transfer-encoding given
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        return b"".join(content)

    def _whole(self, message: Any) -> bool:
        """Whether ``message`` is the last and only body of a response with a content-length, on a connection
        that can take it now: what ``_finish`` writes as uvicorn's send would."""
        return (
            self.chunked_encoding is False
            and not message.get("more_body", False)
            and self.scope["method"] != "HEAD"
            and not self.flow.write_paused
            and not self.disconnected
            and not self.response_complete
        )

    def _finish(self, head: bytes, body: bytes) -> None:
        """uvicorn's send of a response's whole body (its checks, its state, its close), head and body written
        together."""
        if len(body) > self.expected_content_length:
            raise RuntimeError("Response content longer than Content-Length")
        self.expected_content_length -= len(body)
        if not self.transport.is_closing():
            self.transport.write(head + body)
        if self.expected_content_length != 0:
            raise RuntimeError("Response content shorter than Content-Length")
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            self.transport.close()
        self.on_response()

    async def _send_held(self, message: Any) -> _Held:
        """uvicorn's own ``send``, with what it writes (and a close) kept back for the caller."""
        held = _Held(self.transport)
        self.transport = held  # type: ignore[assignment]
        try:
            await super().send(message)
        finally:
            self.transport = held.transport
        return held

    def _write_head(self) -> None:
        head, self._head = self._head, None
        if head and not self.disconnected and not self.transport.is_closing():
            self.transport.write(head)


def http_protocol(settings: Settings) -> functools.partial[BoundedHTTPProtocol]:
    """uvicorn's ``http=``: a protocol factory; picklable (WORKERS>1 sends it to each worker process)."""
    limits = Limits(settings.header_read_timeout, settings.max_connections, settings.max_connections_per_client)
    return functools.partial(BoundedHTTPProtocol, limits=limits)


def raise_open_files_limit(max_connections: int) -> None:
    """Lift the soft limit on open files (often 1024) to what the cap needs, so that the cap, not failing
    accept() calls, turns connections away. Worker processes inherit the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max_connections + FD_RESERVE
    if not max_connections or soft == resource.RLIM_INFINITY or soft >= want:
        return
    new = want if hard == resource.RLIM_INFINITY else min(want, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    except (ValueError, OSError) as exc:
        log.warning("could not raise the open-files limit to %d: %s", new, exc)
        return
    if new < want:
        log.warning("open files limited to %d (hard limit): lower MAX_CONNECTIONS below %d", new, new - FD_RESERVE)


def serve(app: Any, settings: Settings, workers: int | None = None) -> None:
    """``uvicorn.run`` with the settings' address, log level, keep-alive and bounds; ``app`` is the app, or
    ``"app:app"`` with ``workers=N``."""
    raise_open_files_limit(settings.max_connections)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_keep_alive=settings.keep_alive_timeout,
        http=http_protocol(settings),  # type: ignore[arg-type]  # uvicorn calls whatever it is given
        proxy_headers=False,  # the app reads X-Forwarded-For itself, from FORWARDED_ALLOW_IPS only (writing.api.proxy)
        workers=workers,
    )
