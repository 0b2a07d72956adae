"""Constraints: what a request asks of the form of the answer rather than its topic.

Read as typed values (``analysis``): the output language (用英文, 文言文, 英文版), the audience (给小学生
看, 适合老年人), the tone and style (幽默一点, 语气委婉, 小红书风格, 模仿…), the format (分段, 表格,
markdown, 押韵, 第一人称, 分三段, 结尾要…, 每句…), content to include (要包含…), a length bound
(不超过/以内/以上/左右) and the genre (诗, 散文, 感谢信, 道歉信, ...).

Rules (reason ``constraint``, generated tier only: a curated passage was written under no request, so
a poem asked and a prose passage found is left to the similarity threshold):

* ``constraint``: the two sides' constraints other than genre differ (写一封求职信 vs 写一封求职信，
  不要超过一页; a tone outside the lexicon, 肉麻一点, is not read).
* ``genre``: both sides name a genre, and none in common (感谢信 vs 道歉信). A genre on one side only
  passes (写一首诗 ~ 帮我写首诗).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from writing.core.guard.analysis import (
    Analysis,
    Audience,
    Constraint,
    Format,
    Genre,
    Include,
    Language,
    Length,
    Style,
)
from writing.core.guard.lexicon import Lazy, read
from writing.core.guard.rule import rule
from writing.core.guard.verdict import CONSTRAINT

_CJK = r"\u4e00-\u9fff"


@dataclass(frozen=True)
class _Lexicon:
    languages: dict[str, str]
    language_patterns: tuple[re.Pattern[str], ...]
    patterns: tuple[tuple[str, re.Pattern[str]], ...]  # (kind, pattern); the value is group v, or all
    length: dict[str, str]
    genres: dict[str, str]
    genre_pattern: re.Pattern[str]


def _build() -> _Lexicon:
    data = read("constraints")
    langs = "|".join(sorted(data["languages"], key=len, reverse=True))
    audience, tones = "|".join(data["audience"]), "|".join(data["tones"])
    manner = "语气|口吻|语调|语言|文风|风格|措辞"
    patterns = (
        (
            "audience",
            rf"(?:给|面向|适合|针对|讲给|写给|说给)(?:\d+岁的?|[一二三四五六七八九十]+岁的?)?(?P<v>{audience})",
        ),
        ("audience", rf"(?P<v>{audience})(?:都|也)?(?:能|可以|容易)?(?:听懂|看懂|读懂|理解|看得懂|听得懂)"),
        ("audience", rf"(?P<v>{audience})(?:适合|合适|适用)"),
        ("style", rf"(?P<v>{tones})(?:一点|一些|些|点)"),
        ("style", rf"(?:{manner})(?:要|需要|须|必须|应|尽量|更)?(?P<v>{tones})"),
        ("style", rf"(?:用|以|要|尽量|更|写得)(?P<v>{tones})(?:的|地)"),
        ("style", rf"(?P<v>{tones})的(?:{manner})"),
        ("style", rf"(?P<v>[{_CJK}A-Za-z]{{1,6}})(?:风格|体|风)(?:的|来|写)"),
        ("style", rf"(?:模仿|仿照|仿写)(?P<v>[{_CJK}]{{1,5}}?)(?:的|风格|文风|口吻)"),
        (
            "format",
            r"(?P<v>分段|分点|表格|列表|要点|提纲|大纲|markdown|md格式|押韵|对仗|排比|拟人|藏头|问答形式|对话形式|书信格式)",
        ),
        ("format", r"第(?:一|二|三)人称"),
        ("format", r"(?:分|写成|分成)(?:\d+|[两三四五六七八九十]+)(?:段|部分|点|节)"),
        ("format", r"(?P<v>结尾|开头|结局|标题|每句|每段|每一段|每一句)话?(?:要|需要|必须|用|以|都|加|写)"),
        ("format", rf"(?:用|以)[{_CJK}]{{1,6}}(?P<v>结尾|开头|收尾)"),
        ("include", r"(?:要|需要|必须|务必|记得)?(?:包含|包括|提到|加入|融入|穿插|带上|用上|出现)(?!了)"),
        ("length", r"(?P<v>(?:不|不要|不能|不得|别|勿)超过|不多于|以内|之内|以下|字内|页内|最多|至多)"),
        ("length", r"(?P<v>不少于|不低于|至少|起码|以上|多于|(?<![不要能得别勿])超过)"),
        ("length", r"(?P<v>左右|上下|大约|大概)(?=$|[，。,.！!？?；;的])"),
    )
    genres = {word: kind for kind, words in data["genres"].items() for word in words}
    return _Lexicon(
        languages=dict(data["languages"]),
        language_patterns=(
            re.compile(rf"(?:用|以|使用|翻译成|译成|改成|改写成|写成|翻成)(?P<v>{langs})"),
            re.compile(
                rf"(?P<v>{langs})(?:版|写|的(?:作文|短文|自我介绍|信|邮件|文章|诗|介绍|文案|演讲稿|歌词|版本|翻译)|作文|短文)"
            ),
        ),
        patterns=tuple((kind, re.compile(p)) for kind, p in patterns),
        length=dict(data["length"]),
        genres=genres,
        genre_pattern=re.compile("|".join(sorted(genres, key=len, reverse=True))),
    )


_LEXICON = Lazy(_build)


def constraints(compact: str) -> frozenset[Constraint]:
    """Every constraint ``compact`` states, genres included (see the module docstring)."""
    lex = _LEXICON()
    found: set[Constraint] = set()
    lowered = compact.lower()
    for pattern in lex.language_patterns:
        found.update(Language(lex.languages[m.group("v")]) for m in pattern.finditer(lowered))
    for kind, pattern in lex.patterns:
        for m in pattern.finditer(lowered):
            value = m.groupdict().get("v") or m.group(0)
            if kind == "audience":
                found.add(Audience(value))
            elif kind == "style":
                found.add(Style(value))
            elif kind == "format":
                found.add(Format(re.sub(r"\d+|[两三四五六七八九十]+", "N", value)))
            elif kind == "include":
                found.add(Include())
            else:
                found.add(Length(lex.length.get(value, "approx")))  # type: ignore[arg-type]
    found.update(Genre(lex.genres[m.group(0)]) for m in lex.genre_pattern.finditer(compact))
    return frozenset(found)


def _labels(items: set[Constraint]) -> list[str]:
    return sorted(str(c) for c in items)


@rule("constraint", CONSTRAINT, tiers=("generated",))
def constraint(a: Analysis, b: Analysis) -> str | None:
    """The two sides state different constraints, genres aside (不要超过一页 on one side only)."""
    left = {c for c in a.constraints if not isinstance(c, Genre)}
    right = {c for c in b.constraints if not isinstance(c, Genre)}
    if left != right:
        return f"{_labels(left - right)} vs {_labels(right - left)}"
    return None


@rule("genre", CONSTRAINT, tiers=("generated",))
def genre(a: Analysis, b: Analysis) -> str | None:
    """Both sides name a genre, and none in common (感谢信 vs 道歉信)."""
    mine = {c for c in a.constraints if isinstance(c, Genre)}
    theirs = {c for c in b.constraints if isinstance(c, Genre)}
    if mine and theirs and not mine & theirs:
        return f"{_labels(mine)} vs {_labels(theirs)}"
    return None
