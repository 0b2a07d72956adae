"""The exact tier across two uvicorn workers on a Milvus server: what one worker stores or deletes, the
other serves (or stops serving) exactly once its index has reloaded (EXACT_REFRESH_INTERVAL)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.corpus import ROOT, load_corpus
from tests.support.metrics import Scrape
from writing.devtools.fake_llm import FakeLLM
from writing.devtools.processes import free_port

pytestmark = pytest.mark.slow

CALLER, ADMIN = "exact-workers-caller", "exact-workers-admin"
PROMPT = "请写一段介绍量子纠缠的科普短文"
REFRESH = 0.5  # EXACT_REFRESH_INTERVAL in this test
SETTLE = 4 * REFRESH  # the documented delay, with room for a reload that was under way


def uvicorn_workers(env: dict, port: int, log: Path) -> subprocess.Popen:
    """Two workers, their output to a file (a pipe nobody reads would fill up and stop them)."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def fresh(url: str, key: str, method: str, path: str, **kwargs) -> httpx.Response:
    """One request on a new connection: the kernel spreads them over both workers."""
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {key}"}) as c:
        return c.request(method, path, **kwargs)


def exact_hits_per_worker(url: str, tier: str) -> dict[float, float]:
    """Scrapes until both workers answered: worker (told apart by when its metrics were made) ->
    its writing_exact_hits_total for ``tier``."""
    seen: dict[float, float] = {}
    for _ in range(60):
        scraped = Scrape(fresh(url, ADMIN, "GET", "/metrics").text)
        seen[scraped.value("writing_llm_calls_shared_created")] = scraped.get("writing_exact_hits_total", tier=tier)
        if len(seen) == 2:
            return seen
    raise AssertionError("the scrapes reached one worker only")


def test_one_workers_changes_reach_the_others_exact_tier(model_path, milvus_server, tmp_path):
    port, log = free_port(), tmp_path / "workers.log"
    with FakeLLM() as fake:
        env = {
            "EMBEDDING_MODEL": model_path,
            "MILVUS_URI": milvus_server.uri,
            "MILVUS_DB": "exact_workers",
            "MILVUS_COLLECTION": "exact_workers_test",
            "LLM_BASE_URL": fake.base_url,
            "LOG_LEVEL": "WARNING",
            "API_KEYS": f"{CALLER}:acme",
            "ADMIN_API_KEYS": ADMIN,
            "ANSWER_CACHE": "true",
            "EXACT_REFRESH_INTERVAL": str(REFRESH),
        }
        proc = uvicorn_workers(env, port, log)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 180
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None, log.read_text(errors="replace")
                assert time.monotonic() < deadline, "workers not ready"
                time.sleep(1)

            # an answer written back by one worker is an exact hit on both after the delay
            first = fresh(url, CALLER, "GET", "/generate", params={"prompt": PROMPT})
            assert first.headers["x-cache"] == "MISS"
            time.sleep(SETTLE)
            answer_ids = set()
            for _ in range(16):
                r = fresh(url, CALLER, "GET", "/generate", params={"prompt": PROMPT})
                assert (r.headers["x-match-source"], r.headers["x-match-kind"]) == ("generated", "exact"), r.headers
                answer_ids.add(r.headers["x-match-id"])
            assert len(answer_ids) == 1
            per_worker = exact_hits_per_worker(url, "generated")
            assert all(n >= 1 for n in per_worker.values()), per_worker  # both served it exactly

            # a passage added through one worker: the same
            passage = load_corpus()[7]
            added = fresh(url, ADMIN, "POST", "/v1/corpus", json=passage)
            passage_id = added.json()["ids"][0]
            time.sleep(SETTLE)
            for _ in range(16):
                r = fresh(url, CALLER, "GET", "/generate", params={"prompt": passage["content"]})
                assert (r.headers["x-match-id"], r.headers["x-match-kind"]) == (str(passage_id), "exact")
            assert all(n >= 1 for n in exact_hits_per_worker(url, "curated").values())

            # deletions on one worker stop the other's exact hits after the delay
            (answer_id,) = answer_ids
            assert fresh(url, ADMIN, "DELETE", f"/v1/answers/{answer_id}").json() == {"deleted": 1}
            assert fresh(url, ADMIN, "DELETE", f"/v1/corpus/{passage_id}").json() == {"deleted": 1}
            time.sleep(SETTLE)
            for _ in range(16):
                for prompt, gone in ((PROMPT, answer_id), (passage["content"], str(passage_id))):
                    r = fresh(url, CALLER, "GET", "/generate", params={"prompt": prompt})
                    served = (r.headers.get("x-match-kind"), r.headers.get("x-match-id"))
                    assert served != ("exact", gone), (prompt, r.headers)
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise AssertionError("the workers did not stop: " + log.read_text(errors="replace")[-3000:]) from None
        assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")[-3000:]
