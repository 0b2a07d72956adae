"""How often a key may act in any 60 seconds: ``FEEDBACK_RATE_PER_MINUTE`` reports per key, and the
verifier's ``VERIFY_MAX_PER_MINUTE`` judge calls (``writing.core.budget.verifier``, one key)."""

from __future__ import annotations

import time
from collections import deque


class RateLimiter:
    """At most ``per_minute`` events per key in any 60 seconds (per process)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        window = self._window(key, now)
        if len(window) >= self.per_minute:
            return False
        window.append(now)
        if len(self._seen) > 10_000:  # forget idle keys
            for k in [k for k, w in self._seen.items() if not w or now - w[-1] > 60]:
                del self._seen[k]
        return True

    def used(self, key: str, now: float | None = None) -> int:
        """The events of ``key`` within the last 60 seconds."""
        return len(self._window(key, time.monotonic() if now is None else now))

    def _window(self, key: str, now: float) -> deque[float]:
        window = self._seen.setdefault(key, deque())
        while window and now - window[0] >= 60:
            window.popleft()
        return window
