"""Which text the embedding model runs next (``FairQueue``): the scheduling order, deterministically.

Pure logic, no threads: each test puts items for flows (keys, the admin flow) and reads the order in
which ``take`` hands them out. The batcher around it is covered by test_batcher_fairness.py.
"""

from __future__ import annotations

import pytest

from writing.adapters.embedding.fair_queue import FairQueue, QueueFull
from writing.text import estimate_tokens


def drain_order(q: FairQueue, **take) -> list[str]:
    """Items taken one batch of one at a time: the order the model would see them."""
    out = []
    while len(q):
        out += [v for _, v in q.take(1, 10**9, **take)]
    return out


def test_a_quiet_key_is_served_before_a_noisy_keys_backlog():
    q: FairQueue[str] = FairQueue(100)
    for i in range(10):
        q.put(f"noisy{i}", "noisy", 500)
    assert q.take(1, 10**9) == [("noisy", "noisy0")]  # the model is busy with the noisy key's first
    q.put("quiet0", "quiet", 20)  # the quiet key's prompt arrives meanwhile
    assert q.take(1, 10**9) == [("quiet", "quiet0")]  # next, before the nine queued earlier
    q.put("quiet1", "quiet", 20)
    assert q.take(1, 10**9) == [("quiet", "quiet1")]  # and again: its load is its own


def test_backlogged_keys_share_model_time_by_tokens_not_requests():
    q: FairQueue[str] = FairQueue(1000)
    for i in range(200):
        q.put(f"long{i}", "long", 400)
        q.put(f"short{i}", "short", 100)
    served = {"long": 0, "short": 0}
    for _ in range(100):
        ((flow, _),) = q.take(1, 10**9)
        served[flow] += 400 if flow == "long" else 100
    # equal tokens (within one long prompt), so the short key gets four requests per long one
    assert abs(served["long"] - served["short"]) <= 400, served


def test_an_idle_key_saves_no_credit():
    q: FairQueue[str] = FairQueue(100)
    for i in range(20):
        q.put(f"b{i}", "b", 100)
    for _ in range(10):
        q.take(1, 10**9)  # b alone for a while: a was idle
    for i in range(6):
        q.put(f"a{i}", "a", 100)
    order = [v[0] for v in drain_order(q)]
    # a does not get its idle time back as a burst: the two alternate once a has queued work
    assert "".join(order[:8]) in ("abababab", "babababa"), order


def test_weights_share_model_time_admin_work_low():
    q: FairQueue[str] = FairQueue(1000)
    for i in range(100):
        q.put(f"admin{i}", "admin", 400, weight=0.25)
        q.put(f"key{i}", "key", 400)
    served = {"admin": 0, "key": 0}
    for _ in range(50):
        ((flow, _),) = q.take(1, 10**9)
        served[flow] += 1
    assert served == {"admin": 10, "key": 40}  # 1 : 4, as the weights say
    # and nobody starves: with no prompts left, the admin work runs back to back
    q2: FairQueue[str] = FairQueue(10)
    for i in range(3):
        q2.put(f"admin{i}", "admin", 400, weight=0.25)
    assert drain_order(q2) == ["admin0", "admin1", "admin2"]


def test_a_batch_keeps_similar_costs_and_its_budgets():
    q: FairQueue[str] = FairQueue(100)
    q.put("short-a", "a", 20)
    q.put("long-b", "b", 500)
    q.put("short-c", "c", 30)
    q.put("short-a2", "a", 25)
    # the long prompt waits for the next batch: the short ones do not ride in its pass
    assert q.take(16, 10**9) == [("a", "short-a"), ("c", "short-c"), ("a", "short-a2")]
    assert q.take(16, 10**9) == [("b", "long-b")]
    for i in range(6):
        q.put(f"p{i}", f"k{i}", 300)
    assert len(q.take(16, 1000)) == 3  # the token budget: 3 x 300 fit in 1000
    assert len(q.take(2, 10**9)) == 2  # the item budget
    assert q.take(16, 100) == [("k5", "p5")]  # the first item goes even when it is over budget alone


def test_busy_flows_wait_and_single_items_go_alone():
    q: FairQueue[str] = FairQueue(100)
    q.put("n0", "noisy", 100)
    q.put("n1", "noisy", 100)
    q.put("task", "admin", 100, weight=0.25)
    q.put("q0", "quiet", 100)
    # the noisy key holds a worker already: this worker takes the others' work only
    assert q.take(16, 10**9, busy={"noisy"}, single={"admin"}) == [("quiet", "q0")]
    assert not q.ready(busy={"noisy", "admin"})
    assert q.take(16, 10**9, busy={"noisy", "admin"}) == []
    # admin work is a batch alone: the batch ends before it, and it comes alone
    assert q.take(16, 10**9, single={"admin"}) == [("noisy", "n0"), ("noisy", "n1")]
    assert q.take(16, 10**9, single={"admin"}) == [("admin", "task")]
    assert len(q) == 0


def test_the_queue_is_bounded_and_one_flow_fills_half_of_it():
    q: FairQueue[str] = FairQueue(4)
    q.put("a", "x", 1)
    q.put("b", "x", 1)
    with pytest.raises(QueueFull):
        q.put("c", "x", 1)  # x holds half the queue: the rest is for the others
    q.put("d", "y", 1)
    q.put("e", "z", 1)
    with pytest.raises(QueueFull):
        q.put("f", "w", 1)
    assert sorted(q.drain()) == ["a", "b", "d", "e"] and len(q) == 0


def test_token_estimate_counts_what_the_model_pays_for():
    assert estimate_tokens("春天来了") == 4 + 2  # a CJK character is a token; [CLS] and [SEP]
    assert estimate_tokens("write a poem about spring") == 5 + 2  # a word about one
    assert estimate_tokens("第2024年，春天！") == 7 + 2  # digits run as one, punctuation one each
    assert estimate_tokens("长" * 2000, 512) == 512  # the window cuts the rest off
