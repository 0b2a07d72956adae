"""Request and response models of the admin surface: stored answers, feedback, the audit log."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Query
from pydantic import BaseModel, Field

from writing.api.protocol.base import RequestModel
from writing.core.corpus import MAX_BIZ_ID_CHARS

CURSOR = Query(0, ge=0, le=2**63 - 1, description="Where to start: the next_cursor of the previous page (0: first).")


class StoredAnswerOut(BaseModel):
    id: int = Field(..., description="The X-Match-Id of a generated hit.")
    tenant: str
    model: str
    prompt: str
    content: str
    stops: list[str]
    completion_tokens: int
    created_at: int = Field(..., description="Unix seconds.")
    hits: int = Field(..., description="Hits counted so far (written out in batches: approximate).")
    last_hit: int = Field(..., description="Unix seconds of the last hit counted (0: none).")


class StoredAnswerPage(BaseModel):
    items: list[StoredAnswerOut]
    next_cursor: int | None = Field(None, description="Pass as cursor for the next page; null: no more.")


class DeletedCount(BaseModel):
    deleted: int


class PromoteRequest(RequestModel):
    biz_id: str = Field(..., min_length=1, max_length=MAX_BIZ_ID_CHARS, pattern=r"^[^\x00-\x1f\x7f]*$")


class PromoteResponse(BaseModel):
    passage_id: int = Field(..., description="The curated passage now holding the answer.")
    duplicate: bool = Field(..., description="True when the corpus held the same text already.")
    retrieval_key_id: int = Field(..., description="The row that lets the original prompt find the passage.")
    removed_answer_id: int


class FeedbackRequest(RequestModel):
    request_id: str = Field(..., min_length=1, max_length=128, description="X-Request-ID of the answer.")
    token: str = Field(..., min_length=16, max_length=16384, description="X-Feedback-Token of the answer.")
    verdict: Literal["wrong", "good"]
    note: str | None = Field(None, max_length=1000)


class FeedbackAck(BaseModel):
    report_id: int
    tier: Literal["curated", "generated", "llm"]
    blocked_for: Literal["tenant", "nobody"] = Field(
        ..., description="A wrong hit stops being served for this prompt to your tenant at once."
    )


class ReportOut(BaseModel):
    id: int
    ts: int
    request_id: str
    tenant: str
    actor: str
    tier: str
    entry_id: int | None
    similarity: float | None
    verdict: str
    note: str
    prompt: str
    matched: str = Field(..., description="curated: the passage's biz_id; generated: the stored prompt.")
    status: Literal["open", "confirmed", "dismissed"]


class ReportPage(BaseModel):
    items: list[ReportOut]
    next_cursor: int | None = None


class AuditOut(BaseModel):
    id: int
    ts: int
    actor: str = Field(..., description="The key id of the admin (or loopback when no keys are configured).")
    action: str
    target: str
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_cursor: int | None = None


class JournalOut(BaseModel):
    id: int = Field(..., description="The change's id: its audit entry's id too, once the change finished.")
    ts: int
    actor: str
    action: str
    target: str
    state: Literal["done", "interrupted", "undone"] = Field(
        ...,
        description="done: the outcome is recorded; interrupted: only the intent (the change failed or the "
        "process died during it; it may be partly applied, and undo removes what was); undone.",
    )
    undone_by: int | None = Field(None, description="The audit entry of the undo.")


class JournalPage(BaseModel):
    items: list[JournalOut]
    next_cursor: int | None = None


class UndoConflict(BaseModel):
    target: str
    reason: str


class UndoOut(BaseModel):
    undone: int = Field(..., description="The journal entry undone.")
    action: str
    was: Literal["done", "interrupted"]
    audit_id: int = Field(..., description="The audit entry that records this undo.")
    applied: list[str] = Field(..., description="What was reversed, one line each.")
    conflicts: list[UndoConflict] = Field(..., description="What changed since and was left as it is.")
