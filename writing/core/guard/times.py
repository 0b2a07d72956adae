"""Time words: a lexicon of seasons, parts of the day, festivals, dynasties and relative days, each word
with its category and canonical name (春天/春季/春雨 -> season 春; 国庆/国庆节 -> festival 国庆).

A lexicon rather than the tagger's ``t`` tag, whose use is too loose ("一去" is tagged t) and which
misses 秋雨/夏夜. A word counts only where it starts or ends on a token boundary (so 说明天空 holds no
明天); a season's night (夏夜) also names the part of day 晚上.

Rules (reason ``number``, as the numbers' are):

* ``time-conflict`` (generated): a category both sides name, with different words in it (春天/秋天,
  中秋/端午, 唐朝/宋朝).
* ``passage-time`` (curated): a category the prompt and the passage both name, with nothing in common
  (哈尔滨夏天 vs a winter passage). A passage that names no season passes a season asked.

A time word on one side only is rejected by ``number-one-side`` (generated tier only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from writing.core.guard.analysis import Analysis
from writing.core.guard.lexicon import Lazy, read
from writing.core.guard.rule import rule
from writing.core.guard.verdict import NUMBER


@dataclass(frozen=True)
class _Lexicon:
    words: dict[str, tuple[str, str]]  # word -> (category, canonical)
    night: frozenset[str]
    pattern: re.Pattern[str]


def _build() -> _Lexicon:
    data = read("times")
    words = {
        word: (category, canonical)
        for category, names in data["categories"].items()
        for canonical, spellings in names.items()
        for word in spellings
    }
    # a lookahead so that matches may overlap: 一下周末 holds 下周 (rejected, off the token bounds) and 周末
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return _Lexicon(words, frozenset(data["night"]), re.compile(f"(?=({alternatives}))"))


_LEXICON = Lazy(_build)


def times(compact: str, bounds: frozenset[int]) -> frozenset[tuple[str, str]]:
    """(category, canonical) of the lexicon's words in ``compact`` that start or end on one of ``bounds``
    (the token boundaries)."""
    lex = _LEXICON()
    found = set()
    for m in lex.pattern.finditer(compact):
        word = m.group(1)
        if m.start() in bounds or m.start() + len(word) in bounds:
            found.add(lex.words[word])
            if word in lex.night:
                found.add(("daypart", "晚上"))
    return frozenset(found)


def _in(times: frozenset[tuple[str, str]], category: str) -> set[str]:
    return {v for c, v in times if c == category}


def _shared_categories(a: Analysis, b: Analysis) -> list[str]:
    return sorted({c for c, _ in a.times} & {c for c, _ in b.times})


@rule("time-conflict", NUMBER, tiers=("generated",))
def time_conflict(a: Analysis, b: Analysis) -> str | None:
    """A time category both sides name, with other words in it (春天 vs 秋天)."""
    for category in _shared_categories(a, b):
        mine, theirs = _in(a.times, category), _in(b.times, category)
        if mine != theirs:
            return f"{'/'.join(sorted(mine))} vs {'/'.join(sorted(theirs))}"
    return None


@rule("passage-time", NUMBER, tiers=("curated",))
def passage_time(prompt: Analysis, passage: Analysis) -> str | None:
    """A time category the prompt and the passage both name, with no word in common."""
    for category in _shared_categories(prompt, passage):
        asked, given = _in(prompt.times, category), _in(passage.times, category)
        if not asked & given:
            return f"{'/'.join(sorted(asked))} vs {'/'.join(sorted(given))}"
    return None
