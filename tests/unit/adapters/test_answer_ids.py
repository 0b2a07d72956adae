"""Stored answers' ids sort by time (the API and the console list answers in id order), strictly
increasing within a process even for a bulk insert within one microsecond."""

from __future__ import annotations

import time

from writing.adapters.milvus.answer_rows import ID_RANDOM_BITS, AnswerIds


def test_ids_increase_with_time_and_within_a_burst():
    ids = AnswerIds()
    burst = [ids.next() for _ in range(5000)]
    assert burst == sorted(set(burst))
    time.sleep(0.002)
    later = ids.next()
    assert later > burst[-1]
    assert abs((later >> ID_RANDOM_BITS) - time.time_ns() // 1000) < 1_000_000  # microseconds, within 1 s
    assert later < 2**61  # an INT64 primary key with room to spare
