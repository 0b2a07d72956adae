"""calibrate.py end to end: a real run over the sample corpus on a fresh Milvus Lite file."""

from __future__ import annotations

import json

import pytest

from tests.support.corpus import SAMPLE_CORPUS, load_corpus
from writing.cli import calibrate

# -- a real run ----------------------------------------------------------------------------------
UNRELATED = ["用Python写一个快速排序", "SQL里左连接和内连接有什么区别", "How do I change a flat bicycle tyre?"]


def test_end_to_end_on_a_fresh_milvus_lite_file(tmp_path, monkeypatch, model_path, capsys):
    corpus = load_corpus()
    chosen = [corpus[0], corpus[17], corpus[40]]
    lines = [{"prompt": c["content"], "expected_biz_id": c["biz_id"], "kind": "exact"} for c in chosen]
    lines += [{"prompt": p, "expected_biz_id": None, "kind": "unrelated"} for p in UNRELATED]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("EMBEDDING_MODEL", model_path)
    monkeypatch.setenv("MILVUS_LITE_PATH", str(tmp_path / "milvus.db"))
    monkeypatch.delenv("MILVUS_URI", raising=False)
    out = tmp_path / "out"

    argv = ["--pairs", str(pairs), "--out", str(out), "--ingest", "--corpus", str(SAMPLE_CORPUS)]
    assert calibrate.main(argv) == 0
    stdout = capsys.readouterr().out
    assert "| threshold |" in stdout and "recommended SIMILARITY_THRESHOLD=" in stdout

    for name in ("calibration.md", "calibration.json", "calibration.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "calibration.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((out / "calibration.json").read_text(encoding="utf-8"))
    assert doc["run"]["corpus_size"] == len(corpus)

    records = {r["prompt"]: r for r in doc["records"]}
    for c in chosen:  # the stored passage itself comes back as top-1
        assert records[c["content"]]["top1_biz_id"] == c["biz_id"]
        assert records[c["content"]]["similarity"] > 0.99
    rows = {r["threshold"]: r for r in doc["rows"]}
    assert len(rows) == 50
    for t in (0.95, 0.99):  # only the exact passages hit
        assert rows[t]["hits"] == 3 and rows[t]["precision"] == 1.0 and rows[t]["recall"] == 1.0
        assert rows[t]["wrong_hits"] == 0 and rows[t]["miss_rate"] == pytest.approx(0.5)
    rec = doc["recommendation"]
    assert rec["threshold"] is not None and rec["row"]["precision"] >= 0.98
    assert max(r["similarity"] for r in doc["records"] if r["expected_biz_id"] is None) < rec["threshold"]

    md = (out / "calibration.md").read_text(encoding="utf-8")
    assert "| threshold | hits | hit rate | precision | wrong-hit rate | miss rate | recall |" in md
    assert "## By kind at threshold" in md and "| exact | 3 | 3 | 3 |" in md

    # the corpus is stored already: a second run inserts nothing and gives the same answer
    assert calibrate.main(argv) == 0
    assert "inserted 0, skipped 72" in capsys.readouterr().err
    again = json.loads((out / "calibration.json").read_text(encoding="utf-8"))
    assert again["recommendation"]["threshold"] == rec["threshold"]
