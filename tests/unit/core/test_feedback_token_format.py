"""Feedback tokens on the wire (writing.core.feedback): a short payload travels as it is (JSON, starting
with ``{``), a long one zlib-compressed; both verify, and so do the tokens the previous version issued
(always zlib, the payload written by ``json.dumps``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import zlib
from dataclasses import replace

import pytest

from writing.core.feedback import (
    COMPRESS_ABOVE,
    SIGNATURE_BYTES,
    TOKEN_PROMPT_CHARS,
    FeedbackTokens,
    InvalidToken,
    Served,
    Signer,
    prompt_hash,
)

SECRET = b"feedback-secret"
SHORT = Served(
    "req-1",
    "tenant-a",
    "curated",
    42,
    0.9512,
    "写一段描写秋天的文字",
    prompt_hash("写一段描写秋天的文字"),
    "biz-7",
    int(time.time()),
)
LONG_PROMPT = "秋风萧瑟天气凉草木摇落露为霜" * 60 + "写作"  # 900 CJK characters
LONG = replace(SHORT, tier="generated", prompt=LONG_PROMPT, prompt_hash=prompt_hash(LONG_PROMPT), matched=LONG_PROMPT)


def decoded(token: str) -> tuple[bytes, bytes]:
    """A token's signature and body."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    return raw[:SIGNATURE_BYTES], raw[SIGNATURE_BYTES:]


def old_issue(secret: bytes, served: Served) -> str:
    """How the previous version issued a token: the json.dumps payload, always zlib-compressed."""
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
    packer = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS, 1)
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    body = packer.compress(raw) + packer.flush()
    sig = hmac.new(secret, body, hashlib.sha256).digest()[:SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(sig + body).decode("ascii").rstrip("=")


def old_payload(served: Served) -> bytes:
    return zlib.decompress(decoded(old_issue(SECRET, served))[1])


def test_a_short_payload_travels_uncompressed_and_round_trips():
    token = FeedbackTokens(SECRET).issue(SHORT)
    assert token.isascii() and "=" not in token
    _, body = decoded(token)
    assert body.startswith(b"{") and len(body) <= COMPRESS_ABOVE
    assert body == old_payload(SHORT)  # the very bytes json.dumps wrote, unpacked
    assert FeedbackTokens(SECRET).verify(token) == SHORT


@pytest.mark.parametrize("entry_id, similarity", [(None, None), (2**63 - 1, 1.0), (0, 0.5)])
def test_the_payload_is_what_json_dumps_wrote(entry_id, similarity):
    served = replace(SHORT, entry_id=entry_id, similarity=similarity, tier="llm", matched="")
    token = FeedbackTokens(SECRET).issue(served)
    assert decoded(token)[1] == old_payload(served)
    assert FeedbackTokens(SECRET).verify(token) == served


def test_a_long_prompt_is_compressed_and_round_trips():
    tokens = FeedbackTokens(SECRET)
    token = tokens.issue(LONG)
    _, body = decoded(token)
    assert not body.startswith(b"{")
    unpacked = zlib.decompress(body)
    assert len(unpacked) > COMPRESS_ABOVE and unpacked == old_payload(LONG)
    assert len(body) < len(unpacked)
    assert tokens.verify(token) == LONG


def test_a_prompt_past_the_token_limit_is_cut():
    prompt = "长" * (TOKEN_PROMPT_CHARS + 50)
    served = replace(SHORT, prompt=prompt, prompt_hash=prompt_hash(prompt))
    verified = FeedbackTokens(SECRET).verify(FeedbackTokens(SECRET).issue(served))
    assert verified.prompt == prompt[:TOKEN_PROMPT_CHARS] and verified.prompt_hash == prompt_hash(prompt)


@pytest.mark.parametrize("served", [SHORT, LONG], ids=["short", "long"])
def test_a_token_of_the_previous_version_still_verifies(served):
    token = old_issue(SECRET, served)
    assert not decoded(token)[1].startswith(b"{")
    assert FeedbackTokens(SECRET).verify(token) == served


def test_the_previous_versions_signature_is_the_same():
    token = FeedbackTokens(SECRET).issue(SHORT)
    sig, body = decoded(token)
    assert sig == hmac.new(SECRET, body, hashlib.sha256).digest()[:SIGNATURE_BYTES]


def flip(token: str, at: int) -> str:
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]


@pytest.mark.parametrize("served", [SHORT, LONG], ids=["short", "long"])
@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: flip(t, len(t) // 2),  # the body
        lambda t: flip(t, 3),  # the signature
        lambda t: t[:-4],
        lambda t: t[:SIGNATURE_BYTES],
        lambda t: "",
        lambda t: "not a token!",
    ],
)
def test_a_tampered_token_is_refused(served, mangle):
    token = FeedbackTokens(SECRET).issue(served)
    with pytest.raises(InvalidToken):
        FeedbackTokens(SECRET).verify(mangle(token))


@pytest.mark.parametrize("issue", [FeedbackTokens(SECRET).issue, lambda s: old_issue(SECRET, s)])
def test_another_secret_refuses_both_formats(issue):
    with pytest.raises(InvalidToken):
        FeedbackTokens(b"another-secret").verify(issue(SHORT))


def test_a_signed_body_that_is_not_a_payload_is_malformed():
    for body in (b"{not json", b"{}", zlib.compress(b"[1, 2]"), b"\x00\x01"):
        sig = hmac.digest(SECRET, body, "sha256")[:SIGNATURE_BYTES]
        token = base64.urlsafe_b64encode(sig + body).decode("ascii").rstrip("=")
        with pytest.raises(InvalidToken, match="malformed"):
            FeedbackTokens(SECRET).verify(token)


@pytest.mark.parametrize("secret", [b"", SECRET, b"k" * 64, b"k" * 65, bytes(range(256)) * 2])
@pytest.mark.parametrize("message", [b"", b"{}", "写作".encode() * 500])
def test_the_signer_is_hmac_sha256(secret, message):
    """The precomputed inner and outer states give RFC 2104's HMAC for keys shorter than, as long as and
    longer than sha256's block (hashed first), and the same signer signs many messages alike."""
    signer = Signer(secret)
    assert signer.digest(message) == hmac.digest(secret, message, "sha256")
    assert signer.digest(message) == hmac.new(secret, message, hashlib.sha256).digest()
