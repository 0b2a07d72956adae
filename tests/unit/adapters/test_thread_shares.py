"""How forward passes side by side share the CPU threads (``ThreadShares``: pure logic, no model)."""

from __future__ import annotations

import threading
import time

import pytest

from writing.adapters.embedding.passes import ThreadShares


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_pass_alone_takes_every_thread_and_passes_side_by_side_split_them():
    clock = Clock()
    shares = ThreadShares(4, recent=1.0, clock=clock)
    assert shares.acquire(100) == 4
    assert shares.acquire(100) == 2  # similar size: starts beside it, on its share
    assert shares.acquire(90) == 1
    shares.release(100, 2)
    shares.release(90, 1)
    shares.release(100, 4)
    clock.now = 1.5
    assert shares.acquire(100) == 4  # alone again, for longer than `recent`


def test_while_passes_ran_side_by_side_lately_a_pass_alone_keeps_to_its_share():
    """A noisy key's long pass that starts in a gap between a quiet key's short ones takes half the
    threads, so the next short pass beside it does not run on an oversubscribed core."""
    clock = Clock()
    shares = ThreadShares(2, recent=1.0, clock=clock)
    long_pass = shares.acquire(2000)
    assert long_pass == 2  # nobody else lately: all of them
    assert shares.acquire(12) == 1  # a short one beside it: side by side now
    shares.release(12, 1)
    shares.release(2000, 2)
    clock.now = 0.5
    long_pass = shares.acquire(2000)
    assert long_pass == 1  # alone, but two ran side by side 0.5 s ago: its share of two
    assert shares.acquire(12) == 1
    shares.release(12, 1)
    shares.release(2000, long_pass)
    clock.now = 1.4  # side by side again at 0.5: the window runs from then
    assert shares.acquire(2000) == 1
    shares.release(2000, 1)
    clock.now = 2.6
    assert shares.acquire(2000) == 2  # alone for longer than `recent`: every thread again


def test_a_burst_behind_a_small_pass_waits_for_it_then_takes_every_thread():
    shares = ThreadShares(2)
    lone = shares.acquire(12)  # a lone short request: both threads
    got: list[tuple[float, int]] = []

    def burst() -> None:
        threads = shares.acquire(15 * 20)  # 15 prompts arriving just after
        got.append((time.perf_counter(), threads))

    t = threading.Thread(target=burst)
    t.start()
    time.sleep(0.1)
    assert not got  # waiting: on one thread it would outlast the lone pass by far
    released = time.perf_counter()
    shares.release(12, lone)
    t.join(5)
    assert got and got[0][1] == 2 and got[0][0] >= released


def test_a_small_pass_beside_a_big_one_does_not_wait():
    shares = ThreadShares(2, recent=0)
    big = shares.acquire(4000)  # e.g. a corpus write
    assert shares.acquire(12) == 1  # a prompt starts at once, on its share
    assert big == 2


def test_at_least_one_thread():
    shares = ThreadShares(1)
    assert shares.acquire(10) == 1 and shares.acquire(10) == 1
    with pytest.raises(ValueError):
        ThreadShares(0)
