"""A model-free second check on a cache hit: does the stored text answer *this* prompt?

Embedding similarity scores "写一篇2019年国庆阅兵的观后感" and "写一篇2009年国庆阅兵的观后感" as
near-identical, and likewise 厦门/福州, 李白/杜甫, or a prompt with and without "不要超过一页". After
the similarity threshold has passed and before a hit is served, ``HitGuard.check`` compares the
request with the candidate and rejects when they ask for different things. It is pure Python over a
Chinese segmenter with part-of-speech tags (rjieba: jieba's dictionary and tags, in Rust), loaded on
first use; no model, no network, no I/O beyond that load.

What is extracted from a text (``Analysis``), once per text (bounded LRU):

* numbers, normalised to (measure, value): Arabic and Chinese numerals (两/三/二十五/一百六十),
  years (2019年), month/day incl. lunar dates (八月十五, 五月初五, 正月初一), weekdays (周三),
  clock times with the part of day (下午三点 = 15h), centuries, ordinals (第二回), and a
  quantity with its classifier or unit (三首, 800字, 五公里, 两个月). A count of one with a plain
  classifier (一篇, 一首, 一个) is the default of a request and is dropped, so 写一首诗 equals 写首诗;
  a one with a real unit (一句话, 一页, 一分钟) is kept. Festivals named by numbers (三八妇女节, 五一,
  双十一) are time words, not quantities.
* time words from a small lexicon, each in a category: season (春天/春季/春雨 → 春), part of day,
  festival (国庆/国庆节), dynasty, relative day (明天, 周末). A lexicon rather than the tagger's ``t``
  tag, whose use is too loose ("一去" is tagged t) and which misses 秋雨/夏夜.
* negations: a cue token (不/没/没有/未/无/非/别/不要/不用/无需/禁止/避免/切勿 …, or a token that starts
  with 不/没/未/无/非/别 and is not a lexicalised word such as 不错, 无论, 非常, 不断, 别墅) with its
  scope, the content words that follow up to the clause end. A-not-A questions (冷不冷, 有没有) and
  bounds (不超过, 不少于: lengths, handled as constraints) are not negations.
* entities: tokens tagged as person/place/organisation/other proper noun (nr, ns, nt, nz …), Latin
  words (iPhone, markdown), titles in 书名号 《…》, and a place at the start of a compound the
  dictionary lists as a common noun (重庆火锅/n → 重庆). The dictionary tags some common words as
  names (赞美/ns, 祝福/nr, 小学生/nr); a short stoplist removes the ones seen in writing prompts.
* constraints: requests about the form of the answer rather than its topic: output language (用英文,
  文言文), audience (给小学生看, 适合老年人), tone and style (幽默一点, 语气委婉, 小红书风格, 模仿…),
  format (分段, 表格, markdown, 押韵, 第一人称, 结尾要…, 每句…), content to include (要包含…),
  length bounds and qualities (不超过/以内/以上/左右, 简短/详细), and the genre when both sides name
  one (诗 vs 散文, 感谢信 vs 道歉信).

The rules (``check``), in this order, first failure wins:

* ``generated`` tier (candidate = a stored prompt; symmetric, both directions):
  1. ``number``: a number on one side has the same measure with another value on the other side
     (2019年/2009年, 三首/两首, 下午三点/四点), or a time word conflicts (春天/秋天, 中秋/端午).
  2. ``negation``: a negation on one side is not echoed on the other (a negation whose scope shares
     a content word, or any negation when the scope is empty): 不要熬夜 == 别熬夜, but 押韵/不押韵.
  3. ``entity``: a named thing on one side is missing from the other. "Missing" is textual and
     forgiving: the name, or each of its dictionary sub-words (苏州园林 → 苏州 + 园林), or a name on
     the other side that is its head (长江三峡 ~ 三峡), with 的 ignored (桂林山水 ~ 桂林的山水); a place
     that only locates another place the other side names is not required (敦煌莫高窟 ~ 莫高窟).
  4. ``constraint``: the constraint sets differ.
  5. ``number``: a number or a time word present on one side only.
* ``curated`` tier (candidate = a passage that would be served; prompt → passage only, the passage
  naturally says much more): a prompt number must be in the passage (a requested length N字 is
  checked against the passage's own length; a first-of, 第一天, may be absent); a prompt time word
  must not conflict with the passage's in the same category (哈尔滨夏天 vs a winter passage); a prompt
  negation must be echoed in the passage (the passage was not written under that restriction
  unless it says so); a prompt entity must appear in it. Constraints are not checked for this tier.

An exact match (equal after whitespace normalisation) always passes.

What it deliberately misses (measured in bench/guard.py on data/guard_pairs.jsonl and
data/guard_curated_pairs.jsonl): differences in common nouns and verbs (猫/狗, 妈妈/爸爸, 节约用水/用电,
入党/入团 申请书, 作文/日记; left to the embedding threshold: a content-word comparison would reject
most rewordings); tones outside its lexicon (肉麻一点); names the dictionary does not know and tags
as common words (小米/n, 大理/n, 拙政园/n), and common words it tags as names that are not on the
stoplist (both ways: a miss, or a false rejection); genre and format requests against a curated
passage (a poem asked, a prose passage found: the brief keeps constraints to the generated tier); a
season asked of a passage that names none (秋天的森林 vs a forest); paraphrased numbers (一打 vs 十二个)
and arithmetic (三天两夜 vs 3天); negation scope beyond a clause, and double negation.
Conservative on purpose, so a reworded prompt is rejected when it drops or adds a name (介绍一下兵马俑
vs 请介绍一下西安的兵马俑), spells one differently (京城 for 北京), states an implied target (翻译成白话文
vs 翻译一下), or when a passage lists a count without the word (七种颜色 vs 红、橙、黄…).
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

from writing.text import normalise_text

Tier = Literal["curated", "generated"]


def _words(text: str) -> list[str]:
    """A word list written as one space-separated string (the lexicons below are long)."""
    return text.split()


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
    constraints: frozenset[str]
    nouns: frozenset[str] = frozenset()  # common and proper nouns: the request's topic words


class CacheInfo(NamedTuple):
    """Like ``functools.lru_cache``'s: misses are texts actually segmented."""

    hits: int
    misses: int
    size: int
    maxsize: int


class Tagger(Protocol):
    """A segmenter with part-of-speech tags in jieba's tag set (the guard's only dependency)."""

    def tag(self, text: str) -> list[tuple[str, str]]: ...

    def subwords(self, word: str) -> list[str]: ...


class RJiebaTagger:
    """rjieba, imported on first use and then shared by the threads of its owner.

    rjieba builds its default ``Jieba`` (the dictionary compiled into the wheel, ~0.2 s, ~33 MB) when
    the module is imported, so importing it lazily is what makes the guard lazy. That default instance
    is used rather than a private ``rjieba.Jieba()``: the guard never adds words, and a second instance
    would cost another 0.15 s and 24 MB. Its calls are read-only and hold the GIL, so they are safe
    from worker threads; the lock only guards the one-time import.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._functions: tuple[Callable[[str], list[tuple[str, str]]], Callable[[str], list[str]]] | None = None
        self.load_seconds: float | None = None  # how long the first use waited for the dictionary

    def _loaded(self) -> tuple[Callable[[str], list[tuple[str, str]]], Callable[[str], list[str]]]:
        functions = self._functions
        if functions is None:
            with self._lock:
                if self._functions is None:
                    started = time.perf_counter()
                    import rjieba

                    self._functions = (rjieba.tag, rjieba.cut_for_search)
                    self.load_seconds = time.perf_counter() - started
                functions = self._functions
        return functions

    def tag(self, text: str) -> list[tuple[str, str]]:
        return list(self._loaded()[0](text))

    def subwords(self, word: str) -> list[str]:
        return list(self._loaded()[1](word))


# --------------------------------------------------------------------------------------------------
# numbers

_CN_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}
_CN_BIG = {"万": 10_000, "亿": 100_000_000}
_FULLWIDTH = str.maketrans("０１２３４５６７８９．％", "0123456789.%")


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


# Classifiers that count things: a count of one with these is a request's default (写一篇, 一首,
# 一个) and is dropped; they are interchangeable when matching counts (三位老师 == 三个老师).
_COUNT = _words(
    "个 篇 首 封 段 份 条 则 张 幅 本 只 种 部 位 名 件 场 把 家 点 次 遍 道 套 款 间 所 座 棵 朵 株 匹 头 "
    "口 面 支 枝 颗 粒 块 杯 碗 盘 瓶 对 组 排 层 下 声 步 趟 群 批 项 门 节 课 堂 届 期 集 册 章 回 幕 关 句"
)
# Units: kept even at one (一句话, 一页, 一分钟), compared by value. 句 is a length only as 句话
# (用一句话介绍); before a noun it counts things like 条 does (一句宣传语 = 一条宣传语).
_MEASURE = _words(
    "字 页 句话 行 言 分钟 小时 钟头 秒钟 秒 天 日 周 星期 个月 月 年 世纪 岁 周岁 公里 千米 米 厘米 毫米 "
    "公斤 千克 斤 克 元 块钱 人 % 度 倍 折 年级 人称 层楼"
)
_CANON = {
    "日": "天",
    "星期": "周",
    "钟头": "小时",
    "秒钟": "秒",
    "千米": "公里",
    "周岁": "岁",
    "块钱": "元",
    "个月": "月份",
}
_UNITS = sorted(set(_COUNT) | set(_MEASURE), key=len, reverse=True)
_NUM = r"(?:\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百千万亿]+)"
_UNIT_RE = "|".join(re.escape(u) for u in _UNITS)
_PART_OF_DAY = "凌晨|早上|早晨|清晨|上午|中午|正午|下午|傍晚|晚上|夜里|夜晚|深夜|半夜"
_PM = {"下午", "傍晚", "晚上", "夜里", "夜晚", "深夜", "半夜"}
_NUMBER_RE = re.compile(
    "|".join(
        [
            # festivals named by a date and "double eleven": time words, not quantities
            r"(?P<skip>(?:三八|五一|六一|七一|八一|十一)(?=妇女节|劳动节|儿童节|建党节|建军节|国庆|黄金周|假期|长假|节)|双(?:11|12|十一|十二))",
            r"(?P<decade>\d0|[二三四五六七八九]十)年代",
            r"(?P<year>\d{4}|[零〇一二三四五六七八九]{4})年(?!级)",
            rf"(?P<lunar>农历|阴历)?(?P<month>正月|腊月|冬月|{_NUM}月(?!份?[饼光亮色球]))(?:(?P<day>初[一二三四五六七八九十]|{_NUM})(?P<dayunit>[日号])?)?",
            r"(?P<lday>初[一二三四五六七八九十])(?![中级])",
            r"(?:星期|礼拜|周)(?P<weekday>[一二三四五六日天1-7])",
            rf"(?P<part>{_PART_OF_DAY})?(?P<hour>{_NUM})(?P<hunit>点钟?|时)(?:(?P<half>半)|(?P<minute>{_NUM})分)?",
            rf"第(?P<ordinal>{_NUM})(?P<ordunit>{_UNIT_RE})?",
            rf"(?P<lo>{_NUM})(?:到|至|-|~|～|或)(?P<hi>{_NUM})(?P<rangeunit>{_UNIT_RE})",
            rf"(?P<count>{_NUM})(?P<approx>多|余|来)?(?P<ge>个)?(?P<unit>{_UNIT_RE})",
            r"(?P<bare>\d+(?:\.\d+)?)",
        ]
    )
)


def _canon_unit(unit: str) -> str:
    return _CANON.get(unit, unit)


def _is_count(measure: str) -> bool:
    return measure in _COUNT


def _quantities(compact: str) -> tuple[Quantity, ...]:
    """All numbers in ``compact``, normalised; the regex alternatives are ordered most specific first."""
    out: list[Quantity] = []
    for m in _NUMBER_RE.finditer(compact):
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
            hour = chinese_number(g["hour"])
            if hour is None:
                continue
            clock = bool(g["part"] or g["half"] or g["minute"] or g["hunit"] == "点钟")
            if not clock:
                if g["hunit"] == "点" and hour != 1:  # 三点建议 (幽默一点 is no number): a count of 点
                    out.append(Quantity("点", hour, surface))
                continue
            if (g["part"] in _PM and hour < 12) or (g["part"] in ("中午", "正午") and hour < 6):
                hour += 12
            minute = 30.0 if g["half"] else (chinese_number(g["minute"]) or 0.0) if g["minute"] else 0.0
            out.append(Quantity("clock", hour + minute / 60, surface))
        elif g["ordinal"]:
            value = chinese_number(g["ordinal"])
            if value is not None:
                out.append(Quantity("第" + _canon_unit(g["ordunit"] or ""), value, surface))
        elif g["lo"]:
            unit = _canon_unit(g["rangeunit"])
            for part in (g["lo"], g["hi"]):
                value = chinese_number(part)
                if value is not None:
                    out.append(Quantity(unit, value, surface))
        elif g["count"]:
            value = chinese_number(g["count"])
            unit = _canon_unit(g["unit"])
            if value is None:
                continue
            if value == 1 and _is_count(unit) and not g["approx"]:
                continue  # 写一篇, 一首, 一个: the default count of a request
            out.append(Quantity(unit, value, surface, approx=bool(g["approx"])))
        elif g["bare"]:
            out.append(Quantity("", float(g["bare"]), surface))
    return tuple(out)


def _compatible(a: str, b: str) -> bool:
    """Same measure, or two counting classifiers (三位 ~ 三个), also as ordinals (第一堂 ~ 第一节)."""
    if a == b:
        return True
    if a.startswith("第") and b.startswith("第"):
        a, b = a[1:], b[1:]
        return a == b or (_is_count(a) and _is_count(b))
    return _is_count(a) and _is_count(b)


def _same_value(a: Quantity, b: Quantity) -> bool:
    if a.approx or b.approx:  # 一百六十多下 covers 160 to under 200
        low = min(a.value, b.value)
        return abs(a.value - b.value) < max(10.0, 0.2 * low)
    return abs(a.value - b.value) < 1e-9


def _find(q: Quantity, others: Iterable[Quantity]) -> tuple[bool, Quantity | None]:
    """(found, a conflicting quantity of a compatible measure if not found)."""
    conflict = None
    for o in others:
        if _compatible(q.measure, o.measure):
            if _same_value(q, o):
                return True, None
            conflict = conflict or o
    return False, conflict


# --------------------------------------------------------------------------------------------------
# time words

_TIME_WORDS: dict[str, tuple[str, str]] = {}


def _add_times(category: str, canonical: str, words: str) -> None:
    for w in words.split():
        _TIME_WORDS[w] = (category, canonical)


_add_times("season", "春", "春天 春季 春日 春雨 春风 春光 春景 早春 初春 暮春 春夜")
_add_times("season", "夏", "夏天 夏季 夏日 夏雨 夏夜 盛夏 初夏 炎夏")
_add_times("season", "秋", "秋天 秋季 秋日 秋雨 秋风 秋景 秋色 秋夜 深秋 初秋 金秋 秋收")
_add_times("season", "冬", "冬天 冬季 冬日 冬夜 寒冬 隆冬 初冬")
_add_times("daypart", "凌晨", "凌晨 黎明 拂晓")
_add_times("daypart", "早上", "早上 早晨 清晨 一早 大清早")
_add_times("daypart", "上午", "上午")
_add_times("daypart", "中午", "中午 正午")
_add_times("daypart", "下午", "下午 午后")
_add_times("daypart", "傍晚", "傍晚 黄昏")
_add_times("daypart", "晚上", "晚上 夜晚 夜里 夜间 晚间 深夜 半夜 午夜")
for _name, _spelled in {
    "春节": "春节 过年 除夕 大年 年三十",
    "元旦": "元旦",
    "元宵": "元宵 元宵节",
    "清明": "清明 清明节",
    "端午": "端午 端午节",
    "七夕": "七夕 七夕节 乞巧节",
    "中秋": "中秋 中秋节",
    "重阳": "重阳 重阳节",
    "国庆": "国庆 国庆节 十一黄金周 十一假期 十一长假",
    "劳动节": "劳动节 五一 五一假期 五一长假 五一劳动节",
    "儿童节": "儿童节 六一儿童节",
    "妇女节": "妇女节 三八妇女节 三八节",
    "教师节": "教师节",
    "母亲节": "母亲节",
    "父亲节": "父亲节",
    "圣诞": "圣诞 圣诞节",
    "情人节": "情人节",
    "感恩节": "感恩节",
    "冬至": "冬至",
    "腊八": "腊八 腊八节",
    "双11": "双11 双十一",
    "双12": "双12 双十二",
    "寒假": "寒假",
    "暑假": "暑假",
    "新年": "新年 新春",
}.items():
    _add_times("festival", _name, _spelled)
for _name in _words("夏 商 周 秦 汉 晋 隋 唐 宋 元 明 清"):
    _add_times("era", _name, f"{_name}朝 {_name}代")
_add_times("relative", "今天", "今天 今日")
_add_times("relative", "明天", "明天 明日")
_add_times("relative", "昨天", "昨天 昨日")
_add_times("relative", "今年", "今年")
_add_times("relative", "去年", "去年")
_add_times("relative", "明年", "明年")
_add_times("relative", "周末", "周末")
_add_times("relative", "下周", "下周 下星期")
_add_times("relative", "上周", "上周 上星期")
# a lookahead so that matches may overlap: 一下周末 holds 下周 (rejected, off the token bounds) and 周末
_TIME_RE = re.compile("(?=(" + "|".join(re.escape(w) for w in sorted(_TIME_WORDS, key=len, reverse=True)) + "))")


def _times(compact: str, bounds: frozenset[int]) -> frozenset[tuple[str, str]]:
    """Lexicon time words that start or end on a token boundary (so 说明天空 is not 明天)."""
    found = set()
    for m in _TIME_RE.finditer(compact):
        word = m.group(1)
        if m.start() in bounds or m.start() + len(word) in bounds:
            found.add(_TIME_WORDS[word])
            if word in ("夏夜", "秋夜", "冬夜", "春夜"):
                found.add(("daypart", "晚上"))
    return frozenset(found)


# --------------------------------------------------------------------------------------------------
# negation

_NEG_CHARS = "不没未无非别勿莫甭"
_NEG_WORDS = frozenset(
    _words(
        "不 没 没有 未 无 非 别 勿 莫 甭 不要 不用 不必 不需 不需要 无需 无须 无需要 不能 不可 不准 不许 不得 不该 不应 "
        "不应该 切勿 禁止 严禁 避免 不宜 请勿 并非 不是 从不 从未 毫无 决不 绝不 千万别 不会"
    )
)
# Words that start with a negation character and negate nothing (from the data: 不错, 无论, 非常;
# and the common rest). Places and organisations (无锡, 非洲) are excluded by their tag.
_NOT_NEGATION = frozenset(
    _words(
        "不错 不断 不久 不少 不仅 不但 不管 不论 不过 不如 不禁 不时 不停 不住 不已 不得不 不由得 不由自主 不约而同 "
        "不知不觉 不声不响 不同 不然 不光 不免 不妨 不愧 不朽 不屈 不凡 不觉 不安 不满 不忘 不懈 不息 不止 "
        "无论 无数 无比 无限 无穷 无私 无边 无际 无尽 无不 无非 无疑 无忧无虑 无微不至 无所不 "
        "非常 非凡 非得 非要 非遗 非物质 未来 未必 未知 未成年 未成年人 别人 别的 别处 别墅 别致 别名 别称 别具一格 "
        "别忘了 没错 没事 莫非 莫名 毫无疑问 无人机 无线 无人驾驶 无花果 无聊 无奈 无辜 无敌 无偿 无所谓 不倒翁 不夜城 "
        "不得了 不客气 不好意思"
    )
)
_BOUND_AFTER = ("超过", "超出", "多于", "少于", "低于", "高于", "大于", "小于", "足", "满", "到")
_CLAUSE_END = frozenset("，。！？；：、,.!?;:\n“”\"'‘’（）()《》")
_LIGHT = frozenset(
    _words(
        "的 了 着 过 地 得 在 把 被 给 对 要 会 能 可以 去 写 提 提到 提及 出现 用 使用 用到 包含 包括 涉及 "
        "是 有 太 很 都 也 就 再 又 还 什么 任何 一些 这 那 这些 那些 我 你 他 她 它 我们"
    )
)
_LIGHT_PREFIX = ("写", "提", "去", "用", "有", "出")


def _scope_words(tokens: list[tuple[str, str]], start: int, prefix_rest: str) -> frozenset[str]:
    """Content words after a negation cue, up to the end of the clause (at most 5 tokens)."""
    words: list[str] = [prefix_rest] if prefix_rest else []
    for word, _tag in tokens[start : start + 5]:
        if word in _CLAUSE_END or all(c in _CLAUSE_END for c in word):
            break
        words.append(word)
    out = set()
    for w in words:
        if w in _LIGHT or not w.strip():
            continue
        out.add(w)
        if len(w) > 1 and w[0] in _LIGHT_PREFIX and w[1:] not in _LIGHT:
            out.add(w[1:])  # rjieba merges unknown pairs: 写花 -> 花, 别去 -> 去
    return frozenset(out)


def _a_not_a(word: str, prev: str, nxt: str) -> bool:
    """冷不冷, 有没有, 是不是, 好不好 (one token or three): a question, not a negation."""
    for i in range(1, len(word) - 1):
        if word[i] in "不没" and word[i - 1] == word[i + 1]:
            return True
    return word in ("不", "没") and prev != "" and prev[-1:] == nxt[:1]


def _negations(tokens: list[tuple[str, str]]) -> tuple[Negation, ...]:
    out: list[Negation] = []
    for i, (word, tag) in enumerate(tokens):
        prev = tokens[i - 1][0] if i else ""
        nxt = tokens[i + 1][0] if i + 1 < len(tokens) else ""
        if _a_not_a(word, prev, nxt):
            continue
        if word in _NEG_WORDS:
            cue, rest = word, ""
        elif (
            len(word) > 1
            and word[0] in _NEG_CHARS
            and word not in _NOT_NEGATION
            and not any(word.startswith(w) for w in _NOT_NEGATION if len(w) > 2)
            and tag not in ("ns", "nt", "nz", "m")
        ):
            cue, rest = word[0], word[1:]
        else:
            continue
        if not rest and word + nxt in _NOT_NEGATION:
            continue  # 不 + 忘 split by the segmenter: still 不忘 (but 不 + 同意 is not 不同)
        following = rest or nxt
        if any(following.startswith(b) for b in _BOUND_AFTER) or (word.startswith("不少") and nxt.startswith("于")):
            continue  # 不超过, 不少于, 不到: a length bound, a constraint
        out.append(Negation(cue, _scope_words(tokens, i + 1, rest)))
    return tuple(out)


def _show(neg: Negation) -> str:
    return f"{neg.cue}({'、'.join(sorted(neg.scope))})"


def _echoed(neg: Negation, others: tuple[Negation, ...]) -> bool:
    """Another negation governs the same thing (or either scope is empty and there is a negation)."""
    for o in others:
        if not neg.scope or not o.scope:
            return True
        if neg.scope & o.scope:
            return True
        if any(a in b or b in a for a in neg.scope for b in o.scope if min(len(a), len(b)) > 1):
            return True
    return False


# --------------------------------------------------------------------------------------------------
# entities

_ENTITY_TAGS = frozenset({"nr", "nrt", "nrfg", "ns", "nt", "nz", "eng"})
# Common words the jieba dictionary tags as names, seen in writing prompts (design split + passages).
_NOT_ENTITY = frozenset(
    _words(
        "赞美 祝福 祝福语 贺词 贺卡 申请书 友谊 科普 小学生 初中生 中学生 高中生 大学生 小兔子 诚信 中考 高考 "
        "敬老 太贵 别提 英文 英语 中文 汉语 日语 韩语 法语 德语 文言文 白话文 普通话 粤语 小红书 云南旅游 成都旅游 "
        "markdown md ppt word excel html emoji"
    )
)
_TITLE_RE = re.compile(r"《([^《》]{1,30})》")
_LATIN_RE = re.compile(r"[A-Za-z][A-Za-z0-9+#.\-]*")


def _entities(compact: str, tokens: list[tuple[str, str]], tagger: Tagger) -> frozenset[str]:
    found = {m.group(1) for m in _TITLE_RE.finditer(compact)}
    for word, tag in tokens:
        w = word.strip()
        if tag in _ENTITY_TAGS and len(w) > 1 and w.lower() not in _NOT_ENTITY and not w.isdigit():
            found.add(w.lower() if _LATIN_RE.fullmatch(w) else w)
        elif tag.startswith("n") and len(w) > 2:
            # the dictionary has compounds that start with a place as common nouns (重庆火锅/n,
            # 北京烤鸭/n): the place is still named
            for sub in tagger.subwords(w):
                if 1 < len(sub) < len(w) and w.startswith(sub) and tagger.tag(sub) == [(sub, "ns")]:
                    found.add(sub)
    return frozenset(found)


# --------------------------------------------------------------------------------------------------
# constraints

_AUDIENCE = (
    "小学生|初中生|中学生|高中生|大学生|学生|小朋友|孩子们|孩子|小孩|儿童|幼儿|宝宝|老年人|老人家|老人|长辈|"
    "外国人|初学者|新手|小白|家长|领导|专家|外行|普通人|零基础"
)
_LANGS = {
    "英文": "en",
    "英语": "en",
    "日语": "ja",
    "日文": "ja",
    "韩语": "ko",
    "法语": "fr",
    "德语": "de",
    "文言文": "classical",
    "文言": "classical",
    "古文": "classical",
    "白话文": "vernacular",
    "白话": "vernacular",
    "现代汉语": "vernacular",
    "粤语": "yue",
    "繁体": "traditional",
    "繁体字": "traditional",
    "中文": "zh",
}
_LANG_ALT = "|".join(sorted(_LANGS, key=len, reverse=True))
_TONES = (
    "幽默|诙谐|风趣|搞笑|正式|严肃|庄重|委婉|诚恳|活泼|俏皮|温柔|温馨|煽情|口语化|书面|文艺|简洁|通俗易懂|通俗|"
    "专业|学术|轻松|可爱|霸气|接地气|高级感|犀利|热情|深情|激昂|励志|简短|精简|详细|具体|生动"
)
_GENRES: dict[str, str] = {}
for _genre, _spelled in {
    "poem": "诗 诗歌 现代诗 古诗 绝句 律诗 五言诗 七言诗 儿歌 童谣 藏头诗 打油诗 词 歌词",
    "prose": "散文",
    "story": "故事 童话 小说 寓言",
    "speech": "演讲稿 致辞 发言稿 讲话稿 主持词 串词 开场白",
    "thanks": "感谢信",
    "apology": "道歉信",
    "application": "申请书",
    "job": "求职信",
    "resign": "辞职信",
    "leave": "请假条",
    "cancel_leave": "销假条",
    "diary": "日记 周记",
    "travelogue": "游记",
    "review": "读后感 观后感 书评 影评",
    "notice": "通知 公告 启事",
    "proposal": "倡议书",
    "plan": "计划 方案 攻略 行程",
    "summary": "总结 概括 摘要",
    "copy": "文案 广告语 宣传语 标语 口号",
    "news": "新闻报道 新闻稿 通讯",
    "argument": "议论文",
    "exposition": "说明文",
    "narrative": "记叙文",
    "couplet": "对联 春联",
}.items():
    for _w in _words(_spelled):
        _GENRES[_w] = _genre
_GENRE_RE = re.compile("|".join(sorted(_GENRES, key=len, reverse=True)))
_CONSTRAINT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "audience",
        re.compile(
            rf"(?:给|面向|适合|针对|讲给|写给|说给)(?:\d+岁的?|[一二三四五六七八九十]+岁的?)?(?P<v>{_AUDIENCE})"
        ),
    ),
    ("audience", re.compile(rf"(?P<v>{_AUDIENCE})(?:都|也)?(?:能|可以|容易)?(?:听懂|看懂|读懂|理解|看得懂|听得懂)")),
    ("audience", re.compile(rf"(?P<v>{_AUDIENCE})(?:适合|合适|适用)")),
    ("style", re.compile(rf"(?P<v>{_TONES})(?:一点|一些|些|点)")),
    ("style", re.compile(rf"(?:语气|口吻|语调|语言|文风|风格|措辞)(?:要|需要|须|必须|应|尽量|更)?(?P<v>{_TONES})")),
    ("style", re.compile(rf"(?:用|以|要|尽量|更|写得)(?P<v>{_TONES})(?:的|地)")),
    ("style", re.compile(rf"(?P<v>{_TONES})的(?:语气|口吻|语调|语言|文风|风格|措辞)")),
    ("style", re.compile(r"(?P<v>[\u4e00-\u9fffA-Za-z]{1,6})(?:风格|体|风)(?:的|来|写)")),
    ("style", re.compile(r"(?:模仿|仿照|仿写)(?P<v>[\u4e00-\u9fff]{1,5}?)(?:的|风格|文风|口吻)")),
    (
        "format",
        re.compile(
            r"(?P<v>分段|分点|表格|列表|要点|提纲|大纲|markdown|md格式|押韵|对仗|排比|拟人|藏头|问答形式|对话形式|书信格式)"
        ),
    ),
    ("format", re.compile(r"第(?:一|二|三)人称")),
    ("format", re.compile(r"(?:分|写成|分成)(?:\d+|[两三四五六七八九十]+)(?:段|部分|点|节)")),
    ("format", re.compile(r"(?P<v>结尾|开头|结局|标题|每句|每段|每一段|每一句)话?(?:要|需要|必须|用|以|都|加|写)")),
    ("format", re.compile(r"(?:用|以)[\u4e00-\u9fff]{1,6}(?P<v>结尾|开头|收尾)")),
    ("include", re.compile(r"(?:要|需要|必须|务必|记得)?(?:包含|包括|提到|加入|融入|穿插|带上|用上|出现)(?!了)")),
    ("length", re.compile(r"(?P<v>(?:不|不要|不能|不得|别|勿)超过|不多于|以内|之内|以下|字内|页内|最多|至多)")),
    ("length", re.compile(r"(?P<v>不少于|不低于|至少|起码|以上|多于|(?<![不要能得别勿])超过)")),
    ("length", re.compile(r"(?P<v>左右|上下|大约|大概)(?=$|[，。,.！!？?；;的])")),
)
_LENGTH_KIND = {
    "不超过": "max",
    "不要超过": "max",
    "不能超过": "max",
    "别超过": "max",
    "勿超过": "max",
    "超过": "min",
    "不多于": "max",
    "不得超过": "max",
    "以内": "max",
    "之内": "max",
    "以下": "max",
    "字内": "max",
    "页内": "max",
    "最多": "max",
    "至多": "max",
    "不少于": "min",
    "不低于": "min",
    "至少": "min",
    "起码": "min",
    "以上": "min",
    "多于": "min",
}


def _constraints(compact: str) -> frozenset[str]:
    found: set[str] = set()
    lowered = compact.lower()
    for m in re.finditer(rf"(?:用|以|使用|翻译成|译成|改成|改写成|写成|翻成)(?P<v>{_LANG_ALT})", lowered):
        found.add("lang:" + _LANGS[m.group("v")])
    for m in re.finditer(
        rf"(?P<v>{_LANG_ALT})(?:版|写|的(?:作文|短文|自我介绍|信|邮件|文章|诗|介绍|文案|演讲稿|歌词|版本|翻译)|作文|短文)",
        lowered,
    ):
        found.add("lang:" + _LANGS[m.group("v")])
    for kind, pattern in _CONSTRAINT_PATTERNS:
        for m in pattern.finditer(lowered):
            value = m.groupdict().get("v") or m.group(0)
            if kind == "length":
                value = _LENGTH_KIND.get(value, "approx")
            elif kind == "format":
                value = re.sub(r"\d+|[两三四五六七八九十]+", "N", value)
            elif kind == "include":
                value = ""
            found.add(f"{kind}:{value}")
    return frozenset(found)


def _genres(compact: str) -> frozenset[str]:
    return frozenset(_GENRES[m.group(0)] for m in _GENRE_RE.finditer(compact))


# --------------------------------------------------------------------------------------------------
# the guard


def _compact(text: str) -> str:
    return "".join(unicodedata.normalize("NFC", text).split()).translate(_FULLWIDTH)


def _written_length(compact: str) -> int:
    return sum(1 for c in compact if c.isalnum())


class HitGuard:
    """Compares a prompt with a cache candidate and says whether serving it answers the prompt.

    Thread-safe: analyses are immutable, the cache is guarded by a lock, and the tagger is read-only
    after its one-time load. Deterministic: no randomness, no clock, no model.
    """

    def __init__(self, cache_size: int = 4096, tagger: Tagger | None = None) -> None:
        if cache_size < 0:
            raise ValueError("cache_size must be >= 0")
        self.cache_size = cache_size
        self.tagger: Tagger = tagger if tagger is not None else RJiebaTagger()
        self._cache: OrderedDict[str, Analysis] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self.analysed = 0  # texts actually segmented (cache misses): what the cache saves

    # -- analysis ---------------------------------------------------------------------------------

    def warm(self) -> None:
        """Load the tagger now (rjieba's dictionary, ~0.2 s), so that no request waits for it: the first
        check otherwise pays it, and with it every request searched in the same batch. Blocking."""
        self.tagger.tag("预热")

    def analyse(self, text: str) -> Analysis:
        """The features of ``text``, from the LRU cache when seen before (keyed by normalised text)."""
        key = normalise_text(text)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self._hits += 1
                return cached
        analysis = self._analyse(key)  # outside the lock: two threads may both segment a new text once
        with self._lock:
            self.analysed += 1
            if self.cache_size:
                self._cache[key] = analysis
                self._cache.move_to_end(key)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return analysis

    def cache_info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(self._hits, self.analysed, len(self._cache), self.cache_size)

    def cache_clear(self) -> None:
        with self._lock:
            self._cache.clear()
            self._hits = 0
            self.analysed = 0

    def _analyse(self, text: str) -> Analysis:
        compact = _compact(text)
        tokens = [(w, t) for w, t in self.tagger.tag(compact) if w.strip()]
        bounds, pos = {0}, 0
        for word, _tag in tokens:
            pos += len(word)
            bounds.add(pos)
        entities = _entities(compact, tokens, self.tagger)
        subwords = tuple(
            (e, tuple(s for s in self.tagger.subwords(e) if 1 < len(s) < len(e)))
            for e in sorted(entities)
            if len(e) > 3
        )
        return Analysis(
            text=text,
            compact=compact,
            loose=compact.replace("的", "").replace("之", ""),
            length=_written_length(compact),
            quantities=_quantities(compact),
            times=_times(compact, frozenset(bounds)),
            negations=_negations(tokens),
            entities=entities,
            places=frozenset(w for w, t in tokens if t == "ns" and w in entities),
            subwords=subwords,
            constraints=_constraints(compact) | {f"genre:{g}" for g in _genres(compact)},
            nouns=frozenset(w for w, t in tokens if t in _NOUN_TAGS and "写" not in w),
        )

    # -- checks -----------------------------------------------------------------------------------

    def check(self, prompt: str, candidate: str, tier: Tier) -> Verdict:
        """Whether ``candidate`` (a stored prompt, or a curated passage) answers ``prompt``."""
        _check_tier(tier)
        if normalise_text(prompt) == normalise_text(candidate):
            return PASS  # without segmenting either: the common exact hit costs nothing
        return self.check_analysed(self.analyse(prompt), self.analyse(candidate), tier)

    def check_analysed(self, prompt: Analysis, candidate: Analysis, tier: Tier) -> Verdict:
        """``check`` over precomputed analyses (a caller can analyse stored texts ahead of time)."""
        _check_tier(tier)
        if prompt.text == candidate.text:
            return PASS
        if tier == "generated":
            return _check_generated(prompt, candidate)
        return _check_curated(prompt, candidate)


def _check_tier(tier: str) -> None:
    if tier not in ("curated", "generated"):
        raise ValueError(f"unknown tier {tier!r}: expected 'curated' or 'generated'")


def _check_generated(a: Analysis, b: Analysis) -> Verdict:
    # 1. numbers and time words that conflict
    for x, y in ((a, b), (b, a)):
        for q in x.quantities:
            found, conflict = _find(q, y.quantities)
            if not found and conflict is not None:
                return Verdict(False, NUMBER, f"{q.surface} vs {conflict.surface}")
    for category in {c for c, _ in a.times} & {c for c, _ in b.times}:
        mine = {v for c, v in a.times if c == category}
        theirs = {v for c, v in b.times if c == category}
        if mine != theirs:
            return Verdict(False, NUMBER, f"{'/'.join(sorted(mine))} vs {'/'.join(sorted(theirs))}")
    # 2. negation
    for x, y in ((a, b), (b, a)):
        for neg in x.negations:
            if not _echoed(neg, y.negations):
                return Verdict(False, NEGATION, f"{_show(neg)} on one side only")
    # 3. entities
    for x, y in ((a, b), (b, a)):
        missing = _missing_entity(x, y, locating=True)
        if missing:
            return Verdict(False, ENTITY, f"{missing} missing")
    # 4. constraints; genres only when both name one
    left = {c for c in a.constraints if not c.startswith("genre:")}
    right = {c for c in b.constraints if not c.startswith("genre:")}
    if left != right:
        return Verdict(False, CONSTRAINT, f"{sorted(left - right)} vs {sorted(right - left)}")
    genres_a = {c for c in a.constraints if c.startswith("genre:")}
    genres_b = {c for c in b.constraints if c.startswith("genre:")}
    if genres_a and genres_b and not genres_a & genres_b:
        return Verdict(False, CONSTRAINT, f"{sorted(genres_a)} vs {sorted(genres_b)}")
    # 5. one topic word swapped for another (狗/猫, 入党/入团, 日记/作文): each side has a noun with a
    # character the other side lacks altogether (a reordering such as 保护环境/环境保护 has none)
    swapped_a, swapped_b = _novel_nouns(a, b), _novel_nouns(b, a)
    if swapped_a and swapped_b:
        return Verdict(False, TOPIC, f"{swapped_a} vs {swapped_b}")
    # 6. numbers and time words on one side only
    for x, y in ((a, b), (b, a)):
        for q in x.quantities:
            if not _find(q, y.quantities)[0]:
                return Verdict(False, NUMBER, f"{q.surface} on one side only")
        extra = x.times - y.times
        if extra:
            return Verdict(False, NUMBER, f"{'/'.join(sorted(v for _, v in extra))} on one side only")
    return PASS


_NOUN_TAGS = frozenset({"n", "nr", "ns", "nt", "nz", "ng"})


def _novel_nouns(x: Analysis, y: Analysis) -> str | None:
    """A noun of ``x`` holding a character that appears nowhere in ``y`` (None: there is none)."""
    for noun in sorted(x.nouns):
        if any(ch not in y.compact for ch in noun):
            return noun
    return None


def _check_curated(prompt: Analysis, passage: Analysis) -> Verdict:
    for q in prompt.quantities:
        if q.measure == "字":
            verdict = _length_fits(q, prompt, passage)
            if verdict is not None:
                return verdict
            continue
        found, conflict = _find(q, passage.quantities)
        if found:
            continue
        if q.measure.startswith("第") and q.value == 1 and conflict is None:
            continue  # 开学第一天: the passage tells the first day without saying 第一
        other = f" vs {conflict.surface}" if conflict else " not in passage"
        return Verdict(False, NUMBER, f"{q.surface}{other}")
    for category in {c for c, _ in prompt.times} & {c for c, _ in passage.times}:
        asked = {v for c, v in prompt.times if c == category}
        given = {v for c, v in passage.times if c == category}
        if not asked & given:
            return Verdict(False, NUMBER, f"{'/'.join(sorted(asked))} vs {'/'.join(sorted(given))}")
    for neg in prompt.negations:
        if not _echoed(neg, passage.negations):
            return Verdict(False, NEGATION, f"{_show(neg)} not in passage")
    missing = _missing_entity(prompt, passage, locating=False)
    if missing:
        return Verdict(False, ENTITY, f"{missing} not in passage")
    return PASS


def _length_fits(q: Quantity, prompt: Analysis, passage: Analysis) -> Verdict | None:
    """A requested length (800字, 不超过300字) against what the passage actually has."""
    kinds = {c.split(":", 1)[1] for c in prompt.constraints if c.startswith("length:")}
    low, high = 0.6 * q.value, 1.4 * q.value
    if "max" in kinds:
        low, high = 0.0, 1.1 * q.value
    elif "min" in kinds:
        low, high = 0.9 * q.value, float("inf")
    if low <= passage.length <= high:
        return None
    return Verdict(False, NUMBER, f"{q.surface} asked, passage has {passage.length}")


def _locates_present(entity: str, x: Analysis, y: Analysis) -> bool:
    """Place ``entity`` directly precedes (X的Y or XY) another place of ``x`` that ``y`` mentions.

    Only between prompts: a passage is long enough to mention some 云海 after a prompt's 黄山.
    """
    if entity not in x.places:
        return False
    for other in x.places:
        if other == entity or other not in y.loose:
            continue
        if entity + other in x.compact or entity + "的" + other in x.compact:
            return True
    return False


def _missing_entity(x: Analysis, y: Analysis, locating: bool) -> str | None:
    """The first entity of ``x`` that ``y`` does not mention (see the module docstring)."""
    subwords = dict(x.subwords)
    for entity in sorted(x.entities):
        needle = entity.replace("的", "").replace("之", "")
        haystack = y.loose.lower() if entity.isascii() else y.loose
        if needle in haystack:
            continue
        parts = subwords.get(entity, ())
        if len(parts) >= 2 and all(p in y.loose for p in parts):
            continue
        if any(len(e) > 1 and entity.endswith(e) for e in y.entities):
            continue  # 长江三峡 ~ 三峡: the other side names the head
        if locating and _locates_present(entity, x, y):
            continue  # 敦煌莫高窟 ~ 莫高窟: a place that only locates a named place the other side has
        return entity
    return None
