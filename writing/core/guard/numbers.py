"""Numbers: Arabic and Chinese numerals normalised to (measure, value), and the rules that compare them.

What is read: years (2019年), decades (八十年代), month/day incl. lunar dates (八月十五, 五月初五,
正月初一), weekdays (周三), clock times with the part of day (下午三点 = 15h), ordinals (第二回), ranges
(三到五天) and a quantity with its classifier or unit (三首, 800字, 五公里, 两个月). A count of one
with a plain classifier (一篇, 一首, 一个) is the default of a request and is dropped, so 写一首诗 equals
写首诗; a one with a real unit (一句话, 一页, 一分钟) is kept. Festivals named by numbers (三八妇女节,
五一, 双十一) are time words (``times``), not quantities. Two counting classifiers are interchangeable
(三位老师 == 三个老师); "approximately" (一百六十多下) matches within 20% (at least 10).

Rules (reason ``number``):

* ``number-conflict`` (generated): a number on one side has a compatible measure and another value on
  the other side, and no equal one (2019年/2009年, 三首/两首, 下午三点/四点).
* ``number-one-side`` (generated, the last rule): a number or a time word present on one side only.
* ``passage-number`` (curated): each number of the prompt is in the passage; a requested length N字
  is checked against the passage's own length instead (±40%, or the bound asked: 不超过 allows 10%
  over, 不少于 10% under); a first-of (第一天) may go unsaid unless the passage names another.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from writing.core.guard.analysis import Analysis, Length, Quantity
from writing.core.guard.lexicon import Lazy, read
from writing.core.guard.rule import both_ways, rule
from writing.core.guard.verdict import NUMBER

_CN_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}
_CN_BIG = {"万": 10_000, "亿": 100_000_000}
_NUM = r"(?:\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百千万亿]+)"


def chinese_number(text: str) -> float | None:
    """Value of a Chinese (or Arabic) numeral: 两百 = 200, 二十五 = 25, 十五 = 15, 二〇一九 = 2019."""
    if not text:
        return None
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    if all(c in _CN_DIGIT for c in text) and len(text) > 1:  # digit by digit: 二〇一九
        return float("".join(str(_CN_DIGIT[c]) for c in text))
    total, section, digit = 0, 0, None
    for c in text:
        if c in _CN_DIGIT:
            digit = _CN_DIGIT[c]
        elif c in _CN_UNIT:
            section += (1 if digit is None else digit) * _CN_UNIT[c]
            digit = None
        elif c in _CN_BIG:
            total += (section + (digit or 0)) * _CN_BIG[c]
            section, digit = 0, None
        else:
            return None
    return float(total + section + (digit or 0))


@dataclass(frozen=True)
class _Lexicon:
    count: frozenset[str]  # classifiers that count things
    canonical: dict[str, str]
    afternoon: frozenset[str]  # parts of the day after noon
    pattern: re.Pattern[str]


def _build() -> _Lexicon:
    words = read("numbers")
    units = sorted(set(words["count"]) | set(words["measure"]), key=len, reverse=True)
    unit = "|".join(re.escape(u) for u in units)
    part = "|".join(words["part_of_day"])
    pattern = re.compile(
        "|".join(  # most specific first
            [
                # festivals named by a date and "double eleven": time words, not quantities
                r"(?P<skip>(?:三八|五一|六一|七一|八一|十一)(?=妇女节|劳动节|儿童节|建党节|建军节|国庆|黄金周|假期|长假|节)|双(?:11|12|十一|十二))",
                r"(?P<decade>\d0|[二三四五六七八九]十)年代",
                r"(?P<year>\d{4}|[零〇一二三四五六七八九]{4})年(?!级)",
                rf"(?P<lunar>农历|阴历)?(?P<month>正月|腊月|冬月|{_NUM}月(?!份?[饼光亮色球]))(?:(?P<day>初[一二三四五六七八九十]|{_NUM})(?P<dayunit>[日号])?)?",
                r"(?P<lday>初[一二三四五六七八九十])(?![中级])",
                r"(?:星期|礼拜|周)(?P<weekday>[一二三四五六日天1-7])",
                rf"(?P<part>{part})?(?P<hour>{_NUM})(?P<hunit>点钟?|时)(?:(?P<half>半)|(?P<minute>{_NUM})分)?",
                rf"第(?P<ordinal>{_NUM})(?P<ordunit>{unit})?",
                rf"(?P<lo>{_NUM})(?:到|至|-|~|～|或)(?P<hi>{_NUM})(?P<rangeunit>{unit})",
                rf"(?P<count>{_NUM})(?P<approx>多|余|来)?(?P<ge>个)?(?P<unit>{unit})",
                r"(?P<bare>\d+(?:\.\d+)?)",
            ]
        )
    )
    return _Lexicon(frozenset(words["count"]), dict(words["canonical"]), frozenset(words["afternoon"]), pattern)


_LEXICON = Lazy(_build)


def quantities(compact: str) -> tuple[Quantity, ...]:
    """All numbers in ``compact`` (see the module docstring), in order."""
    lex = _LEXICON()
    out: list[Quantity] = []
    for m in lex.pattern.finditer(compact):
        g = m.groupdict()
        surface = m.group(0)
        if g["skip"]:
            continue
        if g["decade"]:
            value = chinese_number(g["decade"])
            if value is not None:
                out.append(Quantity("年代", value % 100, surface))
        elif g["year"]:
            value = chinese_number(g["year"])
            if value is not None:
                out.append(Quantity("年", value, surface))
        elif g["month"]:
            month = {"正月": 1.0, "腊月": 12.0, "冬月": 11.0}.get(g["month"]) or chinese_number(g["month"][:-1])
            if month is None or not 1 <= month <= 12:
                continue
            out.append(Quantity("月", month, surface))
            if g["day"]:
                day = chinese_number(g["day"].removeprefix("初"))
                if day is not None and 1 <= day <= 31:
                    out.append(Quantity("日", day, surface))
        elif g["lday"]:
            day = chinese_number(g["lday"][1:])
            if day is not None:
                out.append(Quantity("日", day, surface))
        elif g["weekday"]:
            day = g["weekday"]
            value = float(day) if day.isdigit() else float("一二三四五六日".find(day) + 1 or 7)  # 天 = 日 = 7
            out.append(Quantity("weekday", value, surface))
        elif g["hour"]:
            clock = _clock(g, lex.afternoon, surface)
            if clock is not None:
                out.append(clock)
        elif g["ordinal"]:
            value = chinese_number(g["ordinal"])
            if value is not None:
                out.append(Quantity("第" + lex.canonical.get(g["ordunit"] or "", g["ordunit"] or ""), value, surface))
        elif g["lo"]:
            unit = lex.canonical.get(g["rangeunit"], g["rangeunit"])
            for part in (g["lo"], g["hi"]):
                value = chinese_number(part)
                if value is not None:
                    out.append(Quantity(unit, value, surface))
        elif g["count"]:
            value = chinese_number(g["count"])
            unit = lex.canonical.get(g["unit"], g["unit"])
            if value is None:
                continue
            if value == 1 and unit in lex.count and not g["approx"]:
                continue  # 写一篇, 一首, 一个: the default count of a request
            out.append(Quantity(unit, value, surface, approx=bool(g["approx"])))
        elif g["bare"]:
            out.append(Quantity("", float(g["bare"]), surface))
    return tuple(out)


def _clock(g: dict[str, str | None], afternoon: frozenset[str], surface: str) -> Quantity | None:
    """下午三点 = clock 15.0, 三点半 = 3.5; a bare 三点 (三点建议) counts 点; 一点 (幽默一点) is no number."""
    hour = chinese_number(g["hour"] or "")
    if hour is None:
        return None
    if not (g["part"] or g["half"] or g["minute"] or g["hunit"] == "点钟"):
        return Quantity("点", hour, surface) if g["hunit"] == "点" and hour != 1 else None
    if (g["part"] in afternoon and hour < 12) or (g["part"] in ("中午", "正午") and hour < 6):
        hour += 12
    minute = 30.0 if g["half"] else (chinese_number(g["minute"]) or 0.0) if g["minute"] else 0.0
    return Quantity("clock", hour + minute / 60, surface)


def _compatible(a: str, b: str) -> bool:
    """Same measure, or two counting classifiers (三位 ~ 三个), also as ordinals (第一堂 ~ 第一节)."""
    if a == b:
        return True
    count = _LEXICON().count
    if a.startswith("第") and b.startswith("第"):
        a, b = a[1:], b[1:]
        return a == b or (a in count and b in count)
    return a in count and b in count


def _same_value(a: Quantity, b: Quantity) -> bool:
    if a.approx or b.approx:  # 一百六十多下 covers 160 to under 200
        low = min(a.value, b.value)
        return abs(a.value - b.value) < max(10.0, 0.2 * low)
    return abs(a.value - b.value) < 1e-9


def find(q: Quantity, others: Iterable[Quantity]) -> tuple[bool, Quantity | None]:
    """(found, a conflicting quantity of a compatible measure if not found)."""
    conflict = None
    for o in others:
        if _compatible(q.measure, o.measure):
            if _same_value(q, o):
                return True, None
            conflict = conflict or o
    return False, conflict


@rule("number-conflict", NUMBER, tiers=("generated",))
def number_conflict(a: Analysis, b: Analysis) -> str | None:
    """A number with another value of the same measure on the other side (2019年 vs 2009年)."""
    for x, y in both_ways(a, b):
        for q in x.quantities:
            found, conflict = find(q, y.quantities)
            if not found and conflict is not None:
                return f"{q.surface} vs {conflict.surface}"
    return None


@rule("number-one-side", NUMBER, tiers=("generated",))
def number_one_side(a: Analysis, b: Analysis) -> str | None:
    """A number, then a time word, of one side that the other side does not have."""
    for x, y in both_ways(a, b):
        for q in x.quantities:
            if not find(q, y.quantities)[0]:
                return f"{q.surface} on one side only"
        extra = x.times - y.times
        if extra:
            return f"{'/'.join(sorted(v for _, v in extra))} on one side only"
    return None


@rule("passage-number", NUMBER, tiers=("curated",))
def passage_number(prompt: Analysis, passage: Analysis) -> str | None:
    """A number of the prompt that the passage lacks or contradicts; a length N字 the passage misses."""
    for q in prompt.quantities:
        if q.measure == "字":
            detail = _length_misses(q, prompt, passage)
            if detail is not None:
                return detail
            continue
        found, conflict = find(q, passage.quantities)
        if found:
            continue
        if q.measure.startswith("第") and q.value == 1 and conflict is None:
            continue  # 开学第一天: the passage tells the first day without saying 第一
        other = f" vs {conflict.surface}" if conflict else " not in passage"
        return f"{q.surface}{other}"
    return None


def _length_misses(q: Quantity, prompt: Analysis, passage: Analysis) -> str | None:
    """A requested length (800字, 不超过300字) against what the passage actually has."""
    bounds = {c.bound for c in prompt.constraints if isinstance(c, Length)}
    low, high = 0.6 * q.value, 1.4 * q.value
    if "max" in bounds:
        low, high = 0.0, 1.1 * q.value
    elif "min" in bounds:
        low, high = 0.9 * q.value, float("inf")
    if low <= passage.length <= high:
        return None
    return f"{q.surface} asked, passage has {passage.length}"
