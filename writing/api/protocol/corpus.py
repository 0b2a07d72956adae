"""Request and response models of the corpus surface (``/v1/corpus``, ``/v1/search``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field, model_validator

from writing.api.protocol.base import NOT_BLANK, RequestModel
from writing.core.corpus import MAX_BIZ_ID_CHARS, MAX_CONTENT_CHARS

MAX_PASSAGES_PER_REQUEST = 256
BIZ_ID_PATTERN = r"^[^\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]*$"  # no control characters (line breaks, bidi)


# stated in the schema; checked by make_passage, whose message names the problem ("control characters")
BIZ_ID_SCHEMA = {"pattern": BIZ_ID_PATTERN}


def _no_bool(value: object) -> object:
    if isinstance(value, bool):  # JSON true is not an id (lax int would take it as 1)
        raise ValueError("biz_id must be a string or an integer, not a boolean")
    return value


# a string or an integer, as in ingest.py's files and import lines (stored as its string); JSON's 1456.0
# is an integer to JSON Schema, and so here
BizIdIn = Annotated[
    Annotated[str, Field(max_length=MAX_BIZ_ID_CHARS, json_schema_extra=BIZ_ID_SCHEMA)]
    | Annotated[int, Field(ge=-(2**63), le=2**63 - 1)],
    BeforeValidator(_no_bool),
]


class PassageIn(BaseModel):
    content: str = Field(..., min_length=1, max_length=MAX_CONTENT_CHARS, json_schema_extra=NOT_BLANK)
    biz_id: BizIdIn = ""


class CorpusAddRequest(RequestModel):
    """One passage (``content``, ``biz_id``) or many (``passages``)."""

    passages: list[PassageIn] | None = Field(None, min_length=1, max_length=MAX_PASSAGES_PER_REQUEST)
    content: str | None = Field(None, min_length=1, max_length=MAX_CONTENT_CHARS, json_schema_extra=NOT_BLANK)
    biz_id: BizIdIn = ""

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


BIZ_ID_DOC = "As stored: a string, or an integer in a collection made by the reference (INT64 biz_id)."


class PassageOut(BaseModel):
    id: int
    biz_id: str | int = Field(..., description=BIZ_ID_DOC)
    content: str


class PassageList(BaseModel):
    items: list[PassageOut]
    limit: int
    offset: int
    total: int = Field(..., description="Passages matching the filters (for pagination).")


class DeleteResponse(BaseModel):
    deleted: int


class CorpusStats(BaseModel):
    collection: str
    store: str
    count: int
    read_only: bool = Field(
        ..., description="True for a collection made by the reference's schema: served, not written (see 409)."
    )
    dimension: int
    index_type: str | None
    metric_type: str | None
    model: str
    pooling: str
    max_tokens: int


class SearchRequest(RequestModel):
    prompt: str = Field(..., json_schema_extra=NOT_BLANK, description="Not blank, at most MAX_PROMPT_CHARS characters.")
    top_k: int = Field(5, ge=1, le=50)


class SearchMatch(BaseModel):
    id: int
    biz_id: str | int = Field(..., description=BIZ_ID_DOC)
    similarity: float
    content: str
    above_threshold: bool
    guard: str | None = Field(
        None, description="The second check's verdict for this prompt: pass or rejected:<reason> (null: HIT_GUARD=off)."
    )


class SearchResponse(BaseModel):
    threshold: float
    matches: list[SearchMatch]
