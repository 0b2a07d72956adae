"""ingest.py: idempotent, reports malformed lines, survives being interrupted and re-run."""

from __future__ import annotations

import json

from tests.support.corpus import SAMPLE_CORPUS, ingest_sample, load_corpus


def test_ingesting_twice_stores_each_passage_once(make_settings, embedder):
    settings = make_settings()
    first, total = ingest_sample(settings, embedder)
    n = len(load_corpus())
    assert (first.read, first.inserted, first.skipped, total) == (n, n, 0, n)
    second, total = ingest_sample(settings, embedder)
    assert (second.read, second.inserted, second.skipped, total) == (n, 0, n, n)


def test_interrupted_ingestion_rerun_ends_with_every_passage_once(make_settings, embedder, tmp_path):
    settings = make_settings()
    lines = SAMPLE_CORPUS.read_text(encoding="utf-8").splitlines()
    partial = tmp_path / "partial.jsonl"
    partial.write_text("\n".join(lines[:25]) + "\n", encoding="utf-8")  # the run that died
    ingest_sample(settings, embedder, partial)
    summary, total = ingest_sample(settings, embedder)
    assert (summary.inserted, summary.skipped, total) == (len(lines) - 25, 25, len(lines))


def test_malformed_lines_are_reported_and_the_rest_is_kept(make_settings, embedder, tmp_path, capsys, monkeypatch):
    from writing.cli import ingest

    settings = make_settings()
    src = tmp_path / "mixed.jsonl"
    src.write_text(
        "\n".join(
            [
                json.dumps({"content": "第一段，春天的花开了。", "biz_id": "a"}, ensure_ascii=False),
                "{not json",
                json.dumps({"biz_id": "no-content"}),
                "",
                json.dumps({"content": "第二段，夏天的雨来了。", "biz_id": 7}, ensure_ascii=False),
                json.dumps({"content": "第一段，春天的花开了。  ", "biz_id": "dup"}, ensure_ascii=False),
                json.dumps(["a list"]),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    for key, value in (("EMBEDDING_MODEL", settings.embedding_model), ("MILVUS_LITE_PATH", settings.milvus_lite_path)):
        monkeypatch.setenv(key, value)
    rc = ingest.main([str(src), "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 1
    assert f"{src}:2: not valid JSON" in err
    assert f"{src}:3: 'content' must be a non-empty string" in err
    assert f"{src}:7:" in err
    assert "read 3, inserted 2, skipped 1" in out and "now holds 2 passages" in out


def test_a_folder_of_text_files(make_settings, embedder, tmp_path):
    folder = tmp_path / "texts"
    (folder / "sub").mkdir(parents=True)
    (folder / "autumn.txt").write_text("秋天的风吹过田野。\n金黄的稻穗低下了头。", encoding="utf-8")
    (folder / "sub" / "winter.txt").write_text("冬天的早晨，窗上结满了冰花。", encoding="utf-8")
    (folder / "empty.txt").write_text("  \n", encoding="utf-8")
    (folder / "notes.md").write_text("ignored", encoding="utf-8")
    summary, total = ingest_sample(make_settings(), embedder, folder)
    assert (summary.read, summary.inserted, total) == (2, 2, 2)
    assert [p.where.endswith("empty.txt") for p in summary.problems] == [True]


def test_reembed_fills_a_new_collection_and_keeps_the_old(make_settings, embedder, tmp_path, monkeypatch, capsys):
    """A corpus built with another model (1024-dim, as bge-large-zh) is re-embedded with the test model."""
    import numpy as np

    from writing.adapters.milvus.corpus import MilvusStore
    from writing.cli import ingest
    from writing.core.models import Passage

    settings = make_settings()
    old = MilvusStore(lite_path=settings.milvus_lite_path, collection="writing")
    old.open(1024)
    corpus = load_corpus()[:40]
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(corpus), 1024)).astype("float32")
    old.insert(
        [Passage(p["content"], p["biz_id"]) for p in corpus], vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    )
    old.close()

    for key, value in (("EMBEDDING_MODEL", settings.embedding_model), ("MILVUS_LITE_PATH", settings.milvus_lite_path)):
        monkeypatch.setenv(key, value)
    assert ingest.main(["--reembed", "--target", "writing_minilm", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "inserted 40" in out and "MILVUS_COLLECTION=writing_minilm" in out
    assert ingest.main(["--reembed", "--target", "writing_minilm", "--no-progress"]) == 0  # resumable/idempotent
    assert "inserted 0, skipped 40" in capsys.readouterr().out

    new = MilvusStore(lite_path=settings.milvus_lite_path, collection="writing_minilm")
    new.open(embedder.dim)
    try:
        assert new.count() == 40
        top = new.search(embedder.embed_queries([corpus[7]["content"]])[0], 1)[0]
        assert top.biz_id == corpus[7]["biz_id"] and top.similarity >= 0.99
        old_again = new.sibling("writing")
        old_again.open(None)
        assert old_again.count() == 40  # the old collection is kept
        # a passage deleted from the old collection after a first run must not come back with the next
        gone = old_again.list_passages(biz_id=corpus[3]["biz_id"])[0]["id"]
        assert old_again.delete_passages(ids=[gone]) == 1
    finally:
        new.close()  # one process owns a Lite file: ingest.main opens it next

    assert ingest.main(["--reembed", "--target", "writing_minilm", "--no-progress"]) == 0
    assert "removed 1 (deleted from the source)" in capsys.readouterr().out
    new = MilvusStore(lite_path=settings.milvus_lite_path, collection="writing_minilm")
    new.open(embedder.dim)
    try:
        assert new.count() == 39 and not new.list_passages(biz_id=corpus[3]["biz_id"])
    finally:
        new.close()
