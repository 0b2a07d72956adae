"""The base of every request body: text must be text the service can pass on.

JSON can carry a lone UTF-16 surrogate (``"\\ud800"``) that no UTF-8 encoder accepts: left in, it fails
deep inside the tokenizer (and, before the batcher isolated bad rows, every prompt batched with it) or
the LLM client. A request body with one anywhere gets a 422 naming the field instead.
"""

from __future__ import annotations

from pydantic import BaseModel, model_validator

from writing.text import first_unencodable


class RequestModel(BaseModel):
    @model_validator(mode="after")
    def _valid_text(self) -> RequestModel:
        where = first_unencodable(self.model_dump(mode="python"))
        if where is not None:
            raise ValueError(
                f"{where or 'the body'} holds a lone UTF-16 surrogate (e.g. \\\\ud800); send valid UTF-8 text"
            )
        return self
