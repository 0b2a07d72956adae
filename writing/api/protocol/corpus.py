"""Request and response models of the corpus surface (``/v1/corpus``, ``/v1/search``)."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from writing.api.protocol.base import RequestModel
from writing.core.corpus import MAX_BIZ_ID_CHARS, MAX_CONTENT_CHARS

MAX_PASSAGES_PER_REQUEST = 256
BIZ_ID_PATTERN = r"^[^\x00-\x1f\x7f]*$"  # no control characters (line breaks included)


class PassageIn(BaseModel):
    content: str = Field(..., min_length=1, max_length=MAX_CONTENT_CHARS)
    biz_id: str = Field("", max_length=MAX_BIZ_ID_CHARS)


class CorpusAddRequest(RequestModel):
    """One passage (``content``, ``biz_id``) or many (``passages``)."""

    passages: list[PassageIn] | None = Field(None, min_length=1, max_length=MAX_PASSAGES_PER_REQUEST)
    content: str | None = Field(None, min_length=1, max_length=MAX_CONTENT_CHARS)
    biz_id: str = Field("", max_length=MAX_BIZ_ID_CHARS)

    @model_validator(mode="after")
    def _one_form(self) -> CorpusAddRequest:
        if (self.passages is None) == (self.content is None):
            raise ValueError("send either 'passages' (a list) or one 'content'")
        return self

    def items(self) -> list[PassageIn]:
        return self.passages if self.passages is not None else [PassageIn(content=self.content, biz_id=self.biz_id)]


class CorpusAddResponse(BaseModel):
    ids: list[int]
    duplicate: list[bool]
    inserted: int
    skipped: int


class PassageOut(BaseModel):
    id: int
    biz_id: str
    content: str


class PassageList(BaseModel):
    items: list[PassageOut]
    limit: int
    offset: int


class DeleteResponse(BaseModel):
    deleted: int


class CorpusStats(BaseModel):
    collection: str
    store: str
    count: int
    dimension: int
    index_type: str | None
    metric_type: str | None
    model: str
    pooling: str
    max_tokens: int


class SearchRequest(RequestModel):
    prompt: str
    top_k: int = Field(5, ge=1, le=50)


class SearchMatch(BaseModel):
    id: int
    biz_id: str
    similarity: float
    content: str
    above_threshold: bool
    guard: str | None = Field(
        None, description="The second check's verdict for this prompt: pass or rejected:<reason> (null: HIT_GUARD=off)."
    )


class SearchResponse(BaseModel):
    threshold: float
    matches: list[SearchMatch]
