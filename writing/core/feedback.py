"""Feedback on served answers: signed tokens that carry what a report needs, and the blocklist.

Every answer carries ``X-Feedback-Token``: the request id, the caller's tenant, what answered (tier,
entry id, similarity) and the prompt, signed with HMAC-SHA256. ``POST /v1/feedback`` hands it back
with a verdict, so a report works whichever worker or replica answered, and survives restarts, with no
durable write on the answering path. A token is valid for ``TOKEN_TTL`` seconds.

A "wrong" verdict on a hit blocks that entry for that prompt and its near-identical rewordings
(cosine >= the block similarity): at once for the reporter's tenant, and for everyone once an admin
confirms it. A caller can therefore never suppress a curated passage for other tenants. The
``Blocklist`` is held in memory by each process, added to at once on a report and refreshed from the
feedback store in the background (other workers see a report within the refresh interval).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import zlib
from dataclasses import dataclass

import numpy as np
import orjson

from writing.text import content_hash

TOKEN_TTL = 7 * 24 * 3600
TOKEN_PROMPT_CHARS = 1000  # longer prompts travel as a hash: reports on them block the exact prompt only
SIGNATURE_BYTES = 16
COMPRESS_ABOVE = 384  # payload bytes past which a token's payload is compressed (a long prompt's)
SIMILARITY_BANDS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.92, 0.95, 0.98, 1.0)


class InvalidToken(ValueError):
    """A token that was not made by this service (or by one with another FEEDBACK_SECRET), or expired."""


@dataclass(frozen=True)
class Served:
    """What a feedback report is about: one answered request."""

    request_id: str
    tenant: str
    tier: str  # curated | generated | llm
    entry_id: int | None  # the passage or stored answer that was served (None: the LLM answered)
    similarity: float | None
    prompt: str  # may be cut to TOKEN_PROMPT_CHARS (then prompt_hash says which prompt it was)
    prompt_hash: str
    matched: str  # curated: the passage's biz_id; generated: the stored prompt it was written for
    issued: int


class Signer:
    """HMAC-SHA256 (RFC 2104) with the key's inner and outer blocks hashed once, at start-up.

    A signature copies the two sha256 states and hashes the message through them: the bytes
    ``hmac.digest(secret, message, "sha256")`` gives, without setting an HMAC up per answer (OpenSSL 3
    looks the digest up through its providers each time: 3-4 us a call in the service, against 1.4-1.8)."""

    BLOCK = 64  # sha256's block size in bytes

    def __init__(self, secret: bytes) -> None:
        key = hashlib.sha256(secret).digest() if len(secret) > self.BLOCK else secret
        key = key.ljust(self.BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


class FeedbackTokens:
    def __init__(self, secret: bytes) -> None:
        self._signer = Signer(secret)

    def issue(self, served: Served) -> str:
        payload = {
            "r": served.request_id,
            "t": served.tenant,
            "k": served.tier,
            "e": served.entry_id,
            "s": served.similarity,
            "p": served.prompt[:TOKEN_PROMPT_CHARS],
            "h": served.prompt_hash,
            "m": served.matched[:TOKEN_PROMPT_CHARS],
            "i": served.issued,
        }
        raw = orjson.dumps(payload)  # the bytes json.dumps(ensure_ascii=False, compact) writes, ~10x faster
        if len(raw) > COMPRESS_ABOVE:
            # a small zlib stream (memLevel 1): a quarter of zlib.compress's cost (it allocates its default
            # 256 KiB state per call); a short payload goes as it is (it starts with "{", which no zlib
            # stream does), so most answers pay for no compressor at all
            packer = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS, 1)
            body = packer.compress(raw) + packer.flush()
        else:
            body = raw
        sig = self._signer.digest(body)[:SIGNATURE_BYTES]
        return base64.urlsafe_b64encode(sig + body).decode("ascii").rstrip("=")

    def verify(self, token: str, now: float | None = None) -> Served:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            raise InvalidToken("not a feedback token") from None
        sig, body = raw[:SIGNATURE_BYTES], raw[SIGNATURE_BYTES:]
        expected = self._signer.digest(body)[:SIGNATURE_BYTES]
        if len(sig) != SIGNATURE_BYTES or not hmac.compare_digest(sig, expected):
            raise InvalidToken("the token's signature does not match")
        try:
            p = json.loads(body if body[:1] == b"{" else zlib.decompress(body))
            served = Served(p["r"], p["t"], p["k"], p["e"], p["s"], p["p"], p["h"], p["m"], int(p["i"]))
        except (ValueError, KeyError, TypeError, zlib.error):
            raise InvalidToken("the token is malformed") from None
        if (now or time.time()) - served.issued > TOKEN_TTL:
            raise InvalidToken("the token has expired")
        return served


def prompt_hash(prompt: str) -> str:
    """The normalised prompt's sha256: the same key the exact tier looks prompts up by."""
    return content_hash(prompt)


def similarity_band(similarity: float | None) -> str:
    """A bounded label for metrics: the band's lower edge (``<0.5`` below the lowest)."""
    if similarity is None:
        return "none"
    lower = "<0.5"
    for edge in SIMILARITY_BANDS:
        if similarity >= edge:
            lower = f"{edge:.2f}"
    return lower


@dataclass(frozen=True)
class Block:
    report_id: int
    tier: str
    entry_id: int
    vector: np.ndarray  # the reported prompt's embedding
    tenant: str | None  # None: everyone (an admin confirmed it)


class Blocklist:
    """Entries reported wrong for a prompt: ``blocks`` says whether one may be served to this prompt.

    Copy-on-write: only the event loop changes it (``add``, ``remove``, ``replace``), and each change
    swaps in a new map; the search threads that call ``blocks`` read whichever map was current when
    they started, never one being changed under them."""

    def __init__(self, similarity: float = 0.97) -> None:
        self.similarity = similarity
        self._by_entry: dict[tuple[str, int], tuple[Block, ...]] = {}
        self._local: dict[int, tuple[float, Block | None]] = {}  # report id -> (when, block or None: lifted)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_entry.values())

    def add(self, block: Block) -> None:
        self._local[block.report_id] = (time.monotonic(), block)
        self._by_entry = self._put(self._dropped(self._by_entry, block.report_id), block)

    @staticmethod
    def _put(by_entry: dict, block: Block) -> dict:
        out = dict(by_entry)
        key = (block.tier, block.entry_id)
        out[key] = (*out.get(key, ()), block)
        return out

    def replace(self, blocks: list[Block], loaded_since: float) -> None:
        """Every block, as loaded from the store by a read that started at ``loaded_since`` (monotonic);
        changes made here after that moment are kept, since the read may not have seen them."""
        fresh: dict[tuple[str, int], tuple[Block, ...]] = {}
        for b in blocks:
            fresh[(b.tier, b.entry_id)] = (*fresh.get((b.tier, b.entry_id), ()), b)
        for report_id, (when, block) in list(self._local.items()):
            if when < loaded_since:
                del self._local[report_id]  # the store has it now
            elif block is None:
                fresh = self._dropped(fresh, report_id)
            else:
                fresh = self._put(self._dropped(fresh, report_id), block)
        self._by_entry = fresh

    def remove(self, report_id: int) -> None:
        self._local[report_id] = (time.monotonic(), None)
        self._by_entry = self._dropped(self._by_entry, report_id)

    @staticmethod
    def _dropped(by_entry: dict, report_id: int) -> dict:
        out = {}
        for key, blocks in by_entry.items():
            kept = tuple(b for b in blocks if b.report_id != report_id)
            if kept:
                out[key] = kept
        return out

    def may_block(self, tier: str, entry_id: int, tenant: str) -> bool:
        """Whether any block on this entry applies to this tenant, whatever the prompt: what a lookup
        without the prompt's vector (the exact tier) must assume, leaving the decision to ``blocks``."""
        candidates = self._by_entry.get((tier, entry_id))  # one read of the current map
        return any(b.tenant is None or b.tenant == tenant for b in candidates or ())

    def blocks(self, tier: str, entry_id: int, vector: np.ndarray | None, tenant: str) -> bool:
        candidates = self._by_entry.get((tier, entry_id))  # one read of the current map
        if not candidates or vector is None:
            return False
        for b in candidates:
            if (b.tenant is None or b.tenant == tenant) and float(np.dot(b.vector, vector)) >= self.similarity:
                return True
        return False
