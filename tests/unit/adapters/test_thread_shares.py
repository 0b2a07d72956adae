"""How forward passes side by side share the CPU threads (``ThreadShares``: pure logic, no model)."""

from __future__ import annotations

import threading
import time

import pytest

from writing.adapters.embedding.passes import ThreadShares


def test_a_pass_alone_takes_every_thread_and_passes_side_by_side_split_them():
    shares = ThreadShares(4)
    assert shares.acquire(100) == 4
    assert shares.acquire(100) == 2  # similar size: starts beside it, on its share
    assert shares.acquire(90) == 1
    shares.release(100, 2)
    shares.release(90, 1)
    shares.release(100, 4)
    assert shares.acquire(100) == 4  # alone again


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
    shares = ThreadShares(2)
    big = shares.acquire(4000)  # e.g. a corpus write
    assert shares.acquire(12) == 1  # a prompt starts at once, on its share
    assert big == 2


def test_at_least_one_thread():
    shares = ThreadShares(1)
    assert shares.acquire(10) == 1 and shares.acquire(10) == 1
    with pytest.raises(ValueError):
        ThreadShares(0)
