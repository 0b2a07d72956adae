"""Text normalisation shared by the embedding cache key, the content hash and ingestion; a token estimate."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator

CONTROL_CHARS = frozenset(chr(c) for c in range(32)) | {chr(127)}
# the bidirectional embeddings, overrides and isolates (LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI): they
# reorder how the text around them is shown ("Trojan Source"), so a biz_id could render reversed in the
# console; the marks (LRM, RLM) do not and stay allowed
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


_FORBIDDEN_RE = re.compile("[\x00" + "".join(sorted(BIDI_CONTROLS)) + "]")


def forbidden_char(text: str) -> str | None:
    """What is wrong with ``text`` if it holds NUL or a bidirectional control character (a phrase naming
    the first one and where it is, for a 422), else None. Stored text (passages, prompts, biz_ids) may
    hold neither: NUL cuts strings short in C code and logs, bidi controls reorder what admins see.
    One regex scan (on every prompt's path: no Python loop over the characters)."""
    found = _FORBIDDEN_RE.search(text)
    if found is None:
        return None
    ch, i = found.group(), found.start()
    if ch == "\x00":
        return f"holds NUL (U+0000) at character {i}"
    return f"holds the bidirectional control U+{ord(ch):04X} at character {i}"


def normalise_text(text: str) -> str:
    """NFC, whitespace runs folded to one space, ends stripped: what is hashed, embedded and cached."""
    return " ".join(unicodedata.normalize("NFC", text).split())


_TOKEN_RE = re.compile(r"[A-Za-z0-9]+|\S")


def estimate_tokens(text: str, window: int | None = None) -> int:
    """What a text costs an embedding model, before it is tokenized (cheap: a regex): a CJK character or
    a punctuation mark is a token, a run of Latin letters or digits about one (WordPiece splits some in
    two), plus the special tokens; at most ``window`` (the rest is cut off)."""
    n = len(_TOKEN_RE.findall(text)) + 2
    return n if window is None else min(n, window)


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


def first_unencodable(value: object, path: str = "") -> str | None:
    """The path (``messages.0.content``) of the first string in ``value`` that UTF-8 cannot encode (a lone
    surrogate from a JSON ``\\ud800`` escape), or None when every string is valid text."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        key_path = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and first_unencodable(key) is not None:
            return key_path
        found = first_unencodable(item, key_path)
        if found is not None:
            return found
    return None
