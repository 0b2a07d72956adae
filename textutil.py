"""Text normalisation shared by the embedding cache key, the content hash and ingestion."""

from __future__ import annotations

import hashlib
import unicodedata


def normalise_text(text: str) -> str:
    """NFC, whitespace runs folded to one space, ends stripped: what is hashed, embedded and cached."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def content_hash(text: str) -> str:
    """sha256 of the normalised text: equal passages (up to whitespace) get equal hashes."""
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()
