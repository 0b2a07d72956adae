"""OpenAI-compatible front door: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Any OpenAI SDK gets retrieval-first answers by changing its base URL. The last user message is the
retrieval key; a hit is returned (or replayed as a chunk stream) from the corpus or the answer cache,
a miss goes to the LLM with the request's sampling fields passed through.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from writing.api.deps import AnsweringDep, SettingsDep
from writing.api.errors import LLM_STATUSES, error_responses
from writing.api.protocol.openai import ChatCompletionRequest, ChatCompletionResponse, ModelCard, ModelList
from writing.api.serving import openai as serving
from writing.errors import LLMError


def build_router() -> APIRouter:
    router = APIRouter(tags=["OpenAI-compatible"])

    @router.get("/v1/models", response_model=ModelList, responses=error_responses())
    async def list_models(request: Request) -> ModelList:
        llm = request.app.state.llm
        try:
            model = await llm.resolve_model()
        except LLMError:
            model = llm.model or "unknown"
        return ModelList(data=[ModelCard(id=model, created=request.app.state.started, owned_by="writing-service")])

    @router.post(
        "/v1/chat/completions", response_model=ChatCompletionResponse, responses=error_responses(*LLM_STATUSES)
    )
    async def chat_completions(
        request: Request, body: ChatCompletionRequest, answering: AnsweringDep, settings: SettingsDep
    ):
        return await serving.chat_completions(request, answering, settings, body)

    return router
