"""OpenAI-compatible front door: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Any OpenAI SDK gets retrieval-first answers by changing its base URL. The last user message is the
retrieval key; a hit is returned (or replayed as a chunk stream) from the corpus or the answer cache,
a miss goes to the LLM with the request's sampling fields passed through.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from http_common import ERROR_RESPONSES, answer_headers, build_answer_request, decision_headers, service_of
from service import Decision, PromptError
from vllm_client import Delta, LLMError, SamplingParams

logger = logging.getLogger("writing.openai")

# OpenAI request fields passed to the LLM verbatim on a miss (besides max_tokens, temperature, top_p)
PASSTHROUGH_FIELDS = (
    "stop", "seed", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
    "response_format", "user",
)
HIT_CHUNK_CHARS = 4  # a replayed hit streams this many characters per chunk


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = Field(None, description="Accepted; the service's configured LLM answers misses.")
    messages: list[ChatMessage] = Field(..., min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int | None = Field(None, ge=1, le=1, description="Only 1 is supported.")
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: dict[str, Any] | None = None
    user: str | None = None
    similarity_threshold: float | None = Field(None, description="Service extension: threshold for this request.")


class ChatCompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: ChatCompletionMessage
    finish_reason: str | None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def _sampling(body: ChatCompletionRequest, defaults: SamplingParams) -> SamplingParams:
    extra = {k: getattr(body, k) for k in PASSTHROUGH_FIELDS if getattr(body, k) is not None}
    extra.update(body.model_extra or {})  # fields this service does not know, e.g. vLLM's top_k
    max_tokens = body.max_completion_tokens or body.max_tokens or defaults.max_tokens
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=defaults.temperature if body.temperature is None else body.temperature,
        top_p=defaults.top_p if body.top_p is None else body.top_p,
        extra=extra,
    )


def _estimate_tokens(request: Request, text: str) -> int:
    """Token counts for a stored answer: the embedding tokenizer's count, an estimate (see README)."""
    return max(0, request.app.state.batcher.embedder.token_count(text, query=False) - 2)


def _usage(request: Request, prompt_text: str, content: str, answer=None) -> Usage:
    if answer is not None and answer.prompt_tokens is not None and answer.completion_tokens is not None:
        p, c = answer.prompt_tokens, answer.completion_tokens
    else:
        p, c = _estimate_tokens(request, prompt_text), _estimate_tokens(request, content)
    return Usage(prompt_tokens=p, completion_tokens=c, total_tokens=p + c)


def _sse(payload: dict | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


def build_router() -> APIRouter:
    router = APIRouter(tags=["OpenAI-compatible"])

    @router.get("/v1/models", response_model=ModelList, responses=ERROR_RESPONSES)
    async def list_models(request: Request) -> ModelList:
        llm = request.app.state.llm
        try:
            model = await llm.resolve_model()
        except LLMError:
            model = llm.model or "unknown"
        return ModelList(data=[ModelCard(id=model, created=request.app.state.started, owned_by="writing-service")])

    @router.post("/v1/chat/completions", response_model=ChatCompletionResponse, responses=ERROR_RESPONSES)
    async def chat_completions(request: Request, body: ChatCompletionRequest):
        service = service_of(request)
        settings = request.app.state.settings
        users = [m for m in body.messages if m.role == "user"]
        if not users:
            raise PromptError("messages must contain at least one user message")
        prompt = users[-1].text()
        multi_turn = any(m.role == "assistant" for m in body.messages) and not settings.retrieve_multi_turn
        req = build_answer_request(
            request,
            prompt,
            messages=[m.model_dump(exclude_none=True) for m in body.messages],
            params=_sampling(body, service.llm.defaults),
            threshold=body.similarity_threshold,
            bypass_reason="multi_turn" if multi_turn else None,
        )
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if not body.stream:
            answer = await service.answer(req)
            model = answer.model or service.llm.model or "writing-service"
            payload = ChatCompletionResponse(
                id=completion_id,
                created=created,
                model=model,
                choices=[Choice(message=ChatCompletionMessage(content=answer.content), finish_reason=answer.finish_reason)],
                usage=_usage(request, prompt, answer.content, answer),
            )
            return JSONResponse(payload.model_dump(), headers=answer_headers(answer))

        decision, deltas = await service.answer_stream(req)
        model = service.llm.model or "writing-service"
        include_usage = bool(body.stream_options and body.stream_options.include_usage)

        def chunk(delta: dict, finish: str | None = None) -> str:
            return _sse(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
            )

        def usage_chunk(content: str) -> str:
            return _sse(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": _usage(request, prompt, content).model_dump(),
                }
            )

        if deltas is None:  # a hit: replay the stored text as a proper chunk stream
            text = decision.match.content

            async def replay() -> AsyncIterator[str]:
                yield chunk({"role": "assistant", "content": ""})
                for i in range(0, len(text), HIT_CHUNK_CHARS):
                    yield chunk({"content": text[i : i + HIT_CHUNK_CHARS]})
                yield chunk({}, "stop")
                if include_usage:
                    yield usage_chunk(text)
                yield _sse("[DONE]")

            return _streaming(replay(), decision, source="milvus")

        # a miss: wait for the first delta so an LLM that is down gets a JSON 502/504, not a 200
        try:
            first: Delta | None = await deltas.__anext__()
        except StopAsyncIteration:
            first = None
        request_id = request.state.request_id

        async def relay() -> AsyncIterator[str]:
            parts: list[str] = []
            try:
                yield chunk({"role": "assistant", "content": ""})
                pending = [first] if first is not None else []
                finish = None
                while True:
                    delta = pending.pop() if pending else await deltas.__anext__()
                    if delta.text:
                        parts.append(delta.text)
                        yield chunk({"content": delta.text})
                    if delta.finish_reason:
                        finish = delta.finish_reason
            except StopAsyncIteration:
                yield chunk({}, finish or "stop")
                if include_usage:
                    yield usage_chunk("".join(parts))
            except LLMError as exc:
                logger.error("request_id=%s stream broke: %s: %s", request_id, exc.code, exc)
                yield _sse({"error": {"code": exc.code, "message": exc.public_message, "type": "upstream_error"}})
            except asyncio.CancelledError:
                logger.info("request_id=%s client went away; upstream cancelled", request_id)
                raise
            finally:
                await deltas.aclose()
            yield _sse("[DONE]")

        return _streaming(relay(), decision, source="llm")

    return router


def _streaming(body: AsyncIterator[str], decision: Decision, *, source: str) -> StreamingResponse:
    headers = {"X-Writing-Source": source, "Cache-Control": "no-cache", **decision_headers(decision)}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)
