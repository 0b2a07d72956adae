"""What the rules read: the analysis of one text, and the values found in it.

Only types live here (no extraction): every feature module imports them, and ``hit_guard`` builds an
``Analysis`` from what the feature modules extract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Quantity:
    """A number normalised to a value with its measure: ("年", 2019), ("首", 3), ("clock", 15.0)."""

    measure: str
    value: float
    surface: str
    approx: bool = False


@dataclass(frozen=True)
class Negation:
    """A negation cue with the content words it governs (empty when the clause ends at the cue)."""

    cue: str
    scope: frozenset[str]


# -- constraints: what a request asks of the form of the answer. ``str()`` is the label a verdict's
# detail quotes ("lang:en", "length:max"), and what a list of them is sorted by.


@dataclass(frozen=True)
class Language:
    """Output language: en, ja, ko, fr, de, zh, classical, vernacular, yue, traditional."""

    code: str

    def __str__(self) -> str:
        return f"lang:{self.code}"


@dataclass(frozen=True)
class Audience:
    """Who the answer is for (给小学生, 适合老年人): the reader as the request names it."""

    reader: str

    def __str__(self) -> str:
        return f"audience:{self.reader}"


@dataclass(frozen=True)
class Style:
    """Tone or style: a tone word (幽默, 委婉), a named style (小红书风格) or an author imitated (模仿鲁迅)."""

    manner: str

    def __str__(self) -> str:
        return f"style:{self.manner}"


@dataclass(frozen=True)
class Format:
    """Layout and devices: 分段, 表格, 押韵, 第一人称, 分N段, 结尾 (要...), ... (counts written as N)."""

    form: str

    def __str__(self) -> str:
        return f"format:{self.form}"


@dataclass(frozen=True)
class Include:
    """Content the answer must contain (要包含..., 提到...); what it is, is left to the other rules."""

    def __str__(self) -> str:
        return "include:"


@dataclass(frozen=True)
class Length:
    """A bound on the length: at most (不超过, 以内), at least (不少于, 以上) or about (左右)."""

    bound: Literal["max", "min", "approx"]

    def __str__(self) -> str:
        return f"length:{self.bound}"


@dataclass(frozen=True)
class Genre:
    """The kind of text asked for: poem, prose, story, speech, thanks, apology, ... (see the lexicon)."""

    kind: str

    def __str__(self) -> str:
        return f"genre:{self.kind}"


Constraint = Language | Audience | Style | Format | Include | Length | Genre


@dataclass(frozen=True)
class Analysis:
    """Everything the rules need from one text, computed once (see ``HitGuard.analyse``)."""

    text: str  # normalise_text(original): what exact-match compares
    compact: str  # no whitespace, full-width digits folded: what substring tests look in
    loose: str  # compact without 的/之: so 桂林的山水 contains 桂林山水
    length: int  # characters that count as written text (letters, digits, CJK), for N字 requests
    quantities: tuple[Quantity, ...]
    times: frozenset[tuple[str, str]]  # (category, canonical)
    negations: tuple[Negation, ...]
    entities: frozenset[str]
    places: frozenset[str]  # the entities tagged as places (ns)
    subwords: tuple[tuple[str, tuple[str, ...]], ...]  # entity -> its dictionary sub-words
    constraints: frozenset[Constraint]  # genres included
    nouns: frozenset[str] = frozenset()  # common and proper nouns: the request's topic words
