"""Input checks at the edge: what a request may ask of the core, with a 422 that says what to fix.

The core trusts what it is given; every route that hands a prompt or a threshold override to the core
checks it with these first (``writing.api.deps.build_answer_request`` for the answering routes)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from writing.errors import InvalidRequest
from writing.text import first_unencodable, forbidden_char


def check_prompt(prompt: str | None, max_chars: int) -> str:
    if prompt is None or not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest("prompt must be a non-empty, non-blank string")
    if len(prompt) > max_chars:
        raise InvalidRequest(f"prompt is {len(prompt)} characters long; the limit is {max_chars}")
    if first_unencodable(prompt) is not None:
        raise InvalidRequest("prompt holds a lone UTF-16 surrogate (e.g. \\ud800); send valid UTF-8 text")
    problem = forbidden_char(prompt)
    if problem is not None:
        raise InvalidRequest(f"prompt {problem}; remove it")
    return prompt


def check_query_utf8(prompt: str, query_string: bytes, name: str = "prompt") -> str:
    """``prompt`` as read from the query, unless the query's bytes for ``name`` are not UTF-8: a client that
    percent-encodes GBK or Latin-1 bytes would otherwise be answered for U+FFFD replacement characters
    (the query is decoded leniently). Looks at the raw query only when the prompt holds U+FFFD, and at
    the last ``name=`` in it, the one the routes read (Starlette's ``QueryParams.get``)."""
    if "\ufffd" not in prompt:
        return prompt
    # split as Starlette's QueryParams splits (parse_qsl), each value kept as its raw bytes (latin-1)
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
    values = [value for key, value in pairs if key == name]
    if values:
        try:
            values[-1].encode("latin-1").decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(
                f"{name} is not UTF-8 once percent-decoded; percent-encode the text's UTF-8 bytes "
                "(GBK or Latin-1 bytes would be read as U+FFFD)"
            ) from None
    return prompt


def check_threshold(threshold: float | None, allowed: tuple[float, float]) -> float | None:
    if threshold is None:
        return None
    low, high = allowed
    if not low <= threshold <= high:
        raise InvalidRequest(f"similarity threshold {threshold} is outside the allowed range [{low}, {high}]")
    return threshold
