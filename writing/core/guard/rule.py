"""A rule: one named test of a prompt against a candidate, for the tiers it is written for."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from writing.core.guard.analysis import Analysis
from writing.core.guard.verdict import Tier, Verdict


@dataclass(frozen=True)
class Rule:
    """``check(prompt, candidate)`` rejects (a ``Verdict`` with this rule's ``reason``) or says nothing.

    ``test`` returns the rejection's detail, or None when the rule has nothing against the pair. A rule
    of the generated tier is symmetric (it tests both directions); one of the curated tier reads prompt
    -> passage only.
    """

    name: str
    reason: str
    tiers: frozenset[Tier]
    test: Callable[[Analysis, Analysis], str | None]
    doc: str = ""

    def check(self, a: Analysis, b: Analysis) -> Verdict | None:
        detail = self.test(a, b)
        return None if detail is None else Verdict(False, self.reason, detail)


def rule(name: str, reason: str, tiers: Iterable[Tier]) -> Callable[[Callable[[Analysis, Analysis], str | None]], Rule]:
    """Decorates ``test(a, b) -> detail | None`` into a ``Rule`` (its docstring says what it rejects)."""

    def make(test: Callable[[Analysis, Analysis], str | None]) -> Rule:
        return Rule(name, reason, frozenset(tiers), test, (test.__doc__ or "").strip())

    return make


def both_ways(a: Analysis, b: Analysis) -> tuple[tuple[Analysis, Analysis], tuple[Analysis, Analysis]]:
    """The two directions a symmetric rule reads, in the order it reports the first failure."""
    return (a, b), (b, a)
