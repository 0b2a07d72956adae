"""Negations: a cue with its scope, and the rules that want a negation echoed on the other side.

A cue is a negating word (不/没/没有/未/无/非/别/不要/不用/无需/禁止/避免/切勿 ...), or a token that starts
with a negating character (不/没/未/无/非/别/勿/莫/甭) and is neither a lexicalised word (不错, 无论,
非常, 不断, 别墅: the lexicon's ``not_negation``) nor a name or numeral (无锡/ns, 非洲). Its scope is the
content words that follow, up to the clause end (at most five tokens). Not negations: A-not-A
questions (冷不冷, 有没有) and bounds (不超过, 不少于, 不到: lengths, read as constraints).

A negation is echoed by another one whose scope shares a content word (or a word inside one: 熬夜 in
熬夜了), and by any negation when either scope is empty: 不要熬夜 == 别熬夜, but 押韵/不押韵 differ.

Rules (reason ``negation``):

* ``negation`` (generated): a negation on either side not echoed on the other.
* ``passage-negation`` (curated): a negation of the prompt not echoed in the passage (the passage was
  not written under that restriction unless it says so: 杭州有什么好玩的？不要西湖).

Scope beyond a clause and double negation are not read.
"""

from __future__ import annotations

from dataclasses import dataclass

from writing.core.guard.analysis import Analysis, Negation
from writing.core.guard.lexicon import Lazy, read
from writing.core.guard.rule import both_ways, rule
from writing.core.guard.verdict import NEGATION


@dataclass(frozen=True)
class _Lexicon:
    chars: str
    cues: frozenset[str]
    not_negation: frozenset[str]
    long_not_negation: tuple[str, ...]  # the ones over two characters: a token starting with one is none
    bound_after: tuple[str, ...]
    clause_end: frozenset[str]
    light: frozenset[str]
    light_prefix: tuple[str, ...]


def _build() -> _Lexicon:
    data = read("negation")
    not_negation = frozenset(data["not_negation"])
    return _Lexicon(
        chars=data["chars"],
        cues=frozenset(data["cues"]),
        not_negation=not_negation,
        long_not_negation=tuple(w for w in data["not_negation"] if len(w) > 2),
        bound_after=tuple(data["bound_after"]),
        clause_end=frozenset(data["clause_end"]),
        light=frozenset(data["light"]),
        light_prefix=tuple(data["light_prefix"]),
    )


_LEXICON = Lazy(_build)


def _scope_words(lex: _Lexicon, tokens: list[tuple[str, str]], start: int, prefix_rest: str) -> frozenset[str]:
    """Content words after a negation cue, up to the end of the clause (at most 5 tokens)."""
    words: list[str] = [prefix_rest] if prefix_rest else []
    for word, _tag in tokens[start : start + 5]:
        if word in lex.clause_end or all(c in lex.clause_end for c in word):
            break
        words.append(word)
    out = set()
    for w in words:
        if w in lex.light or not w.strip():
            continue
        out.add(w)
        if len(w) > 1 and w[0] in lex.light_prefix and w[1:] not in lex.light:
            out.add(w[1:])  # rjieba merges unknown pairs: 写花 -> 花, 别去 -> 去
    return frozenset(out)


def _a_not_a(word: str, prev: str, nxt: str) -> bool:
    """冷不冷, 有没有, 是不是, 好不好 (one token or three): a question, not a negation."""
    for i in range(1, len(word) - 1):
        if word[i] in "不没" and word[i - 1] == word[i + 1]:
            return True
    return word in ("不", "没") and prev != "" and prev[-1:] == nxt[:1]


def negations(tokens: list[tuple[str, str]]) -> tuple[Negation, ...]:
    """The negations of a tagged text, in order (see the module docstring)."""
    lex = _LEXICON()
    out: list[Negation] = []
    for i, (word, tag) in enumerate(tokens):
        prev = tokens[i - 1][0] if i else ""
        nxt = tokens[i + 1][0] if i + 1 < len(tokens) else ""
        if _a_not_a(word, prev, nxt):
            continue
        if word in lex.cues:
            cue, rest = word, ""
        elif (
            len(word) > 1
            and word[0] in lex.chars
            and word not in lex.not_negation
            and not any(word.startswith(w) for w in lex.long_not_negation)
            and tag not in ("ns", "nt", "nz", "m")
        ):
            cue, rest = word[0], word[1:]
        else:
            continue
        if not rest and word + nxt in lex.not_negation:
            continue  # 不 + 忘 split by the segmenter: still 不忘 (but 不 + 同意 is not 不同)
        following = rest or nxt
        if any(following.startswith(b) for b in lex.bound_after) or (word.startswith("不少") and nxt.startswith("于")):
            continue  # 不超过, 不少于, 不到: a length bound, a constraint
        out.append(Negation(cue, _scope_words(lex, tokens, i + 1, rest)))
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


@rule("negation", NEGATION, tiers=("generated",))
def negation(a: Analysis, b: Analysis) -> str | None:
    """A negation on one side that the other side does not echo (押韵 vs 不押韵)."""
    for x, y in both_ways(a, b):
        for neg in x.negations:
            if not _echoed(neg, y.negations):
                return f"{_show(neg)} on one side only"
    return None


@rule("passage-negation", NEGATION, tiers=("curated",))
def passage_negation(prompt: Analysis, passage: Analysis) -> str | None:
    """A negation of the prompt that the passage does not echo (不要西湖 vs a passage on 西湖)."""
    for neg in prompt.negations:
        if not _echoed(neg, passage.negations):
            return f"{_show(neg)} not in passage"
    return None
