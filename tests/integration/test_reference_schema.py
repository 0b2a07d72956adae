"""A collection made by the reference works as it is (issue: hardening, item 5).

The reference creates ``writing`` with an auto id, ``content_vector``, ``content_full`` and an INT64
``biz_id``, and no content hash. Pointed at it, the service answers from it (integer biz_ids come back
as integers), refuses writes with a 409 that names the migration command, and that command copies it
into a collection of the service's schema without re-embedding.
"""

from __future__ import annotations

import json

import pytest

from tests.support.apps import running_app
from tests.support.corpus import load_corpus
from writing.devtools.fake_llm import FakeLLM

N = 12


def reference_collection(path: str, embedder, name: str = "writing") -> list[dict]:
    """What the reference's own set-up makes: its schema, its integer biz_ids, its vectors."""
    from pymilvus import DataType, MilvusClient

    passages = [{"content": p["content"], "biz_id": 1000 + i} for i, p in enumerate(load_corpus()[:N])]
    client = MilvusClient(path)
    try:
        schema = MilvusClient.create_schema(auto_id=True, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("content_vector", DataType.FLOAT_VECTOR, dim=embedder.dim)
        schema.add_field("content_full", DataType.VARCHAR, max_length=65535)
        schema.add_field("biz_id", DataType.INT64)
        index = client.prepare_index_params()
        index.add_index("content_vector", index_type="AUTOINDEX", metric_type="COSINE")
        client.create_collection(name, schema=schema, index_params=index)
        vectors = embedder.embed([p["content"] for p in passages])
        rows = [
            {"content_vector": [float(x) for x in v], "content_full": p["content"], "biz_id": p["biz_id"]}
            for p, v in zip(passages, vectors, strict=True)
        ]
        client.insert(name, rows)
    finally:
        client.close()
    return passages


@pytest.fixture
def reference_db(make_settings, embedder):
    settings = make_settings()
    passages = reference_collection(settings.milvus_lite_path, embedder)
    return settings, passages


async def test_a_reference_collection_answers_with_its_text_and_integer_biz_id(reference_db, make_settings):
    settings, passages = reference_db
    target = passages[4]
    with FakeLLM() as fake:
        async with running_app(make_settings(llm_base_url=fake.base_url)) as client:
            r = await client.post("/v1/generate", json={"prompt": target["content"]})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["source"] == "milvus" and body["content"] == target["content"]
            assert body["match"]["biz_id"] == target["biz_id"]  # an integer, as stored
            r = await client.get("/generate", params={"prompt": target["content"]})
            assert r.status_code == 200 and r.json() == target["content"]

            found = await client.post("/v1/search", json={"prompt": target["content"]})
            assert found.json()["matches"][0]["biz_id"] == target["biz_id"]
            stats = (await client.get("/v1/corpus/stats")).json()
            assert stats["read_only"] is True and stats["count"] == N

            listed = await client.get("/v1/corpus", params={"biz_id": str(target["biz_id"])})
            assert listed.status_code == 200 and listed.json()["items"][0]["biz_id"] == target["biz_id"]
            wrong = await client.get("/v1/corpus", params={"biz_id": "season-03"})
            assert wrong.status_code == 422 and "integer biz_ids" in wrong.json()["error"]["message"]

            export = (await client.get("/v1/corpus/export")).text.splitlines()
            assert len(export) == N and all(isinstance(json.loads(x)["biz_id"], int) for x in export)

            for method, path, kwargs in (
                ("POST", "/v1/corpus", {"json": {"content": "新的一段", "biz_id": "x"}}),
                ("DELETE", f"/v1/corpus/{found.json()['matches'][0]['id']}", {}),
                ("DELETE", "/v1/corpus", {"params": {"biz_id": "1000"}}),
            ):
                r = await client.request(method, path, **kwargs)
                assert r.status_code == 409, (path, r.text)
                assert "python ingest.py --migrate" in r.json()["error"]["message"]
            assert (await client.get("/v1/corpus/stats")).json()["count"] == N  # nothing changed


def test_one_command_moves_it_into_the_service_schema_without_re_embedding(reference_db, embedder, monkeypatch, capsys):
    from writing.adapters.milvus.corpus import MilvusStore
    from writing.cli import ingest

    settings, passages = reference_db
    monkeypatch.setenv("MILVUS_LITE_PATH", settings.milvus_lite_path)
    monkeypatch.setenv("EMBEDDING_MODEL", "/nonexistent/model")  # --migrate loads no model at all
    assert ingest.main(["--migrate", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"inserted {N}" in out and "MILVUS_COLLECTION=writing_v2" in out
    assert ingest.main(["--migrate", "--no-progress"]) == 0  # again: nothing to add
    assert f"inserted 0, skipped {N}" in capsys.readouterr().out

    old = MilvusStore(lite_path=settings.milvus_lite_path, collection="writing")
    old.open(None)
    new = old.sibling("writing_v2")
    new.open(embedder.dim)
    try:
        assert not new.read_only and new.count() == N
        query = embedder.embed_queries([passages[7]["content"]])[0]
        before, after = old.search(query, 1)[0], new.search(query, 1)[0]
        assert after.content == before.content and after.similarity == pytest.approx(before.similarity, abs=1e-6)
        assert after.biz_id == str(passages[7]["biz_id"])  # the service's schema stores biz_ids as text
    finally:
        new.close()
        old.close()
