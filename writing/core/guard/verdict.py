"""The guard's answer and its labels. No imports from the rest of the core: ``writing.core.models``
refers to ``Verdict``, so the guard must not refer back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Tier = Literal["curated", "generated"]
TIERS: tuple[Tier, ...] = ("generated", "curated")

NUMBER = "number"
NEGATION = "negation"
ENTITY = "entity"
CONSTRAINT = "constraint"
TOPIC = "topic"
REASONS = (NUMBER, NEGATION, ENTITY, CONSTRAINT, TOPIC)


@dataclass(frozen=True)
class Verdict:
    """The guard's answer: ``ok`` serves the hit; otherwise ``reason`` is one of ``REASONS``.

    ``detail`` is for a DEBUG log line only: it may quote the prompts.
    """

    ok: bool
    reason: str | None = None
    detail: str = ""


PASS = Verdict(ok=True)


def check_tier(tier: str) -> None:
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}: expected 'curated' or 'generated'")
