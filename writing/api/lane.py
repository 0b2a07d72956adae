"""The lean lane: the answering routes' well-formed requests, served without FastAPI's machinery.

Issue 30 measured a hit on a fast model: the service's own CPU per request (about half of it FastAPI's
routing through every route, its dependency solving, its exception and exit-stack layers) was the
ceiling, not the model. For the four answering routes this pure-ASGI layer, inside
``RequestContextMiddleware`` (keys, limits, request id, access log and metrics apply as before):

- matches the method and the path exactly (a dict lookup);
- reads the prompt from the query string as FastAPI does (starlette's ``QueryParams``, the last value
  of a repeated name; ``writing.api.query`` decodes the usual prompt in C), or validates the JSON body
  once with the route's own model (pydantic's JSON parser; the model's lone-surrogate check walks it
  only when the body holds a surrogate escape);
- makes the very call FastAPI's route makes (``writing.api.serving``), whose response carries its
  headers built once and its body serialised by orjson;
- turns a ``ServiceError`` into the same envelope as the app's handler (``writing.api.errors``).

Whatever it does not take as well-formed (a missing prompt, a body that fails its model or is not
``application/json``) goes on to FastAPI untouched, the body replayed, so every refusal a client sees
is the one the OpenAPI document describes, made by the same code as before. The routes stay declared
in FastAPI: the OpenAPI document does not change.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from writing.api.deps import lane_components
from writing.api.errors import service_error_response
from writing.api.middleware import replaying
from writing.api.protocol.base import TEXT_CHECKED
from writing.api.protocol.generate import GenerateRequest
from writing.api.protocol.openai import ChatCompletionRequest
from writing.api.query import last_value
from writing.api.serving import generate, openai
from writing.errors import ServiceError

# a JSON string escape of a UTF-16 surrogate (\ud800-\udfff): only through one could a lone surrogate
# reach a string. pydantic's parser (jiter) refuses a lone one itself today, and invalid UTF-8 bytes too;
# the model's own check stays on for any body with such an escape, should a parser let one through
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")

Handler = Callable[[Request, bytes], Awaitable[Response | None]]


@dataclass(frozen=True)
class LaneRoute:
    """What ``scope["route"]`` holds for a request the lane served: the template the access log and the
    request metrics label it with, as FastAPI's route would."""

    path: str
    name: str


def _query_prompt(request: Request) -> str | None:
    return last_value(request.scope["query_string"], b"prompt")


def _json_body(request: Request, body: bytes) -> bool:
    """True when the body is JSON as the route expects it (its content type says so)."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    return media == "application/json" and bool(body)


def _model(model, body: bytes):
    """The body validated once by ``model``, or None (FastAPI then answers, with its 422)."""
    context = None if SURROGATE_ESCAPE.search(body) else TEXT_CHECKED
    try:
        return model.model_validate_json(body, context=context)
    except (ValidationError, ValueError):
        return None


async def _generate(request: Request, body: bytes) -> Response | None:
    prompt = _query_prompt(request)
    if prompt is None:
        return None
    answering, _ = lane_components(request.app)
    return await generate.generate(request, answering, prompt)


async def _chat(request: Request, body: bytes) -> Response | None:
    prompt = _query_prompt(request)
    if prompt is None:
        return None
    answering, _ = lane_components(request.app)
    return await generate.chat(request, answering, prompt)


async def _generate_v1(request: Request, body: bytes) -> Response | None:
    parsed = _model(GenerateRequest, body) if _json_body(request, body) else None
    if parsed is None:
        return None
    answering, _ = lane_components(request.app)
    return await generate.generate_v1(request, answering, parsed)


async def _chat_completions(request: Request, body: bytes) -> Response | None:
    parsed = _model(ChatCompletionRequest, body) if _json_body(request, body) else None
    if parsed is None:
        return None
    answering, settings = lane_components(request.app)
    return await openai.chat_completions(request, answering, settings, parsed)


LANES: dict[tuple[str, str], tuple[LaneRoute, Handler]] = {
    ("GET", "/generate"): (LaneRoute("/generate", "generate"), _generate),
    ("POST", "/v1/generate"): (LaneRoute("/v1/generate", "generate_v1"), _generate_v1),
    ("GET", "/chat"): (LaneRoute("/chat", "chat"), _chat),
    ("POST", "/v1/chat/completions"): (LaneRoute("/v1/chat/completions", "chat_completions"), _chat_completions),
}


class AnsweringLane:
    """Pure ASGI, between ``RequestContextMiddleware`` (which has read the body already) and FastAPI."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        lane = LANES.get((scope.get("method", ""), scope.get("path", ""))) if scope["type"] == "http" else None
        if lane is None:
            return await self.app(scope, receive, send)
        route, handle = lane
        posted = scope["method"] == "POST"
        body = await _body(receive) if posted else b""
        scope["route"] = route  # FastAPI sets its own if the request goes on to it
        request = Request(scope, receive)
        try:
            response = await handle(request, body)
        except ServiceError as exc:
            response = service_error_response(request, exc)
        if response is None:  # not well-formed: FastAPI answers, from the same bytes
            return await self.app(scope, replaying(body, receive) if posted else receive, send)
        await response(scope, receive, send)


async def _body(receive) -> bytes:
    """The whole body (RequestContextMiddleware has read it within its limits: one message, replayed)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
