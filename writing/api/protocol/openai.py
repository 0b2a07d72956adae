"""Request, response and stream-chunk models of the OpenAI-compatible surface."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from writing.api.protocol.base import RequestModel
from writing.settings import VLLM_EXTRAS

# Bounds the schema states (as OpenAI's API enforces them); limits that depend on the settings
# (MAX_COMPLETION_TOKENS, MAX_MESSAGES, MAX_PROMPT_CHARS, the threshold range) are written into the
# OpenAPI document at run time (writing.api.openapi) and checked by the service.
MAX_LOGIT_BIAS_ENTRIES = 300  # OpenAI: "too many entries" beyond 300
MAX_STOP_SEQUENCES = 4
MAX_STOP_CHARS = 256
MAX_CONTENT_PARTS = 64
MAX_NAME_CHARS = 64
MAX_USER_CHARS = 256

TokenId = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,9}$")]
Bias = Annotated[float, Field(ge=-100, le=100)]
StopSequence = Annotated[str, StringConstraints(min_length=1, max_length=MAX_STOP_CHARS)]

# vLLM's documented extra sampling parameters of its chat API, with the bounds this service holds them
# to; they go to the LLM only when ALLOWED_EXTRA_FIELDS lists them (it does by default).
VLLM_EXTRA_FIELDS = VLLM_EXTRAS


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"] = Field(..., description="Only text parts: this service writes text from text.")
    text: str


MAX_TOOLS = 128  # OpenAI's limit on tools in one request
FunctionName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class FunctionDef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: FunctionName
    description: str | None = Field(None, max_length=4096)
    parameters: dict[str, Any] | None = Field(None, description="A JSON Schema object, passed on as given.")
    strict: bool | None = None


class Tool(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: FunctionName


class NamedToolChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["function"]
    function: NamedFunction


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | Annotated[list[ContentPart], Field(max_length=MAX_CONTENT_PARTS)] | None = Field(
        None, description="Text, or a list of text parts."
    )
    name: str | None = Field(None, max_length=MAX_NAME_CHARS)
    tool_call_id: str | None = Field(None, max_length=MAX_USER_CHARS)
    # what an SDK sends back when a client appends the model's own message: accepted, not used
    refusal: str | None = None
    tool_calls: list[dict[str, Any]] | None = Field(None, max_length=MAX_CONTENT_PARTS)
    function_call: dict[str, Any] | None = None
    audio: dict[str, Any] | None = None
    annotations: list[dict[str, Any]] | None = Field(None, max_length=MAX_CONTENT_PARTS)

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class ChatCompletionRequest(RequestModel):
    """OpenAI's chat request. A field outside this model gets a 422 naming it, unless ALLOWED_EXTRA_FIELDS
    lists it (then it goes to the LLM as given); vLLM's sampling extras below are listed by default."""

    # "allow" so that the route can tell an unknown field (422, naming it) from a listed extra; the
    # OpenAPI document says additionalProperties: false (writing.api.openapi)
    model_config = ConfigDict(extra="allow")
    model: str | None = Field(
        None, max_length=256, description="Accepted; the service's configured LLM answers misses."
    )
    messages: list[ChatMessage] = Field(..., min_length=1, description="At most MAX_MESSAGES.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, description="At most MAX_COMPLETION_TOKENS.")
    max_completion_tokens: int | None = Field(None, ge=1, description="At most MAX_COMPLETION_TOKENS.")
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int | None = Field(None, ge=1, le=1, description="Only 1 is supported.")
    stop: StopSequence | Annotated[list[StopSequence], Field(max_length=MAX_STOP_SEQUENCES)] | None = Field(
        None, description="Up to 4 sequences."
    )
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    logit_bias: dict[TokenId, Bias] | None = Field(
        None, max_length=MAX_LOGIT_BIAS_ENTRIES, description="Token id -> bias in [-100, 100]; at most 300."
    )
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = Field(
        None,
        max_length=MAX_TOOLS,
        description="Passed to the LLM; the curated tier is skipped (X-Cache-Bypass-Reason: curated_tier:tools). "
        "Text answers only: an answer that is a tool call gets 502 (this service does not relay tool calls).",
    )
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = Field(
        None, description="Passed to the LLM with tools."
    )
    parallel_tool_calls: bool | None = Field(None, description="Passed to the LLM with tools.")
    user: str | None = Field(None, max_length=MAX_USER_CHARS)
    similarity_threshold: float | None = Field(
        None, gt=0, le=1, description="Service extension: threshold for this request."
    )
    # vLLM's extras (VLLM_EXTRA_FIELDS), bounded
    top_k: int | None = Field(None, ge=-1, le=1000, description="vLLM extra: -1 = all tokens.")
    min_p: float | None = Field(None, ge=0, le=1, description="vLLM extra.")
    repetition_penalty: float | None = Field(None, gt=0, le=2, description="vLLM extra.")
    length_penalty: float | None = Field(None, ge=-10, le=10, description="vLLM extra.")
    stop_token_ids: list[Annotated[int, Field(ge=0, le=10**9)]] | None = Field(
        None, max_length=MAX_STOP_SEQUENCES * 16, description="vLLM extra."
    )
    include_stop_str_in_output: bool | None = Field(None, description="vLLM extra.")
    ignore_eos: bool | None = Field(None, description="vLLM extra.")
    min_tokens: int | None = Field(None, ge=0, description="vLLM extra; at most max_tokens.")
    skip_special_tokens: bool | None = Field(None, description="vLLM extra.")
    spaces_between_special_tokens: bool | None = Field(None, description="vLLM extra.")


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


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: str | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None

    def sse(self) -> str:
        """One server-sent event; absent delta fields and a null usage are left out, as OpenAI does."""
        payload = self.model_dump(exclude={"usage"} if self.usage is None else set())
        for choice in payload["choices"]:
            choice["delta"] = {k: v for k, v in choice["delta"].items() if v is not None}
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


SSE_DONE = "data: [DONE]\n\n"


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
