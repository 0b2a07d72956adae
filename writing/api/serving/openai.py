"""``POST /v1/chat/completions``'s work: the request's bounds, its sampling fields, the answer (a hit
returned or replayed as a chunk stream, a miss from the LLM) and its usage."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import Response

from writing.api.deps import answer_headers, build_answer_request, decision_headers
from writing.api.errors import error_event
from writing.api.protocol.openai import (
    SSE_DONE,
    VLLM_EXTRA_FIELDS,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChunkChoice,
    ChunkDelta,
    Usage,
)
from writing.api.responses import RawJSONResponse, raw_headers
from writing.api.streaming import RelayResponse, prime, relay, replay
from writing.core.answering import Answering
from writing.core.models import SOURCE_LLM, SOURCE_MILVUS, Answer, SamplingParams
from writing.errors import InvalidRequest, LLMError
from writing.settings import Settings

# OpenAI request fields passed to the LLM verbatim on a miss (besides max_tokens, temperature, top_p)
PASSTHROUGH_FIELDS = (
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "user",
)
HIT_CHUNK_CHARS = 4  # a replayed hit streams this many characters per chunk


def _check_limits(body: ChatCompletionRequest, settings) -> None:
    """The bounds that depend on the settings (the schema states the rest): 422 saying what to fix."""
    allowed = set(settings.allowed_extra_fields)
    for name in sorted(
        (body.model_extra or {}).keys() | {f for f in VLLM_EXTRA_FIELDS if getattr(body, f) is not None}
    ):
        if name not in allowed:
            raise InvalidRequest(
                f"unrecognized request argument supplied: {name} (the fields beyond OpenAI's that this "
                "service passes on are listed in ALLOWED_EXTRA_FIELDS)"
            )
    if len(body.messages) > settings.max_messages:
        raise InvalidRequest(f"messages holds {len(body.messages)} messages; the limit is {settings.max_messages}")
    total = sum(len(m.text()) for m in body.messages)
    if total > settings.max_total_chars:
        raise InvalidRequest(
            f"the messages hold {total} characters in all; the limit is {settings.max_total_chars} (MAX_TOTAL_CHARS)"
        )
    for name in ("max_tokens", "max_completion_tokens"):
        value = getattr(body, name)
        if value is not None and value > settings.max_completion_tokens:
            raise InvalidRequest(f"{name} is {value}; the limit is {settings.max_completion_tokens}")
    limit = body.max_completion_tokens or body.max_tokens or settings.llm_max_tokens
    if body.min_tokens is not None and body.min_tokens > limit:
        raise InvalidRequest(f"min_tokens ({body.min_tokens}) must not exceed max_tokens ({limit})")


def _sampling(body: ChatCompletionRequest, defaults: SamplingParams) -> SamplingParams:
    extra = {k: getattr(body, k) for k in PASSTHROUGH_FIELDS if getattr(body, k) is not None}
    if body.response_format is not None:
        extra["response_format"] = body.response_format.model_dump(exclude_none=True)
    if body.tools:  # the context then skips the curated tier and keys stored answers on the tools
        extra["tools"] = [t.model_dump(exclude_none=True) for t in body.tools]
        if body.tool_choice is not None:
            choice = body.tool_choice
            extra["tool_choice"] = choice if isinstance(choice, str) else choice.model_dump()
        if body.parallel_tool_calls is not None:
            extra["parallel_tool_calls"] = body.parallel_tool_calls
    # vLLM's extras and any other field ALLOWED_EXTRA_FIELDS lets through (checked by _check_limits)
    extra.update({k: getattr(body, k) for k in VLLM_EXTRA_FIELDS if getattr(body, k) is not None})
    extra.update(body.model_extra or {})
    max_tokens = body.max_completion_tokens or body.max_tokens or defaults.max_tokens
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=defaults.temperature if body.temperature is None else body.temperature,
        top_p=defaults.top_p if body.top_p is None else body.top_p,
        extra=extra,
    )


async def _usage(request: Request, prompt_text: str, content: str, answer: Answer | None = None) -> Usage:
    """The LLM's own counts on a miss; on a hit an estimate with the embedding tokenizer (see README),
    counted in a thread: nothing tokenizes on the event loop."""
    if answer is not None and answer.prompt_tokens is not None and answer.completion_tokens is not None:
        p, c = answer.prompt_tokens, answer.completion_tokens
    else:
        embedder = request.app.state.batcher.embedder

        def estimate() -> tuple[int, int]:
            return tuple(max(0, embedder.token_count(t, query=False) - 2) for t in (prompt_text, content))

        p, c = await asyncio.to_thread(estimate)
    return Usage(prompt_tokens=p, completion_tokens=c, total_tokens=p + c)


class ChunkEncoder:
    """The relay's wire format for OpenAI: chat.completion.chunk events, then ``[DONE]``."""

    def __init__(
        self, request: Request, completion_id: str, created: int, model: str, prompt: str, include_usage: bool
    ) -> None:
        self.request = request
        self.completion_id = completion_id
        self.created = created
        self.model = model
        self.prompt = prompt
        self.include_usage = include_usage

    def _chunk(self, delta: ChunkDelta, finish: str | None = None) -> str:
        choice = ChunkChoice(delta=delta, finish_reason=finish)
        return ChatCompletionChunk(
            id=self.completion_id, created=self.created, model=self.model, choices=[choice]
        ).sse()

    def opening(self) -> Iterable[str]:
        return [self._chunk(ChunkDelta(role="assistant", content=""))]

    def piece(self, text: str) -> str:
        return self._chunk(ChunkDelta(content=text))

    async def closing(self, finish_reason: str, text: str) -> Iterable[str]:
        out = [self._chunk(ChunkDelta(), finish_reason)]
        if self.include_usage:
            usage = await _usage(self.request, self.prompt, text)
            out.append(
                ChatCompletionChunk(
                    id=self.completion_id, created=self.created, model=self.model, choices=[], usage=usage
                ).sse()
            )
        return [*out, SSE_DONE]

    def failure(self, exc: LLMError) -> Iterable[str]:
        return [error_event(exc), SSE_DONE]


async def chat_completions(
    request: Request, answering: Answering, settings: Settings, body: ChatCompletionRequest
) -> Response:
    llm = answering.llm
    _check_limits(body, settings)
    users = [m for m in body.messages if m.role == "user"]
    if not users:
        raise InvalidRequest("messages must contain at least one user message")
    prompt = users[-1].text()
    multi_turn = any(m.role == "assistant" for m in body.messages) and not settings.retrieve_multi_turn
    req = build_answer_request(
        request,
        prompt,
        messages=[m.model_dump(exclude_none=True) for m in body.messages],
        params=_sampling(body, llm.defaults),
        threshold=body.similarity_threshold,
        bypass_reason="multi_turn" if multi_turn else None,
    )
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if not body.stream:
        answer = await answering.answer(req)
        usage = await _usage(request, prompt, answer.content, answer)
        payload = {  # ChatCompletionResponse's fields, in its order (the OpenAPI document states the model)
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": answer.model or llm.model or "writing-service",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer.content},
                    "finish_reason": answer.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
        }
        return RawJSONResponse(payload, answer_headers(request, req, answer))

    decision, deltas = await answering.answer_stream(req)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    encoder = ChunkEncoder(request, completion_id, created, llm.model or "writing-service", prompt, include_usage)
    if deltas is None:  # a hit: replay the stored text as a proper chunk stream
        source = SOURCE_MILVUS
        stream = await prime(replay(decision.match.content, HIT_CHUNK_CHARS))
    else:  # a miss: an LLM that is down gets a JSON 502/504 here, not a 200
        source = SOURCE_LLM
        stream = await prime(deltas)
    body_iter = relay(stream, encoder, request_id=request.state.request_id, route="/v1/chat/completions")
    response = RelayResponse(body_iter, media_type="text/event-stream")
    first = raw_headers({"X-Writing-Source": source, "Cache-Control": "no-cache"})
    response.raw_headers = [*first, *decision_headers(request, req, decision), *response.raw_headers]
    return response
