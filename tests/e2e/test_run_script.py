"""The README's run command, word for word, with a setting from the README's table."""

from __future__ import annotations

import http.client
import os
import subprocess
import time

import httpx
import pytest

from tests.support.corpus import ROOT
from writing.devtools.processes import free_port, stop_process_group

pytestmark = pytest.mark.slow


def test_port_moves_the_api_and_not_the_llm(tmp_path, model_path):
    """llama.cpp's server reads PORT too: with PORT set, scripts/run.sh must still serve on that port."""
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "EMBEDDING_MODEL": model_path,
        "MILVUS_LITE_PATH": str(tmp_path / "milvus.db"),
        "LOG_LEVEL": "WARNING",
    }
    env.pop("LLM_BASE_URL", None)
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["bash", "scripts/run.sh"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/generate", params={"prompt": "写一段描写秋天的文字"}, timeout=120
                )
                break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(1)
        assert r.status_code == 200, r.text
        assert r.headers["x-writing-source"] in ("milvus", "llm") and r.json().strip()
        assert_keeps_idle_connections_past(6.0, port)
    finally:
        stop_process_group(proc, grace=20)


def assert_keeps_idle_connections_past(seconds: float, port: int) -> None:
    """A keep-alive connection idle for longer than callers' pools keep theirs (httpx: 5 s, which was
    also uvicorn's default) is still open: a request sent on it gets its answer, not a reset."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for attempt in range(2):
            conn.request("GET", "/healthz")
            try:
                r = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionError) as exc:
                pytest.fail(f"the server closed the connection (request {attempt + 1}): {exc!r}")
            assert r.status == 200, r.read()[:200]
            r.read()
            if attempt == 0:
                first = conn.sock
                time.sleep(seconds)
        assert conn.sock is first  # the same connection, not a new one
    finally:
        conn.close()
