"""Host names a loopback client may use while no keys are set (pure logic; the middleware is tested in
tests/integration/test_sharing.py)."""

from __future__ import annotations

import pytest

from writing.api.auth import host_name, trusted_host


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost:8000", "localhost"),
        ("[::1]:8000", "::1"),
        ("::1", "::1"),
        ("Evil.Example", "evil.example"),
        (None, ""),
    ],
)
def test_host_name(header, name):
    assert host_name(header) == name


def test_only_loopback_names_and_the_listed_ones_are_trusted():
    assert trusted_host("127.0.0.1:8000") and trusted_host("localhost") and trusted_host("app.localhost:80")
    assert not trusted_host("evil.example") and not trusted_host("") and not trusted_host("localhost.evil.example")
    assert trusted_host("devbox:8000", frozenset({"devbox"}))
