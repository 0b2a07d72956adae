"""``ServiceError`` -> one JSON envelope, for every route and for the middleware's own refusals.

One handler covers the whole hierarchy (``writing.errors``); request validation and the router's own
404/405 are mapped into the same envelope; anything unexpected becomes a 500 whose body says nothing
but "internal error" (the middleware logs it with the request id). ``error_responses`` documents the
statuses a route really returns in the OpenAPI schema.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from writing.api.protocol.errors import ErrorResponse
from writing.errors import (
    ClientError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    Overloaded,
    ServiceError,
)

logger = logging.getLogger(__name__)

STATUS_DESCRIPTIONS = {
    401: "Missing or wrong API key.",
    403: "The key's role may not do this; the message names the setting that grants it.",
    404: "No such resource.",
    408: "The request body did not arrive within BODY_READ_TIMEOUT.",
    409: "The collection cannot take this change (e.g. it is read-only); the message says what to do.",
    413: "The request body exceeds MAX_BODY_BYTES.",
    422: "Invalid input; the message says what to fix.",
    429: "Too many requests from this key (feedback rate, or its share of MAX_IN_FLIGHT); see Retry-After.",
    500: "An unexpected error; the body says no more, the log has it under the request id.",
    502: "The LLM is unreachable or answered with an error.",
    503: "Overloaded or a dependency is down; see Retry-After.",
    504: "The LLM did not answer within LLM_TIMEOUT.",
}
# any protected route: keys, slow body, body limit, validation, its key's share of the slots, bugs, overload
COMMON_STATUSES = (401, 408, 413, 422, 429, 500, 503)
ADMIN_STATUSES = (403,)  # a route for admins only
LLM_STATUSES = (502, 504)


def error_responses(*extra: int, base: tuple[int, ...] = COMMON_STATUSES) -> dict[int | str, dict]:
    """OpenAPI ``responses`` for a route: the ``base`` statuses plus ``extra`` (e.g. 404, 502, 504)."""
    return {
        status: {"model": ErrorResponse, "description": STATUS_DESCRIPTIONS[status]}
        for status in sorted({*base, *extra})
    }


def error_body(exc: ServiceError, param: str | None = None) -> dict:
    return {"error": {"message": exc.public_message, "type": exc.type, "code": exc.code, "param": param}}


def error_event(exc: ServiceError) -> str:
    """The envelope as one server-sent event, for a stream that breaks after its 200 was sent."""
    return f"data: {json.dumps(error_body(exc), ensure_ascii=False)}\n\n"


def error_response(exc: ServiceError, headers: dict[str, str] | None = None, param: str | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=exc.status, content=error_body(exc, param), headers={**exc.headers, **(headers or {})}
    )


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    parts, params = [], []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{where or 'request'}: {err.get('msg')}")
        if where:
            params.append(where)
    return "; ".join(parts) or "invalid request", (params[0] if len(params) == 1 else None)


def service_error_response(request: Request, exc: ServiceError) -> JSONResponse:
    """A route's ServiceError as the client sees it (FastAPI's handler and the lean lane both call this)."""
    if isinstance(exc, Overloaded):
        request.app.state.metrics.rejected.labels(exc.reason).inc()
    elif not isinstance(exc, ClientError):  # upstream trouble: the details go to the log, never the client
        logger.error("request_id=%s %s: %s", getattr(request.state, "request_id", "-"), exc.code, exc)
    return error_response(exc)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return service_error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return error_response(InvalidRequest(message), param=param)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # the router's own answers (no such route, wrong method) in the same envelope
        if exc.status_code == 404:
            error: ServiceError = NotFound(f"no route {request.method} {request.url.path}")
        elif exc.status_code == 405:
            error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
        elif exc.status_code == 400:  # FastAPI could not read the body at all (e.g. not UTF-8)
            error = InvalidRequest("the request body could not be parsed: send JSON encoded as UTF-8")
        else:
            error = ClientError(str(exc.detail))
        return error_response(error, headers=dict(exc.headers or {}))
