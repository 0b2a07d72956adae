"""``HitGuard``: analyses texts once (bounded LRU) and runs a tier's rules over a prompt and a candidate."""

from __future__ import annotations

import threading
import unicodedata
from collections import OrderedDict
from typing import NamedTuple

from writing.core.guard import constraints, entities, negation, numbers, times, topic
from writing.core.guard.analysis import Analysis
from writing.core.guard.lexicon import load_all
from writing.core.guard.ports import Tagger
from writing.core.guard.rule import Rule
from writing.core.guard.tiers import RULES
from writing.core.guard.verdict import PASS, Tier, Verdict, check_tier
from writing.text import normalise_text

_FULLWIDTH = str.maketrans("０１２３４５６７８９．％", "0123456789.%")


class CacheInfo(NamedTuple):
    """Like ``functools.lru_cache``'s: misses are texts actually segmented."""

    hits: int
    misses: int
    size: int
    maxsize: int


def analyse_text(text: str, tagger: Tagger) -> Analysis:
    """The features of ``text`` (already normalised), with no cache."""
    compact = "".join(unicodedata.normalize("NFC", text).split()).translate(_FULLWIDTH)
    tokens = [(w, t) for w, t in tagger.tag(compact) if w.strip()]
    bounds, pos = {0}, 0
    for word, _tag in tokens:
        pos += len(word)
        bounds.add(pos)
    found = entities.entities(compact, tokens, tagger)
    return Analysis(
        text=text,
        compact=compact,
        loose=compact.replace("的", "").replace("之", ""),
        length=sum(1 for c in compact if c.isalnum()),
        quantities=numbers.quantities(compact),
        times=times.times(compact, frozenset(bounds)),
        negations=negation.negations(tokens),
        entities=found,
        places=frozenset(w for w, t in tokens if t == "ns" and w in found),
        subwords=entities.subwords(found, tagger),
        constraints=constraints.constraints(compact),
        nouns=topic.nouns(tokens),
    )


class HitGuard:
    """Compares a prompt with a cache candidate and says whether serving it answers the prompt.

    ``tagger`` is the segmenter (``writing.core.guard.ports.Tagger``); the service injects rjieba's
    (``writing.adapters.segmenter.RJiebaTagger``). ``rules`` replaces a tier's rules (``tiers.RULES``).

    Thread-safe: analyses are immutable, the cache is guarded by a lock, and the tagger and the word
    lists are read-only after their one-time load. Deterministic: no randomness, no clock, no model.
    """

    def __init__(
        self, tagger: Tagger, *, cache_size: int = 4096, rules: dict[Tier, tuple[Rule, ...]] | None = None
    ) -> None:
        if cache_size < 0:
            raise ValueError("cache_size must be >= 0")
        self.tagger = tagger
        self.cache_size = cache_size
        self.rules: dict[Tier, tuple[Rule, ...]] = {**RULES, **(rules or {})}
        for tier, tier_rules in self.rules.items():
            check_tier(tier)
            wrong = [r.name for r in tier_rules if tier not in r.tiers]
            if wrong:
                raise ValueError(f"rules {wrong} are not written for the {tier} tier")
        self._cache: OrderedDict[str, Analysis] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self.analysed = 0  # texts actually segmented (cache misses): what the cache saves

    # -- analysis ---------------------------------------------------------------------------------

    def warm(self) -> None:
        """Load the tagger (rjieba's dictionary, ~0.2 s) and the word lists now, so that no request
        waits for them: the first check otherwise pays it, and with it every request searched in the
        same batch. Blocking; caches no analysis."""
        self.tagger.tag("预热")
        load_all()

    def analyse(self, text: str) -> Analysis:
        """The features of ``text``, from the LRU cache when seen before (keyed by normalised text)."""
        key = normalise_text(text)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self._hits += 1
                return cached
        analysis = analyse_text(key, self.tagger)  # outside the lock: two threads may both segment a text
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

    # -- checks -----------------------------------------------------------------------------------

    def check(self, prompt: str, candidate: str, tier: Tier) -> Verdict:
        """Whether ``candidate`` (a stored prompt, or a curated passage) answers ``prompt``."""
        check_tier(tier)
        if normalise_text(prompt) == normalise_text(candidate):
            return PASS  # without segmenting either: the common exact hit costs nothing
        return self.check_analysed(self.analyse(prompt), self.analyse(candidate), tier)

    def check_analysed(self, prompt: Analysis, candidate: Analysis, tier: Tier) -> Verdict:
        """``check`` over precomputed analyses (a caller can analyse stored texts ahead of time)."""
        check_tier(tier)
        if prompt.text == candidate.text:
            return PASS
        for rule in self.rules[tier]:
            verdict = rule.check(prompt, candidate)
            if verdict is not None:
                return verdict
        return PASS

    def rejections(self, prompt: str, candidate: str, tier: Tier) -> dict[str, Verdict]:
        """Every rule of ``tier`` that rejects the pair on its own (rule name -> its verdict), in order;
        ``check`` reports the first. Empty for an exact match. For measuring rules one by one."""
        check_tier(tier)
        if normalise_text(prompt) == normalise_text(candidate):
            return {}
        a, b = self.analyse(prompt), self.analyse(candidate)
        found = ((rule.name, rule.check(a, b)) for rule in self.rules[tier])
        return {name: verdict for name, verdict in found if verdict is not None}
