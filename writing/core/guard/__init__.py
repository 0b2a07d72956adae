"""A model-free second check on a cache hit: does the stored text answer *this* prompt?

Embedding similarity scores "写一篇2019年国庆阅兵的观后感" and "写一篇2009年国庆阅兵的观后感" as
near-identical, and likewise 厦门/福州, 李白/杜甫, 狗/猫, or a prompt with and without "不要超过一页".
After the similarity threshold has passed and before a hit is served, ``HitGuard.check`` compares the
request with the candidate and rejects when they ask for different things. Pure Python over a Chinese
segmenter with part-of-speech tags (the ``ports.Tagger`` it is given; the service's is rjieba, in
``writing.adapters.segmenter``) and the word lists in ``words/``, both loaded on first use or by
``HitGuard.warm``; no model, no network. Importing this package loads neither.

One text is analysed once (``analysis.Analysis``, bounded LRU): its numbers (``numbers``), time
words (``times``), negations (``negation``), entities (``entities``), constraints on the answer's
form (``constraints``) and nouns (``topic``). Each feature module holds the rules that compare it;
``tiers.RULES`` orders them per tier, and the first rule that rejects decides (reason and detail):

* ``generated`` (candidate = a stored prompt; symmetric): ``number-conflict`` (2019年/2009年),
  ``time-conflict`` (春天/秋天), ``negation`` (押韵/不押韵), ``entity`` (厦门/福州), ``constraint``
  (不要超过一页 on one side), ``genre`` (感谢信/道歉信), ``topic`` (狗/猫, 入党/入团: a noun on each side
  with a character the other side lacks), ``number-one-side`` (a number or time word on one side only).
* ``curated`` (candidate = a passage; prompt -> passage): ``passage-number`` (a number of the prompt
  not in the passage; a length N字 against the passage's length), ``passage-time`` (哈尔滨夏天 vs a
  winter passage), ``passage-negation`` (不要西湖), ``passage-entity`` (福州 vs a passage on 厦门).

An exact match (equal after whitespace normalisation) always passes, without segmenting.

What it misses, measured by bench/guard.py on data/guard_pairs.jsonl and data/guard_curated_pairs.jsonl:
a swapped word whose characters all occur on the other side; tones outside its lexicon (肉麻一点);
names the dictionary tags as common words (小米/n, 大理/n, 拙政园/n), and common words it tags as names
that are not on the stoplist (both ways: a miss, or a false rejection); genre, format and topic against
a curated passage (a poem asked, a prose passage found); a season asked of a passage that names none
(秋天的森林 vs a forest); paraphrased numbers (一打 vs 十二个) and arithmetic (三天两夜 vs 3天); negation
scope beyond a clause, and double negation. Conservative on purpose, so a reworded prompt is rejected
when it drops or adds a name (介绍一下兵马俑 vs 请介绍一下西安的兵马俑), spells one differently (京城 for
北京), states an implied target (翻译成白话文 vs 翻译一下), swaps a noun for a synonym with other
characters, or when a passage lists a count without the word (七种颜色 vs 红、橙、黄…).
"""

from writing.core.guard.analysis import (
    Analysis,
    Audience,
    Constraint,
    Format,
    Genre,
    Include,
    Language,
    Length,
    Negation,
    Quantity,
    Style,
)
from writing.core.guard.hit_guard import CacheInfo, HitGuard, analyse_text
from writing.core.guard.numbers import chinese_number
from writing.core.guard.ports import Tagger
from writing.core.guard.rule import Rule
from writing.core.guard.tiers import RULES
from writing.core.guard.verdict import (
    CONSTRAINT,
    ENTITY,
    NEGATION,
    NUMBER,
    PASS,
    REASONS,
    TIERS,
    TOPIC,
    Tier,
    Verdict,
)

__all__ = [
    "CONSTRAINT",
    "ENTITY",
    "NEGATION",
    "NUMBER",
    "PASS",
    "REASONS",
    "RULES",
    "TIERS",
    "TOPIC",
    "Analysis",
    "Audience",
    "CacheInfo",
    "Constraint",
    "Format",
    "Genre",
    "HitGuard",
    "Include",
    "Language",
    "Length",
    "Negation",
    "Quantity",
    "Rule",
    "Style",
    "Tagger",
    "Tier",
    "Verdict",
    "analyse_text",
    "chinese_number",
]
