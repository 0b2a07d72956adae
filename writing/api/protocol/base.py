"""The base of every request body: text must be text the service can pass on.

JSON can carry a lone UTF-16 surrogate (``"\\ud800"``) that no UTF-8 encoder accepts: left in, it fails
deep inside the tokenizer (and, before the batcher isolated bad rows, every prompt batched with it) or
the LLM client. A request body with one anywhere gets a 422 naming the field instead.
"""

from __future__ import annotations

from fastapi import Path
from pydantic import BaseModel, ValidationInfo, model_validator

from writing.text import first_unencodable


def row_id():
    """A path parameter holding a row id (an INT64); a fresh one per use (FastAPI keeps its name on it)."""
    return Path(..., ge=0, le=2**63 - 1, description="The row's id (an INT64).")


# Not blank: at least one character that is not white space. Stated in the schema only: the service
# checks it itself (a length or regex check at parse time fails a lone surrogate with a vaguer message).
NOT_BLANK = {"minLength": 1, "pattern": r"\S"}


# validation context from a caller that has seen the raw JSON hold no surrogate escape (writing.api.lane):
# then no string can hold a lone surrogate, and the check need not walk the model
TEXT_CHECKED = {"text_checked": True}


class RequestModel(BaseModel):
    @model_validator(mode="after")
    def _valid_text(self, info: ValidationInfo) -> RequestModel:
        if info.context and info.context.get("text_checked"):
            return self
        where = first_unencodable(self.model_dump(mode="python"))
        if where is not None:
            raise ValueError(
                f"{where or 'the body'} holds a lone UTF-16 surrogate (e.g. \\\\ud800); send valid UTF-8 text"
            )
        return self
