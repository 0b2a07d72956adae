"""``GET /generate`` (the body is a JSON string), ``POST /v1/generate`` (the same with details) and
``GET /chat`` (streamed straight from the LLM): each takes a checked prompt and returns the response."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import Response

from writing.api.deps import answer_headers, build_answer_request, query_prompt, valid_prompt
from writing.api.protocol.generate import GenerateRequest
from writing.api.responses import RawJSONResponse
from writing.api.streaming import RelayResponse, prime, relay
from writing.core.answering import Answering
from writing.core.models import SOURCE_LLM
from writing.errors import LLMError


class PlainTextEncoder:
    """The relay's wire format for ``/chat``: the text as it comes; a failure as a visible last line."""

    def opening(self) -> Iterable[str]:
        return ()

    def piece(self, text: str) -> str:
        return text

    async def closing(self, finish_reason: str, text: str) -> Iterable[str]:
        return ()

    def failure(self, exc: LLMError) -> Iterable[str]:
        return (f"\n[error] {exc.public_message}; the text above is incomplete\n",)


async def generate(request: Request, answering: Answering, prompt: str) -> Response:
    req = build_answer_request(request, query_prompt(request, prompt))
    answer = await answering.answer(req)
    return RawJSONResponse(answer.content, answer_headers(request, req, answer))


async def generate_v1(request: Request, answering: Answering, body: GenerateRequest) -> Response:
    req = build_answer_request(request, body.prompt, threshold=body.threshold)
    answer = await answering.answer(req)
    d = answer.decision
    hit = d.hit
    payload = {  # GenerateResponse's fields, in its order (the OpenAPI document states the model)
        "content": answer.content,
        "source": answer.source,
        "similarity": d.similarity,
        "match": {"id": d.match.id, "biz_id": d.match.biz_id} if hit else None,
        "model": answer.model,
        "cache": d.status,
        "match_source": d.match_source if hit else None,
    }
    return RawJSONResponse(payload, answer_headers(request, req, answer))


async def chat(request: Request, answering: Answering, prompt: str) -> Response:
    prompt = valid_prompt(request, query_prompt(request, prompt))
    stream = await prime(answering.chat_stream(prompt))  # a dead LLM: JSON 502/504, not a 200
    body = relay(stream, PlainTextEncoder(), request_id=request.state.request_id, route="/chat")
    return RelayResponse(body, media_type="text/plain; charset=utf-8", headers={"X-Writing-Source": SOURCE_LLM})
