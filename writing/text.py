"""Text normalisation shared by the embedding cache key, the content hash and ingestion."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterator

CONTROL_CHARS = frozenset(chr(c) for c in range(32)) | {chr(127)}


def normalise_text(text: str) -> str:
    """NFC, whitespace runs folded to one space, ends stripped: what is hashed, embedded and cached."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def content_hash(text: str) -> str:
    """sha256 of the normalised text: equal passages (up to whitespace) get equal hashes."""
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


class BadEncoding(ValueError):
    """A file that is not valid UTF-8 at ``lineno``."""

    def __init__(self, lineno: int, reason: str) -> None:
        super().__init__(f"line {lineno}: not UTF-8 ({reason})")
        self.lineno = lineno
        self.reason = reason


def numbered_lines(fh) -> Iterator[tuple[int, str]]:
    """(line number, line) of an open text file; a decoding error becomes ``BadEncoding`` with its line."""
    lineno = 0
    while True:
        lineno += 1
        try:
            line = fh.readline()
        except UnicodeDecodeError as exc:
            raise BadEncoding(lineno, exc.reason) from None
        if not line:
            return
        yield lineno, line
