"""The topic: the nouns of a request, and the rule that catches one topic word swapped for another.

Rule (reason ``topic``, generated tier only):

* ``topic``: each side has a noun (tagged n, nr, ns, nt, nz or ng) holding a character that appears
  nowhere in the other side. So it rejects 狗/猫 (写一篇关于狗的作文 vs 写一篇关于猫的作文), 妈妈/爸爸,
  节约用水/节约用电, 入党/入团 申请书 and 作文/日记. It passes a reordering (保护环境 vs 环境保护: no
  character is new), a noun on one side only, and a swap whose new characters all occur elsewhere on
  the other side. A noun with 写 in it (写作文/n, 写日记/n: the request's verb merged into the token)
  is left out.
"""

from __future__ import annotations

from writing.core.guard.analysis import Analysis
from writing.core.guard.rule import rule
from writing.core.guard.verdict import TOPIC

NOUN_TAGS = frozenset({"n", "nr", "ns", "nt", "nz", "ng"})


def nouns(tokens: list[tuple[str, str]]) -> frozenset[str]:
    """The nouns of a tagged text, less the words with 写 in them (写作文/n: the request, merged)."""
    return frozenset(w for w, t in tokens if t in NOUN_TAGS and "写" not in w)


def _novel_noun(x: Analysis, y: Analysis) -> str | None:
    """A noun of ``x`` (the first in sorted order) holding a character that appears nowhere in ``y``."""
    for noun in sorted(x.nouns):
        if any(ch not in y.compact for ch in noun):
            return noun
    return None


@rule("topic", TOPIC, tiers=("generated",))
def topic(a: Analysis, b: Analysis) -> str | None:
    """Each side has a noun with a character the other side lacks altogether (狗 vs 猫)."""
    swapped_a, swapped_b = _novel_noun(a, b), _novel_noun(b, a)
    if swapped_a and swapped_b:
        return f"{swapped_a} vs {swapped_b}"
    return None
