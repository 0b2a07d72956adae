"""Request and response models of the reference routes: ``/generate``, ``/v1/generate``, ``/chat``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from writing.api.protocol.base import NOT_BLANK, RequestModel


class GenerateRequest(RequestModel):
    prompt: str = Field(
        ...,
        json_schema_extra=NOT_BLANK,
        description="The writing prompt: not blank, at most MAX_PROMPT_CHARS characters.",
        examples=["写一段描写秋天的文字"],
    )
    threshold: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Similarity threshold for this request (default: SIMILARITY_THRESHOLD), within "
        "[SIMILARITY_THRESHOLD_MIN, SIMILARITY_THRESHOLD_MAX].",
    )


class MatchInfo(BaseModel):
    id: int
    biz_id: str | int = Field(..., description="As stored: a string, or an integer in a reference-schema collection.")


class GenerateResponse(BaseModel):
    content: str
    source: Literal["milvus", "llm"]
    similarity: float | None = Field(None, description="Top-1 cosine similarity, when a search ran.")
    match: MatchInfo | None = None
    model: str | None = Field(None, description="The LLM that wrote the text (null for a stored text).")
    cache: Literal["HIT", "MISS", "BYPASS"] = Field("MISS", description="What retrieval decided.")
    match_source: Literal["curated", "generated"] | None = Field(
        None, description="On a hit: the curated corpus or the answer cache."
    )
