"""A Milvus Lite server that is slow to open its socket is waited for, not reported as down."""

from __future__ import annotations

import pymilvus
import pytest

from writing.adapters.milvus.connection import MilvusConnection
from writing.errors import VectorStoreError


class SlowLite:
    """Fails like pymilvus does while the Lite server's socket is not there yet, ``fails`` times."""

    fails = 2
    attempts = 0

    def __init__(self, uri: str, dedicated: bool = False) -> None:
        type(self).attempts += 1
        if type(self).attempts <= type(self).fails:
            raise pymilvus.MilvusException(message="Fail connecting to server on unix:/tmp/x.sock")

    def close(self) -> None:
        pass


def test_a_lite_server_still_starting_is_waited_for(tmp_path, monkeypatch):
    monkeypatch.setattr(pymilvus, "MilvusClient", SlowLite)
    SlowLite.attempts = 0
    connection = MilvusConnection(lite_path=str(tmp_path / "m.db"))
    assert isinstance(connection.connect(), SlowLite)
    assert SlowLite.attempts == 3
    connection.close()


def test_other_failures_are_not_retried(tmp_path, monkeypatch):
    class Broken:
        def __init__(self, uri: str, dedicated: bool = False) -> None:
            raise pymilvus.MilvusException(message="illegal database file")

    monkeypatch.setattr(pymilvus, "MilvusClient", Broken)
    with pytest.raises(VectorStoreError, match="illegal database file"):
        MilvusConnection(lite_path=str(tmp_path / "m.db")).connect()
