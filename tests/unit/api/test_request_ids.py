"""Generated request ids: uuid4().hex's shape, unique, from one os.urandom call per ID_POOL ids."""

from __future__ import annotations

import os
import re

from writing.api import middleware
from writing.api.middleware import ID_POOL, RequestContextMiddleware


def test_ids_are_32_hex_digits_unique_and_drawn_a_pool_at_a_time(monkeypatch):
    calls: list[int] = []
    real = os.urandom

    def urandom(n: int) -> bytes:
        calls.append(n)
        return real(n)

    monkeypatch.setattr(middleware.os, "urandom", urandom)
    m = RequestContextMiddleware(None, metrics=None, config={})
    ids = [m._new_id() for _ in range(2 * ID_POOL + 1)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert len(calls) == 3  # one system call per ID_POOL ids
