"""The guard's word lists: JSON files in ``words/`` beside the modules, read on first use.

Nothing is read or compiled at import: each feature module wraps what it builds from its list in a
``Lazy``, and ``load_all`` (``HitGuard.warm``) builds them all ahead of the first request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_ALL: list[Lazy[Any]] = []


def read(name: str) -> dict[str, Any]:
    """The parsed ``words/<name>.json`` (its ``about`` key documents the file)."""
    import json
    from importlib import resources

    return json.loads(resources.files(__package__).joinpath("words", f"{name}.json").read_text("utf-8"))


class Lazy(Generic[T]):
    """A value built once, by the first caller, from a lexicon file; thread-safe."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._lock = threading.Lock()
        _ALL.append(self)

    def __call__(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
                value = self._value
        return value

    @property
    def loaded(self) -> bool:
        return self._value is not None


def loaded() -> bool:
    """Whether every lexicon has been built (none is, right after import)."""
    return all(lazy.loaded for lazy in _ALL)


def load_all() -> None:
    """Build every lexicon now (the service's start-up), so that no request pays for it."""
    for lazy in list(_ALL):
        lazy()
