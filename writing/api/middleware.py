"""One pure-ASGI middleware for what every request needs, streaming responses included.

- ``X-Request-ID``: accepted (when sane) or generated, available as ``request.state.request_id`` and
  returned on the response, errors included.
- API keys (``API_KEYS``): checked before anything else, so a request without a valid key learns
  nothing (not even whether its body parses); health, readiness and the API docs stay open.
- Limits: the request body size (413) and the number of requests in flight (503 + Retry-After).
  Health, readiness and metrics are never refused.
- One structured access-log line per request (route, status, source, cache status, similarity, stage
  timings, total time), no prompt or answer text; request counts and total latency as metrics.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from writing.api.auth import CALLER, Caller, KeyRing, is_loopback
from writing.api.errors import error_response
from writing.errors import BodyTooLarge, Overloaded, ServiceError, Unauthorized
from writing.observability.metrics import Metrics

# under the package's logger like every other, with the name operators filter on (README: Operations)
access_logger = logging.getLogger("writing.access")

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNLIMITED_PATHS = ("/healthz", "/readyz", "/metrics")
OPEN_PATHS = ("/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
UNAUTHORIZED = Unauthorized("a valid API key is required (Authorization: Bearer KEY or X-API-Key: KEY)")
TOO_MANY_IN_FLIGHT = Overloaded("in flight", public_message="too many requests in flight; retry shortly")


class RequestContextMiddleware:
    def __init__(self, app, *, metrics: Metrics, config: dict) -> None:
        self.app = app
        self.metrics = metrics
        self.config = config  # max_body_bytes, max_in_flight, keyring; filled in by the lifespan
        self.in_flight = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        request_id = given if REQUEST_ID_RE.match(given) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        path = scope["path"]
        seen: dict = {"status": 500, "headers": {}, "started": False}
        rid_header = [(b"x-request-id", request_id.encode())]

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                seen["started"] = True
                seen["status"] = message["status"]
                seen["headers"] = {
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message.get("headers", [])
                }
                message["headers"] = list(message.get("headers", [])) + rid_header
            await send(message)

        async def refuse(exc: ServiceError, extra: dict | None = None, reason: str | None = None):
            if reason:
                self.metrics.rejected.labels(reason).inc()
            seen["status"] = exc.status
            response = error_response(exc, {**(extra or {}), "X-Request-ID": request_id})
            await response(scope, receive, send)

        limited = not path.startswith(UNLIMITED_PATHS)
        try:
            if not self._authenticate(scope, path, headers, state):
                return await refuse(UNAUTHORIZED, {"WWW-Authenticate": "Bearer"}, "auth")
            if limited and self.in_flight >= self.config["max_in_flight"]:
                return await refuse(TOO_MANY_IN_FLIGHT, reason="in_flight")
            if limited:  # counted before the body is read: reading it can wait
                self.in_flight += 1
                self.metrics.in_flight.inc()
            try:
                receive_ = await self._limit_body(scope, headers, receive)
                if receive_ is None:
                    too_large = BodyTooLarge(f"the request body exceeds {self.config['max_body_bytes']} bytes")
                    return await refuse(too_large, reason="body_too_large")
                await self.app(scope, receive_, send_wrapper)
            except Exception:
                if seen["started"]:
                    raise  # a stream broke after its start: the connection has to go
                access_logger.exception("request_id=%s unhandled error on %s", request_id, path)
                await refuse(ServiceError("unhandled error"))
            finally:
                if limited:
                    self.in_flight -= 1
                    self.metrics.in_flight.dec()
        finally:
            self._record(scope, request_id, seen, t0)

    def _authenticate(self, scope, path: str, headers: dict, state: dict) -> bool:
        """Who is calling (``writing.api.auth``), on every path but the open ones; False means 401."""
        keyring: KeyRing = self.config["keyring"]
        client = scope.get("client")
        host = client[0] if client else None
        if path in OPEN_PATHS:
            state["caller"] = Caller(CALLER, None, None, is_loopback(host))
            return True
        caller = keyring.authenticate(headers, host)
        state["caller"] = caller
        return caller is not None

    async def _limit_body(self, scope, headers: dict, receive):
        """``receive`` itself when the body is within the limit, a replaying one, or None when too large."""
        limit = self.config["max_body_bytes"]
        length = headers.get("content-length")
        if length is not None:
            try:
                return receive if int(length) <= limit else None
            except ValueError:
                return None
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return receive
        chunks, size, more = [], 0, True
        while more:  # no length given: read (up to the limit) before the app sees it
            message = await receive()
            if message["type"] != "http.request":
                return receive
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                return None
            more = message.get("more_body", False)
        body = b"".join(chunks)
        done = False

        async def replay():
            nonlocal done
            if not done:
                done = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    def _record(self, scope, request_id: str, seen: dict, t0: float) -> None:
        total_ms = (time.perf_counter() - t0) * 1000
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        status = seen["status"]
        h = seen["headers"]
        self.metrics.requests.labels(template, scope["method"], str(status)).inc()
        if template not in UNLIMITED_PATHS:
            self.metrics.observe_stage("total", total_ms)
        access_logger.info(
            "request_id=%s method=%s route=%s status=%s source=%s cache=%s similarity=%s timing=%r total_ms=%.1f",
            request_id,
            scope["method"],
            template,
            status,
            h.get("x-writing-source", "-"),
            h.get("x-cache", "-"),
            h.get("x-similarity", "-"),
            h.get("server-timing", ""),
            total_ms,
        )
