"""One pure-ASGI middleware for what every request needs, streaming responses included.

- ``X-Request-ID``: accepted (when sane) or generated, available as ``request.state.request_id`` and
  returned on the response, errors included.
- API keys (``API_KEYS``): checked before anything else, so a request without a valid key learns
  nothing (not even whether its body parses); health, readiness, the API docs and the console's static
  files stay open (the console sends the key with each API call it makes). A metrics key
  (``METRICS_API_KEYS``) is refused (403) on everything but ``GET /metrics``, before its body is read.
- Limits: the request body is read first, within ``BODY_READ_TIMEOUT`` (408) and ``MAX_BODY_BYTES``
  (413); only then does the request take one of ``MAX_IN_FLIGHT`` slots (503 + Retry-After), so
  clients that send their bodies slowly hold no slot. One key (or, without keys, one client address)
  holds at most ``MAX_IN_FLIGHT_SHARE`` of the slots (429). A response that waits longer than
  ``STREAM_STALL_TIMEOUT`` on a client that stopped reading is dropped, which frees its slot and closes
  the upstream LLM request. Health, readiness and metrics are never refused.
- One structured access-log line per request (route, status, source, cache status, similarity, stage
  timings, total time), no prompt or answer text; request counts and total latency as metrics.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time

from writing.api.auth import CALLER, METRICS, METRICS_PATH, Caller, KeyRing, flow_of, is_loopback, trusted_host
from writing.api.errors import error_response
from writing.api.proxy import TrustedProxies, forwarded
from writing.api.waits import within
from writing.errors import (
    BodyTooLarge,
    ClientError,
    Forbidden,
    Overloaded,
    RequestTimeout,
    ServiceError,
    TooManyRequests,
    Unauthorized,
)
from writing.observability.metrics import Metrics

# under the package's logger like every other, with the name operators filter on (README: Operations)
access_logger = logging.getLogger("writing.access")

ID_BYTES, ID_POOL = 16, 256  # a request id's random bytes; ids per os.urandom call
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNLIMITED_PATHS = ("/healthz", "/readyz", "/metrics")
PROBE_PATHS = ("/healthz", "/readyz")
OPEN_PATHS = (
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/console",
    "/console/",
)
OPEN_PREFIXES = ("/console/static/", "/docs/assets/")  # files that hold no data; API calls carry the key
UNTRUSTED_HOST = ClientError(
    "the Host header does not name this service by a loopback name; with no API keys set, loopback clients "
    "are admins and must use localhost or 127.0.0.1 (TRUSTED_HOSTS adds names)"
)
UNAUTHORIZED = Unauthorized("a valid API key is required (Authorization: Bearer KEY or X-API-Key: KEY)")
METRICS_ONLY = Forbidden(
    "a metrics key (METRICS_API_KEYS) may only GET /metrics; use a key of API_KEYS or ADMIN_API_KEYS"
)
TOO_MANY_IN_FLIGHT = Overloaded("in flight", public_message="too many requests in flight; retry shortly")
BODY_METHODS = ("POST", "PUT", "PATCH")
READ_METHODS = ("GET", "HEAD")
LOGGED_HEADERS = frozenset((b"x-writing-source", b"x-cache", b"x-similarity", b"server-timing"))


NO_PROXIES = TrustedProxies()


def local_host(scope, headers: dict) -> str | None:
    """The client's address as loopback checks see it: a relayed request (a forwarding header) is never
    loopback, whoever relayed it (writing.api.proxy)."""
    client = scope.get("client")
    return None if client is None or forwarded(headers) else client[0]


def replaying(body: bytes, receive):
    """A ``receive`` that hands over ``body`` (read already) as one message, then defers to ``receive``."""
    done = False

    async def replay():
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class ClientStalled(OSError):
    """The client stopped reading the response for longer than STREAM_STALL_TIMEOUT."""


class _Disconnected(Exception):
    """The client went away while sending its body."""


class RequestContextMiddleware:
    def __init__(self, app, *, metrics: Metrics, config: dict) -> None:
        self.app = app
        self.metrics = metrics
        # max_body_bytes, max_in_flight, max_in_flight_share, body_read_timeout, stream_stall_timeout,
        # keyring: filled in by the lifespan
        self.config = config
        self.in_flight = 0
        self.per_holder: dict[str, int] = {}  # slots held per key (or client address)
        self._id_pool = b""  # random bytes for request ids, drawn ID_POOL ids at a time (see _new_id)
        self._id_at = 0

    def _new_id(self) -> str:
        """A request id of uuid4().hex's shape: 16 random bytes, sliced from a pool that one os.urandom call
        fills for ID_POOL ids (a system call per request cost as much as writing the whole response here; a
        keyed hash of a counter, three times the slice's cost)."""
        at = self._id_at
        if at >= len(self._id_pool):
            self._id_pool, at = os.urandom(ID_BYTES * ID_POOL), 0
        self._id_at = at + ID_BYTES
        return self._id_pool[at : at + ID_BYTES].hex()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        proxies: TrustedProxies = self.config.get("proxies", NO_PROXIES)
        if proxies.networks:  # behind a trusted proxy the client is the one it names (writing.api.proxy)
            scope["client"] = proxies.client(scope.get("client"), headers)
        given = headers.get("x-request-id", "")
        request_id = given if REQUEST_ID_RE.match(given) else self._new_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["started"] = t0  # Server-Timing's total is measured from here
        path = scope["path"]
        seen: dict = {"status": 500, "headers": (), "started": False}
        rid_header = [(b"x-request-id", request_id.encode())]
        stall = self.config.get("stream_stall_timeout")

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                seen["started"] = True
                seen["status"] = message["status"]
                seen["headers"] = headers = [*message.get("headers", ()), *rid_header]  # read by the log line only
                message["headers"] = headers
            elif stall:  # a client that stopped reading must not hold its slot and the upstream for ever
                try:  # in this task, the timer armed only if the send waits (writing.api.waits)
                    return await within(send(message), stall)
                except TimeoutError:
                    raise ClientStalled(f"the client read nothing for {stall:.0f} s") from None
            await send(message)

        async def refuse(exc: ServiceError, extra: dict | None = None, reason: str | None = None):
            if reason:
                self.metrics.rejected.labels(reason).inc()
            seen["status"] = exc.status
            response = error_response(exc, {**(extra or {}), "X-Request-ID": request_id})
            await response(scope, receive, send)

        limited = not path.startswith(UNLIMITED_PATHS)
        try:
            if self._untrusted_host(scope, headers):
                return await refuse(UNTRUSTED_HOST, reason="host")
            if not self._authenticate(scope, path, headers, state):
                return await refuse(UNAUTHORIZED, {"WWW-Authenticate": "Bearer"}, "auth")
            if state["caller"].role == METRICS and not (path == METRICS_PATH and scope["method"] in READ_METHODS):
                return await refuse(METRICS_ONLY, reason="metrics_only")  # Prometheus's key opens nothing else
            try:  # the body first: a slow sender waits here without holding a slot
                receive_ = await self._read_body(scope, headers, receive)
            except _Disconnected:
                seen["status"] = 499
                return None
            except ServiceError as exc:
                return await refuse(exc, reason=exc.code)
            holder = self._holder(scope, state) if limited else ""
            if limited:
                refusal = self._take_slot(holder)
                if refusal is not None:
                    reason = "in_flight" if refusal is TOO_MANY_IN_FLIGHT else "key_share"
                    return await refuse(refusal, reason=reason)
            try:
                await self.app(scope, receive_, send_wrapper)
            except ClientStalled as exc:
                access_logger.warning("request_id=%s %s: %s; dropped", request_id, path, exc)
                seen["status"] = 499
            except Exception:
                if seen["started"]:
                    raise  # a stream broke after its start: the connection has to go
                access_logger.exception("request_id=%s unhandled error on %s", request_id, path)
                await refuse(ServiceError("unhandled error"))
            finally:
                if limited:
                    self._release_slot(holder)
        finally:
            self._record(scope, request_id, seen, t0)

    # -- slots -------------------------------------------------------------------------------------------
    @staticmethod
    def _holder(scope, state: dict) -> str:
        return flow_of(state.get("caller"), scope.get("client"))

    def _take_slot(self, holder: str) -> ServiceError | None:
        limit = self.config["max_in_flight"]
        if self.in_flight >= limit:
            return TOO_MANY_IN_FLIGHT
        share = max(1, math.floor(limit * self.config.get("max_in_flight_share", 1.0)))
        if self.per_holder.get(holder, 0) >= share:
            refusal = TooManyRequests(
                f"this key already has {share} requests in flight (MAX_IN_FLIGHT_SHARE of MAX_IN_FLIGHT); "
                "retry when one has finished"
            )
            refusal.retry_after = 1
            return refusal
        self.in_flight += 1
        self.per_holder[holder] = self.per_holder.get(holder, 0) + 1
        self.metrics.in_flight.inc()
        return None

    def _release_slot(self, holder: str) -> None:
        self.in_flight -= 1
        left = self.per_holder.get(holder, 1) - 1
        if left > 0:
            self.per_holder[holder] = left
        else:
            self.per_holder.pop(holder, None)
        self.metrics.in_flight.dec()

    def _authenticate(self, scope, path: str, headers: dict, state: dict) -> bool:
        """Who is calling (``writing.api.auth``), on every path but the open ones; False means 401."""
        keyring: KeyRing = self.config["keyring"]
        host = local_host(scope, headers)
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            state["caller"] = Caller(CALLER, None, None, is_loopback(host))
            return True
        caller = keyring.authenticate(headers, host)
        state["caller"] = caller
        return caller is not None

    def _untrusted_host(self, scope, headers: dict) -> bool:
        """With no keys set, a loopback client (an admin then) whose Host header names another site: a
        browser tricked by DNS rebinding. Refused with 400 (``writing.api.auth.trusted_host``)."""
        keyring: KeyRing = self.config["keyring"]
        if keyring.enabled or scope["path"] in PROBE_PATHS:  # probes show nothing and may name any host
            return False
        if not is_loopback(local_host(scope, headers)):
            return False
        return not trusted_host(headers.get("host"), self.config.get("trusted_hosts", frozenset()))

    async def _read_body(self, scope, headers: dict, receive):
        """Read the whole body (within the size and time limits) and return a ``receive`` that replays it.

        Raises BodyTooLarge (413), RequestTimeout (408) or _Disconnected."""
        limit = self.config["max_body_bytes"]
        length = headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = limit + 1
            if declared > limit:
                raise BodyTooLarge(f"the request body exceeds {limit} bytes")
        elif scope["method"] not in BODY_METHODS:
            return receive
        timeout = self.config.get("body_read_timeout") or None
        deadline = time.monotonic() + timeout if timeout else None
        chunks, size, more = [], 0, True
        while more:
            try:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                message = await within(receive(), remaining)  # no task per message, no timer if it is here
            except TimeoutError:
                raise RequestTimeout(
                    f"the request body did not arrive within {timeout:g} s (BODY_READ_TIMEOUT)"
                ) from None
            if message["type"] != "http.request":
                raise _Disconnected
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                raise BodyTooLarge(f"the request body exceeds {limit} bytes")
            more = message.get("more_body", False)
        return replaying(b"".join(chunks), receive)

    def _record(self, scope, request_id: str, seen: dict, t0: float) -> None:
        total_ms = (time.perf_counter() - t0) * 1000
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        self.metrics.request_done(template, scope["method"], seen["status"])
        if template not in UNLIMITED_PATHS:
            self.metrics.observe_stage("total", total_ms)
        if not access_logger.isEnabledFor(logging.INFO):
            return
        h = {}
        for name, value in seen["headers"]:
            name = name.lower()
            if name in LOGGED_HEADERS:
                h[name] = value.decode("latin-1")
        access_logger.info(
            "request_id=%s method=%s route=%s status=%s source=%s cache=%s similarity=%s timing=%r total_ms=%.1f",
            request_id,
            scope["method"],
            template,
            seen["status"],
            h.get(b"x-writing-source", "-"),
            h.get(b"x-cache", "-"),
            h.get(b"x-similarity", "-"),
            h.get(b"server-timing", ""),
            total_ms,
        )
