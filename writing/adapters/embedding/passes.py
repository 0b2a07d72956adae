"""How a batch runs as forward passes on a CPU (pure logic): which rows go into which pass
(``plan_passes``), and how many CPU threads each pass takes when passes run side by side
(``ThreadShares``). The ``Embedder`` (``writing.adapters.embedding.encoder``) runs them.
"""

from __future__ import annotations

import threading
import time


class ThreadShares:
    """How many CPU threads each forward pass takes, when passes run side by side (pure logic).

    A pass alone takes them all; one that starts beside others takes ``total // passes``. A share is
    fixed when a pass starts (a TorchScript graph runs to its end with the team it began with). So a
    pass that would start beside one of at most half its size holding every thread waits for that one
    instead (it ends sooner than the half share would cost), then runs with them all: a burst that
    arrives just after a lone request would otherwise run on half the threads long after that request
    is done. Passes of similar sizes start side by side, each on its share.

    While passes have run side by side within the last ``recent`` seconds, a pass takes no more than
    its share of that many (two passes: half the threads), even when it starts alone: under a steady
    mix of callers (a noisy key's long prompts on one worker, a quiet key's short ones on the other) a
    long pass that happens to start in a gap would otherwise hold every thread, and the short pass
    that starts beside it a moment later would run on an oversubscribed core. A pass alone for longer
    than that gets them all again. Thread-safe; ``clock`` is injectable for tests.
    """

    def __init__(self, total: int, *, recent: float = 1.0, clock=time.monotonic) -> None:
        if total < 1:
            raise ValueError("total must be at least 1")
        self.total = total
        self.recent = recent
        self._clock = clock
        self._running: list[tuple[int, int]] = []  # (size, threads) of the passes running now
        self._peak = 1  # the most passes at once seen lately ...
        self._peak_at = float("-inf")  # ... last seen at this time
        self._changed = threading.Condition()

    def acquire(self, size: int) -> int:
        """Threads for a pass of ``size`` (tokens, padding included); may wait (see the class). Blocking."""
        with self._changed:
            while any(threads >= self.total and 2 * other <= size for other, threads in self._running):
                self._changed.wait()
            passes = len(self._running) + 1
            now = self._clock()
            if passes >= self._peak or now - self._peak_at > self.recent:
                self._peak, self._peak_at = passes, now
            threads = max(1, self.total // self._peak)
            self._running.append((size, threads))
            return threads

    def release(self, size: int, threads: int) -> None:
        with self._changed:
            self._running.remove((size, threads))
            self._changed.notify_all()


# what one more forward pass costs, in padded tokens' worth of work. On 2 CPU cores the test model's
# passages cost 36.8 ms each in passes of 8 and 39.8 in passes of 4, ~0.25 ms a token: ~96 tokens a pass
PASS_OVERHEAD_TOKENS = 96


def plan_passes(lengths: list[int], budget: int, overhead: int = PASS_OVERHEAD_TOKENS) -> list[list[int]]:
    """Forward passes for one batch (pure logic): groups of row indices, each in length order.

    Rows are sorted by length and cut into consecutive passes so that the work, ``overhead`` per pass
    plus rows x the pass's longest row (its padded size), is least, each pass within ``budget`` padded
    tokens (a row longer than that is a pass alone); of equal splits, the one whose largest pass is
    smallest (16 passages on a budget of 7 run as three passes of at most 6, not 7 + 7 + 2). So short
    prompts in a batch of passages run apart, without padding to the passages' length, while rows of
    similar length share one pass. ``budget`` 0 = one pass for the whole batch."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    n = len(order)
    if n == 0 or budget <= 0:
        return [order] if order else []
    sizes = [lengths[i] for i in order]
    if n * sizes[-1] <= budget and sum(sizes[-1] - x for x in sizes) <= overhead:
        return [order]  # similar lengths within the budget: one pass
    # best[j]: (work, largest pass) of the first j rows; cut[j]: where their last pass starts
    best: list[tuple[int, int]] = [(0, 0)] + [(1 << 62, 0)] * n
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        longest = sizes[j - 1]
        for i in range(j - 1, -1, -1):
            rows = j - i
            padded = rows * longest
            if rows > 1 and padded > budget:
                break
            work, largest = best[i]
            candidate = (work + overhead + padded, max(largest, padded))
            if candidate < best[j]:
                best[j], cut[j] = candidate, i
    passes: list[list[int]] = []
    j = n
    while j > 0:
        passes.append(order[cut[j] : j])
        j = cut[j]
    return passes[::-1]
