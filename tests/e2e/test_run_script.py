"""The README's run command, word for word, with a setting from the README's table.

scripts/run.sh starts once for the module, as a first run does: no EMBEDDING_MODEL (the m3e-small
stand-in, mean pooling and the thresholds run.sh gives it) and the real LLM stand-in.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.corpus import ROOT, load_corpus
from tests.support.standin import DEMO_HIT, run_script_default
from writing.devtools.processes import free_port, stop_process_group

pytestmark = pytest.mark.slow

# what run.sh decides when the caller has not: taken out of the environment the script inherits
RUN_SCRIPT_DEFAULTS = (
    "LLM_BASE_URL",
    "EMBEDDING_MODEL",
    "EMBEDDING_POOLING",
    "SIMILARITY_THRESHOLD",
    "ANSWER_CACHE_THRESHOLD",
)


@dataclass(frozen=True)
class Running:
    port: int
    log: Path
    proc: subprocess.Popen

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def get(self, path: str, **params) -> httpx.Response:
        assert self.proc.poll() is None, self.log_tail()
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", params=params, timeout=120)


@pytest.fixture(scope="module")
def run_script(tmp_path_factory):
    """scripts/run.sh with PORT and HOST set, once it serves."""
    tmp = tmp_path_factory.mktemp("run-script")
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "MILVUS_LITE_PATH": str(tmp / "milvus.db"),
        "LOG_LEVEL": "WARNING",
    }
    for var in RUN_SCRIPT_DEFAULTS:
        env.pop(var, None)
    log = tmp / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["bash", "scripts/run.sh"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    running = Running(port, log, proc)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if running.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, running.log_tail()
            time.sleep(1)
        yield running
    finally:
        stop_process_group(proc, grace=20)


def test_port_moves_the_api_and_not_the_llm(run_script):
    """llama.cpp's server reads PORT too: with PORT set, scripts/run.sh must still serve on that port."""
    r = run_script.get("/generate", prompt="写一段描写秋天的文字")
    assert r.status_code == 200, r.text
    assert r.headers["x-writing-source"] in ("milvus", "llm") and r.json().strip()
    assert_keeps_idle_connections_past(6.0, run_script.port)


def test_the_demo_prompt_is_a_hit(run_script):
    """The README's first request, on a first run: the sample corpus's Guangzhou passage, from Milvus."""
    prompt, biz_id = DEMO_HIT
    r = run_script.get("/generate", prompt=prompt)
    assert r.status_code == 200, r.text
    assert r.headers["x-cache"] == "HIT", dict(r.headers)
    assert r.headers["x-writing-source"] == "milvus" and r.headers["x-match-source"] == "curated"
    assert r.headers["x-cache-guard"] == "pass"
    assert float(r.headers["x-similarity"]) >= float(run_script_default("SIMILARITY_THRESHOLD"))
    assert r.json() == next(p["content"] for p in load_corpus() if p["biz_id"] == biz_id)
    # the one line that names the embedding model and its license
    banner = [line for line in run_script.log.read_text(errors="replace").splitlines() if "==> embedding:" in line]
    assert len(banner) == 1 and "m3e-small" in banner[0] and "non-commercial" in banner[0], banner


def test_a_demo_miss_is_readable_text(run_script):
    """The README's miss, on a first run: the LLM stand-in answers, and the answer does not degenerate
    (no 6-character sequence more than 3 times: bench.llm_standin's definition)."""
    from bench.llm_standin import degenerate

    r = run_script.get("/generate", prompt="用Python写一个快速排序")
    assert r.status_code == 200, r.text
    assert r.headers["x-cache"] == "MISS" and r.headers["x-writing-source"] == "llm", dict(r.headers)
    text = r.json()
    assert text.strip() and not degenerate(text), text


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
