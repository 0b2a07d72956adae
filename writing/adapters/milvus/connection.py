"""The connection to Milvus: one pymilvus client per failure domain, with the reconnect and the Lite lock.

``MilvusConnection`` owns the pymilvus client of a process (a Milvus server at ``MILVUS_URI``, or a
Milvus Lite file that one process owns): it connects on first use (waiting for a Lite server that is
still opening its socket), forgets a failed client on ``reset``, and makes a sibling connection with a
dedicated channel for each failure domain. The collections over it are ``writing.adapters.milvus.collection``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path

from writing.errors import StoreLocked, VectorStoreError

logger = logging.getLogger(__name__)

LITE_START_TIMEOUT = 15.0  # seconds a Milvus Lite server may take to open its socket


class _LiteOwnership:
    """The open lock file that marks this process as a Milvus Lite file's owner, shared by the sibling
    connections of one process (``MilvusConnection.sibling``) and released with the last of them."""

    def __init__(self) -> None:
        self.handle = None
        self.users = 0


class MilvusConnection:
    """One pymilvus client, for one failure domain; reconnects after ``reset``.

    Each domain (corpus, answers, records, settings) gets its own connection (``sibling``) with a
    *dedicated* gRPC channel: pymilvus 2.6 otherwise merges clients of the same address and token into
    one shared channel (its ``ConnectionManager``), so one domain's ``reset`` would neither isolate it
    nor really reconnect. A Milvus Lite file still has one owning process: siblings share the lock."""

    def __init__(
        self,
        *,
        uri: str = "",
        lite_path: str = "./data/milvus.db",
        token: str = "",
        db_name: str = "",
        timeout: float = 5.0,
    ) -> None:
        self.uri = uri
        self.lite_path = lite_path
        self.token = token
        self.db_name = db_name
        self.timeout = timeout
        self._client = None
        self._lock = threading.Lock()
        self._owner = _LiteOwnership()
        self._owner.users += 1
        self._closed = False

    def sibling(self) -> MilvusConnection:
        """Another connection to the same place, with its own client (a failure domain of its own)."""
        other = MilvusConnection(
            uri=self.uri, lite_path=self.lite_path, token=self.token, db_name=self.db_name, timeout=self.timeout
        )
        other._owner.users -= 1
        other._owner = self._owner
        self._owner.users += 1
        return other

    @property
    def kind(self) -> str:
        return "milvus-server" if self.uri else "milvus-lite"

    @property
    def target(self) -> str:
        return self.uri or os.path.abspath(self.lite_path)

    @property
    def client(self):
        if self._client is None:
            raise VectorStoreError("vector store is not connected")
        return self._client

    def connect(self):
        """The client, connecting first when there is none (a failure leaves no half-made client)."""
        with self._lock:
            if self._client is None:
                try:
                    self._client = self._connect()
                except (StoreLocked, VectorStoreError):
                    raise
                except Exception as exc:
                    raise VectorStoreError(f"cannot open {self.kind} at {self.target}: {exc}") from exc
            return self._client

    def _connect(self):
        from pymilvus import MilvusClient

        if self.uri:
            kwargs = {"uri": self.uri, "timeout": self.timeout, "dedicated": True}
            if self.token:
                kwargs["token"] = self.token
            if self.db_name:
                # create the database on first use (needs the server's default db to be reachable)
                admin = MilvusClient(**kwargs)
                try:
                    if self.db_name not in admin.list_databases(timeout=self.timeout):
                        admin.create_database(self.db_name, timeout=self.timeout)
                finally:
                    admin.close()
                kwargs["db_name"] = self.db_name
            return MilvusClient(**kwargs)
        Path(self.lite_path).parent.mkdir(parents=True, exist_ok=True)
        self._own_lite_file()
        # milvus-lite gives its server 0.5 s to start before pymilvus connects to its socket; on a busy
        # machine the socket is not there yet and the first connection fails: wait for it a little
        deadline = time.monotonic() + LITE_START_TIMEOUT
        while True:
            try:
                return MilvusClient(self.lite_path, dedicated=True)
            except Exception as exc:
                if time.monotonic() > deadline or "connect" not in str(exc).lower():
                    raise
                logger.info("Milvus Lite is still starting (%s); retrying", type(exc).__name__)
                time.sleep(0.5)

    def _own_lite_file(self) -> None:
        """One process owns a Milvus Lite file; a second one gets a message saying why it cannot start."""
        import fcntl

        if self._owner.handle is not None:
            return
        fh = open(f"{self.lite_path}.owner.lock", "a+")  # noqa: SIM115 - held open for the process's life
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise StoreLocked(
                f"the Milvus Lite file {os.path.abspath(self.lite_path)} is in use by another process "
                "(one process owns a Lite file: run one worker, stop the other process, or use a Milvus "
                "server via MILVUS_URI for several workers)"
            ) from None
        self._owner.handle = fh

    def _drop_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close; it is dropped anyway
                self._client.close()
        self._client = None

    def reset(self) -> None:
        """Forget a connection that failed; the next ``connect`` connects afresh. Never waits: when a
        (re)connection holds the lock, that one is replacing the connection anyway."""
        if self._lock.acquire(blocking=False):
            try:
                self._drop_client()
            finally:
                self._lock.release()

    def close(self) -> None:
        with self._lock:
            self._drop_client()
            if self._closed:
                return
            self._closed = True
            self._owner.users -= 1
            if self._owner.users <= 0 and self._owner.handle is not None:
                self._owner.handle.close()
                self._owner.handle = None
