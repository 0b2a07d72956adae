"""The one error envelope of every route: OpenAI's shape, so an OpenAI SDK reads it as its own.

{"error": {"message": "...", "type": "invalid_request_error", "code": "invalid_request", "param": null}}
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    message: str = Field(..., description="What went wrong and, for a 4xx, what to fix.")
    type: str = Field(..., description="OpenAI error type, e.g. invalid_request_error, upstream_error.")
    code: str = Field(..., description="Stable machine-readable code, e.g. invalid_request, llm_timeout.")
    param: str | None = Field(None, description="The request field at fault, when one is.")


class ErrorResponse(BaseModel):
    error: ErrorBody
