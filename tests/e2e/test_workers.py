"""Several uvicorn workers: fine against a Milvus server, refused (with the reason) on a Lite file."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.support.corpus import ROOT, ingest_sample, load_corpus
from writing.devtools.fake_llm import FakeLLM
from writing.devtools.processes import free_port

pytestmark = pytest.mark.slow

CALLER, OTHER, ADMIN = "workers-caller-1", "workers-caller-2", "workers-admin-1"


def uvicorn_workers(env: dict, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def hit_below_one(explain) -> tuple[str, float]:
    """The beginning of a sample passage that hits it below similarity 1.0 (so that a stricter threshold
    between the two turns the hit into a miss), and that similarity; ``explain(prompt)`` is the
    /v1/explain answer."""
    for passage in load_corpus():
        part = passage["content"][:30]
        found = explain(part)
        if found["decision"] == "HIT" and found["served"]["similarity"] < 0.999:
            return part, found["served"]["similarity"]
    raise AssertionError("no passage's beginning hits it below 1.0")


def test_two_workers_on_a_lite_file_refuse_to_start(model_path, tmp_path):
    env = {
        "EMBEDDING_MODEL": model_path,
        "MILVUS_LITE_PATH": str(tmp_path / "m.db"),
        "LLM_BASE_URL": "http://127.0.0.1:9/v1",
    }
    proc = uvicorn_workers(env, free_port())
    try:
        out, _ = proc.communicate(timeout=180)
    finally:
        proc.kill()
    # uvicorn's parent stops when a worker fails start-up (its own exit status is 0)
    assert "failed to start, stopping the parent process" in out
    assert "one process owns a Lite file" in out


def test_two_workers_against_a_milvus_server(model_path, embedder, make_settings, milvus_server):
    settings = make_settings(milvus_uri=milvus_server.uri, milvus_db="workers", milvus_collection="workers_test")
    ingest_sample(settings, embedder)
    port = free_port()
    with FakeLLM() as fake:
        env = {
            "EMBEDDING_MODEL": model_path,
            "MILVUS_URI": milvus_server.uri,
            "MILVUS_DB": "workers",
            "MILVUS_COLLECTION": "workers_test",
            "LLM_BASE_URL": fake.base_url,
            "LOG_LEVEL": "WARNING",
            "API_KEYS": f"{CALLER}:acme,{OTHER}:globex",
            "ADMIN_API_KEYS": ADMIN,
            "FEEDBACK_REFRESH_INTERVAL": "0.5",
            "RUNTIME_SETTINGS_REFRESH_INTERVAL": "0.5",
        }
        proc = uvicorn_workers(env, port)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 180
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "workers not ready"
                time.sleep(1)
            passages = [p["content"] for p in load_corpus()[:10]]
            caller = {"Authorization": f"Bearer {CALLER}"}
            with httpx.Client(base_url=url, timeout=60, headers=caller) as client:
                for text in passages * 2:
                    r = client.get("/generate", params={"prompt": text})
                    assert r.status_code == 200 and r.json() == text
                    assert r.headers["x-writing-source"] == "milvus"
                r = client.get("/generate", params={"prompt": "请解释TCP三次握手"})
                assert r.status_code == 200 and r.headers["x-writing-source"] == "llm"

            # feedback works whichever worker answered and whichever receives the report: a fresh
            # connection per request lets the kernel spread them over both workers
            def fresh(key: str, method: str, path: str, **kwargs) -> httpx.Response:
                with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {key}"}) as c:
                    return c.request(method, path, **kwargs)

            reported = passages[3]
            answered = fresh(CALLER, "GET", "/generate", params={"prompt": reported})
            entry = answered.headers["x-match-id"]
            body = {
                "request_id": answered.headers["x-request-id"],
                "token": answered.headers["x-feedback-token"],
                "verdict": "wrong",
            }
            assert fresh(CALLER, "POST", "/v1/feedback", json=body).status_code == 200
            time.sleep(1.5)  # the other worker reloads its blocklist every 0.5 s
            for _ in range(8):
                r = fresh(CALLER, "GET", "/generate", params={"prompt": reported})
                assert r.headers.get("x-match-id") != entry, "a worker served the reported passage again"
                r = fresh(OTHER, "GET", "/generate", params={"prompt": reported})
                assert r.headers.get("x-match-id") == entry  # another tenant is not affected
            reports = fresh(ADMIN, "GET", "/v1/feedback").json()["items"]
            assert [(x["tenant"], x["entry_id"]) for x in reports] == [("acme", int(entry))]

            # a threshold set at run time on one worker holds on every worker, until it is reset
            part, similarity = hit_below_one(lambda p: fresh(ADMIN, "POST", "/v1/explain", json={"prompt": p}).json())
            stricter = round((similarity + 1) / 2, 6)
            r = fresh(ADMIN, "PUT", "/v1/settings/threshold", json={"curated": stricter})
            assert r.status_code == 200 and r.json()["curated"]["source"] == "runtime", r.text
            time.sleep(1.5)
            for _ in range(8):
                assert fresh(OTHER, "GET", "/generate", params={"prompt": part}).headers["x-cache"] == "MISS"
            assert fresh(ADMIN, "DELETE", "/v1/settings/threshold").json()["curated"]["source"] == "environment"
            time.sleep(1.5)
            for _ in range(8):
                assert fresh(OTHER, "GET", "/generate", params={"prompt": part}).headers["x-cache"] == "HIT"
            # the corpus API's text search on a Milvus server
            page = fresh(ADMIN, "GET", "/v1/corpus", params={"text": passages[5][2:8]}).json()
            assert passages[5] in [p["content"] for p in page["items"]] and page["total"] >= 1
        finally:
            proc.terminate()
            proc.wait(60)
