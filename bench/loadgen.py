"""A lean HTTP/1.1 load generator: keep-alive GETs on raw asyncio streams, for the benchmarks.

The service shares this machine's cores with whatever drives it, and httpx spends about 3 ms of CPU
per request here (bench/hit_path.py reports the load generator's CPU per request as
``cpu_ms_per_req["bench+fake-llm"]``): on short prompts that is a third of what the bare model needs
per text, taken from the service under test. In production the callers run elsewhere. This client
does what the benchmarks need and no more (GET with a query string, Content-Length or chunked
bodies, keep-alive with a pool of connections) at a fraction of that cost. It answers like httpx's
``AsyncClient.get``: ``status_code``, ``headers`` (lower-case names), ``content``, ``json()``.

Not a general HTTP client: no TLS, no redirects, no proxies, no HTTP/2; 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit


@dataclass
class LeanResponse:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""

    @property
    def text(self) -> str:
        return self.content.decode("utf-8")

    def json(self):
        return json.loads(self.content)


class LeanClient:
    """``async with LeanClient(base_url, timeout=...) as c: r = await c.get(path, params={...})``."""

    def __init__(self, base_url: str, *, timeout: float = 120) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http":
            raise ValueError("LeanClient speaks plain http only")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def __aenter__(self) -> LeanClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()

    async def get(self, path: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None):
        target = path + ("?" + urlencode(params) if params else "")
        lines = [f"GET {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        return await asyncio.wait_for(self._exchange(request), self.timeout)

    async def _exchange(self, request: bytes) -> LeanResponse:
        while self._idle:  # a pooled connection the server has closed meanwhile (keep-alive timeout)
            reader, writer = conn = self._idle.pop()
            try:
                writer.write(request)
                response, keep = await _read_response(reader)
            except _Stale:
                writer.close()  # closed before a byte of the answer: a GET is safe to send again
                continue
            except BaseException:
                writer.close()
                raise
            break
        else:
            reader, writer = conn = await asyncio.open_connection(self.host, self.port)
            try:
                writer.write(request)
                response, keep = await _read_response(reader)
            except BaseException:
                writer.close()
                raise
        if keep:
            self._idle.append(conn)
        else:
            writer.close()
        return response


class _Stale(ConnectionError):
    """The connection was closed before the response began (a pooled connection the server dropped)."""


async def _read_response(reader: asyncio.StreamReader) -> tuple[LeanResponse, bool]:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        raise _Stale("closed before the response") from None
    except ConnectionResetError:
        raise _Stale("reset before the response") from None
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # the empty trailer
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(chunks)
    else:
        body = await reader.read()
        return LeanResponse(status, headers, body), False
    return LeanResponse(status, headers, body), headers.get("connection", "").lower() != "close"
