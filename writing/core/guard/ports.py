"""The guard's one dependency: a Chinese segmenter with part-of-speech tags.

The core never imports one; ``writing.adapters.segmenter.RJiebaTagger`` (rjieba) is what the service
injects (``writing.wiring.build_guard``).
"""

from __future__ import annotations

from typing import Protocol


class Tagger(Protocol):
    """A segmenter with part-of-speech tags in jieba's tag set (n, nr, ns, nt, nz, m, eng, ...).

    Its calls must be safe from several threads at once after the first one (the guard's checks run
    in worker threads); loading a dictionary on first use is the adapter's business.
    """

    def tag(self, text: str) -> list[tuple[str, str]]:
        """``text`` cut into (word, tag) pairs, in order, covering the whole text."""
        ...

    def subwords(self, word: str) -> list[str]:
        """The dictionary words inside ``word`` (jieba's search mode: 苏州园林 -> 苏州, 园林, 苏州园林)."""
        ...
