"""scripts/run.sh's stand-in (m3e-small) and the committed calibration report its thresholds come from
(docs/calibration/m3e-small): no model is loaded, the report holds every measurement."""

from __future__ import annotations

from tests.support.standin import DEMO_HIT, DEMO_MISS, m3e_report, run_script_default


def row(rows: list[dict], threshold: float) -> dict:
    return next(r for r in rows if abs(r["threshold"] - threshold) < 1e-9)


def test_run_script_defaults_to_m3e_small_mean_pooled():
    assert run_script_default("EMBEDDING_POOLING") == "mean"
    assert m3e_report()["run"]["embedding_model"] == "embedding/m3e-small"


def test_the_curated_threshold_keeps_precision_and_serves_the_demo():
    """HIT_GUARD=on (the default): at run.sh's threshold the report's precision is 60/62; the README's
    hit prompt hits the Guangzhou passage with room to spare, and its miss prompt misses."""
    threshold = float(run_script_default("SIMILARITY_THRESHOLD"))
    report = m3e_report()
    on = row(report["second_check"]["Curated tier"]["on"]["rows"], threshold)
    assert on["precision"] >= 0.96 and on["hits"] >= 60, on
    records = {r["prompt"]: r for r in report["records"]}
    prompt, biz_id = DEMO_HIT
    hit = records[prompt]
    assert hit["top1_biz_id"] == biz_id and hit["guard"] == "pass"
    assert hit["similarity"] >= threshold + 0.01, hit  # a margin over bf16 / fp32 differences (0.001)
    assert records[DEMO_MISS]["similarity"] < threshold - 0.05


def test_the_answer_threshold_keeps_precision():
    threshold = float(run_script_default("ANSWER_CACHE_THRESHOLD"))
    on = row(m3e_report()["second_check"]["Answer tier"]["on"]["rows"], threshold)
    assert on["precision"] >= 0.98, on
