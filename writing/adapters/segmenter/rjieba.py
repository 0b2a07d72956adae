"""rjieba (jieba's dictionary and tags, in Rust) as the hit guard's segmenter."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

_Functions = tuple[Callable[[str], list[tuple[str, str]]], Callable[[str], list[str]]]


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
        self._functions: _Functions | None = None
        self.load_seconds: float | None = None  # how long the first use waited for the dictionary

    def _loaded(self) -> _Functions:
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
