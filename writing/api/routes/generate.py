"""The reference routes: ``GET /generate`` (retrieval-first, the body is a JSON string),
``POST /v1/generate`` (the same with details) and ``GET /chat`` (streamed straight from the LLM)."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from writing.api.deps import AnsweringDep, answer_headers, build_answer_request, valid_prompt
from writing.api.errors import LLM_STATUSES, error_responses
from writing.api.protocol.base import NOT_BLANK
from writing.api.protocol.generate import GenerateRequest, GenerateResponse, MatchInfo
from writing.api.streaming import RelayResponse, prime, relay
from writing.core.models import SOURCE_LLM
from writing.errors import LLMError

PROMPT_DOC = "The writing prompt: not blank, at most MAX_PROMPT_CHARS characters."


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


def build_router() -> APIRouter:
    router = APIRouter(tags=["generate"])

    @router.get(
        "/generate",
        response_model=str,
        responses=error_responses(*LLM_STATUSES),
        summary="Retrieval-first text for a prompt (the body is a JSON string, as in the reference).",
    )
    async def generate(
        request: Request,
        answering: AnsweringDep,
        prompt: str = Query(..., json_schema_extra=NOT_BLANK, description=PROMPT_DOC),
    ):
        req = build_answer_request(request, prompt)
        answer = await answering.answer(req)
        return JSONResponse(content=answer.content, headers=answer_headers(request, req, answer))

    @router.post("/v1/generate", response_model=GenerateResponse, responses=error_responses(*LLM_STATUSES))
    async def generate_v1(request: Request, body: GenerateRequest, answering: AnsweringDep):
        req = build_answer_request(request, body.prompt, threshold=body.threshold)
        answer = await answering.answer(req)
        d = answer.decision
        payload = GenerateResponse(
            content=answer.content,
            source=answer.source,
            similarity=d.similarity,
            match=MatchInfo(id=d.match.id, biz_id=d.match.biz_id) if d.hit else None,
            model=answer.model,
            cache=d.status,
            match_source=d.match_source if d.hit else None,
        )
        return JSONResponse(content=payload.model_dump(), headers=answer_headers(request, req, answer))

    @router.get(
        "/chat",
        responses={200: {"content": {"text/plain": {}}}, **error_responses(*LLM_STATUSES)},
        response_class=StreamingResponse,
        summary="Text streamed straight from the LLM as it is generated.",
    )
    async def chat(
        request: Request,
        answering: AnsweringDep,
        prompt: str = Query(..., json_schema_extra=NOT_BLANK, description=PROMPT_DOC),
    ):
        stream = await prime(
            answering.chat_stream(valid_prompt(request, prompt))
        )  # a dead LLM: JSON 502/504, not a 200
        body = relay(stream, PlainTextEncoder(), request_id=request.state.request_id, route="/chat")
        return RelayResponse(body, media_type="text/plain; charset=utf-8", headers={"X-Writing-Source": SOURCE_LLM})

    return router
