"""The reference routes: ``GET /generate`` (retrieval-first, the body is a JSON string),
``POST /v1/generate`` (the same with details) and ``GET /chat`` (streamed straight from the LLM). Each
makes one call (``writing.api.serving.generate``); the lean lane (``writing.api.lane``) makes the same
call for a well-formed request without passing through FastAPI."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from writing.api.deps import AnsweringDep
from writing.api.errors import LLM_STATUSES, error_responses
from writing.api.protocol.base import NOT_BLANK
from writing.api.protocol.generate import GenerateRequest, GenerateResponse
from writing.api.serving import generate as serving

PROMPT_DOC = "The writing prompt: not blank, at most MAX_PROMPT_CHARS characters."


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
        return await serving.generate(request, answering, prompt)

    @router.post("/v1/generate", response_model=GenerateResponse, responses=error_responses(*LLM_STATUSES))
    async def generate_v1(request: Request, body: GenerateRequest, answering: AnsweringDep):
        return await serving.generate_v1(request, answering, body)

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
        return await serving.chat(request, answering, prompt)

    return router
