"""Feedback tokens and the blocklist (writing.core.feedback)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.support.fakes import text_vector
from writing.core.feedback import (
    TOKEN_TTL,
    Block,
    Blocklist,
    FeedbackTokens,
    InvalidToken,
    Served,
    prompt_hash,
    similarity_band,
)

SERVED = Served(
    "req-1",
    "tenant-a",
    "generated",
    42,
    0.9512,
    "写一段描写秋天的文字",
    prompt_hash("写一段描写秋天的文字"),
    "写一段秋天的文字",
    int(time.time()),
)


def test_a_token_round_trips_and_is_header_safe():
    tokens = FeedbackTokens(b"secret")
    token = tokens.issue(SERVED)
    assert token.isascii() and "\n" not in token
    assert tokens.verify(token) == SERVED


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1],
        lambda t: "x" + t,
        lambda t: t[:10],
        lambda t: "not base64 !",
    ],
)
def test_a_changed_or_foreign_token_is_refused(mangle):
    tokens = FeedbackTokens(b"secret")
    with pytest.raises(InvalidToken):
        tokens.verify(mangle(tokens.issue(SERVED)))
    with pytest.raises(InvalidToken):
        FeedbackTokens(b"another secret").verify(tokens.issue(SERVED))


def test_an_old_token_is_refused():
    tokens = FeedbackTokens(b"secret")
    with pytest.raises(InvalidToken, match="expired"):
        tokens.verify(tokens.issue(SERVED), now=SERVED.issued + TOKEN_TTL + 1)


def test_similarity_bands_are_bounded_labels():
    assert [similarity_band(s) for s in (None, 0.3, 0.5, 0.77, 0.93, 1.0)] == [
        "none",
        "<0.5",
        "0.50",
        "0.75",
        "0.92",
        "1.00",
    ]


def test_a_block_applies_to_near_identical_prompts_of_its_tenant_then_everyone():
    v = text_vector("写一段描写秋天的文字")
    blocks = Blocklist(similarity=0.97)
    blocks.add(Block(1, "generated", 42, v, "tenant-a"))
    assert blocks.blocks("generated", 42, v, "tenant-a")
    assert not blocks.blocks("generated", 42, v, "tenant-b")  # another tenant: only after confirmation
    assert not blocks.blocks("generated", 43, v, "tenant-a")  # another entry
    assert not blocks.blocks("curated", 42, v, "tenant-a")  # another tier
    assert not blocks.blocks("generated", 42, text_vector("写一封求职信"), "tenant-a")  # another prompt
    near = v + 0.05 * text_vector("noise")
    near /= np.linalg.norm(near)
    assert float(near @ v) >= 0.97 and blocks.blocks("generated", 42, near, "tenant-a")
    blocks.add(Block(1, "generated", 42, v, None))  # confirmed: replaces the tenant's block
    assert blocks.blocks("generated", 42, v, "tenant-b") and len(blocks) == 1
    blocks.remove(1)
    assert not blocks.blocks("generated", 42, v, "tenant-a") and len(blocks) == 0


def test_a_reload_keeps_what_changed_here_after_it_started():
    v = text_vector("写一段描写秋天的文字")
    blocks = Blocklist()
    started = time.monotonic()
    blocks.add(Block(1, "generated", 42, v, "t"))  # reported while the reload was reading
    blocks.replace([Block(2, "curated", 7, v, None)], loaded_since=started)
    assert blocks.blocks("generated", 42, v, "t") and blocks.blocks("curated", 7, v, "x")
    blocks.replace([Block(1, "generated", 42, v, "t")], loaded_since=time.monotonic())  # the store has it now
    assert blocks.blocks("generated", 42, v, "t") and not blocks.blocks("curated", 7, v, "x")
    lifted_at = time.monotonic()
    blocks.remove(1)
    blocks.replace([Block(1, "generated", 42, v, "t")], loaded_since=lifted_at - 1)  # a stale read
    assert not blocks.blocks("generated", 42, v, "t")
