"""Entities: the named things a request is about, and the rules that want them on the other side.

An entity is a token tagged as a person, place, organisation or other proper noun (nr, nrt, nrfg, ns,
nt, nz), a Latin word (iPhone, markdown; lower-cased), a title in 书名号 《…》, or a place at the start
of a compound the dictionary lists as a common noun (重庆火锅/n -> 重庆). The dictionary tags some
common words as names (赞美/ns, 祝福/nr, 小学生/nr): the lexicon's ``not_entity`` removes the ones seen
in writing prompts; others slip through both ways (a name tagged as a common word, 小米/n, 拙政园/n,
is not read; a common word tagged as a name and not listed is required).

"Mentioned" is textual and forgiving: the name, or each of its dictionary sub-words (苏州园林 -> 苏州
+ 园林), or a name on the other side that is its head (长江三峡 ~ 三峡), with 的/之 ignored (桂林山水 ~
桂林的山水); between prompts, a place that only locates another place the other side names is not
required (敦煌莫高窟 ~ 莫高窟).

Rules (reason ``entity``):

* ``entity`` (generated): an entity of either side that the other does not mention (厦门 vs 福州,
  李白 vs 杜甫, 《红楼梦》 vs 《水浒传》; also 兵马俑 vs 西安的兵马俑, and 京城 for 北京).
* ``passage-entity`` (curated): an entity of the prompt that the passage does not mention.
"""

from __future__ import annotations

import re

from writing.core.guard.analysis import Analysis
from writing.core.guard.lexicon import Lazy, read
from writing.core.guard.ports import Tagger
from writing.core.guard.rule import both_ways, rule
from writing.core.guard.verdict import ENTITY

ENTITY_TAGS = frozenset({"nr", "nrt", "nrfg", "ns", "nt", "nz", "eng"})
_TITLE_RE = re.compile(r"《([^《》]{1,30})》")
_LATIN_RE = re.compile(r"[A-Za-z][A-Za-z0-9+#.\-]*")
_NOT_ENTITY = Lazy(lambda: frozenset(read("entities")["not_entity"]))


def entities(compact: str, tokens: list[tuple[str, str]], tagger: Tagger) -> frozenset[str]:
    """The entities of a tagged text (see the module docstring)."""
    not_entity = _NOT_ENTITY()
    found = {m.group(1) for m in _TITLE_RE.finditer(compact)}
    for word, tag in tokens:
        w = word.strip()
        if tag in ENTITY_TAGS and len(w) > 1 and w.lower() not in not_entity and not w.isdigit():
            found.add(w.lower() if _LATIN_RE.fullmatch(w) else w)
        elif tag.startswith("n") and len(w) > 2:
            # the dictionary has compounds that start with a place as common nouns (重庆火锅/n,
            # 北京烤鸭/n): the place is still named
            for sub in tagger.subwords(w):
                if 1 < len(sub) < len(w) and w.startswith(sub) and tagger.tag(sub) == [(sub, "ns")]:
                    found.add(sub)
    return frozenset(found)


def subwords(found: frozenset[str], tagger: Tagger) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each entity of over three characters with its dictionary sub-words (苏州园林 -> 苏州, 园林)."""
    return tuple((e, tuple(s for s in tagger.subwords(e) if 1 < len(s) < len(e))) for e in sorted(found) if len(e) > 3)


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


def missing_entity(x: Analysis, y: Analysis, locating: bool) -> str | None:
    """The first entity of ``x`` (in sorted order) that ``y`` does not mention."""
    parts_of = dict(x.subwords)
    for entity in sorted(x.entities):
        needle = entity.replace("的", "").replace("之", "")
        haystack = y.loose.lower() if entity.isascii() else y.loose
        if needle in haystack:
            continue
        parts = parts_of.get(entity, ())
        if len(parts) >= 2 and all(p in y.loose for p in parts):
            continue
        if any(len(e) > 1 and entity.endswith(e) for e in y.entities):
            continue  # 长江三峡 ~ 三峡: the other side names the head
        if locating and _locates_present(entity, x, y):
            continue  # 敦煌莫高窟 ~ 莫高窟: a place that only locates a named place the other side has
        return entity
    return None


@rule("entity", ENTITY, tiers=("generated",))
def entity(a: Analysis, b: Analysis) -> str | None:
    """An entity of either side that the other side does not mention (厦门 vs 福州)."""
    for x, y in both_ways(a, b):
        missing = missing_entity(x, y, locating=True)
        if missing:
            return f"{missing} missing"
    return None


@rule("passage-entity", ENTITY, tiers=("curated",))
def passage_entity(prompt: Analysis, passage: Analysis) -> str | None:
    """An entity of the prompt that the passage does not mention (福州 vs a passage on 厦门)."""
    missing = missing_entity(prompt, passage, locating=False)
    return f"{missing} not in passage" if missing else None
