"""The labelled input of a calibration: prompts with the biz_id that should answer them (``--pairs``),
and prompt pairs for the answer tier (``--answer-pairs``), read and validated line by line.

A malformed file raises ``PairsError`` naming the line, before any model is loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from writing.text import BadEncoding, numbered_lines


class PairsError(ValueError):
    """The pairs file is malformed; the message names the line."""


@dataclass(frozen=True)
class Pair:
    line: int
    prompt: str
    expected_biz_id: str | None
    kind: str | None = None


def load_pairs(path: Path) -> list[Pair]:
    """Read and validate the whole labelled file; the first problem raises ``PairsError``."""
    pairs: list[Pair] = []
    try:
        fh = path.open(encoding="utf-8", errors="strict")
    except OSError as exc:
        raise PairsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with fh:
        try:
            for lineno, line in numbered_lines(fh):
                if line.strip():
                    pairs.append(parse_pair(line, lineno, path))
        except BadEncoding as exc:
            raise PairsError(f"{path}:{exc.lineno}: not UTF-8 ({exc.reason})") from None
    if not pairs:
        raise PairsError(f"{path}: no labelled prompts in the file")
    return pairs


def parse_pair(line: str, lineno: int, path: Path | str = "<pairs>") -> Pair:
    where = f"{path}:{lineno}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise PairsError(f"{where}: not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(record, dict):
        raise PairsError(f"{where}: expected a JSON object with 'prompt' and 'expected_biz_id'")
    if "prompt" not in record:
        raise PairsError(f"{where}: missing 'prompt'")
    prompt = record["prompt"]
    if not isinstance(prompt, str) or not prompt.strip():
        raise PairsError(f"{where}: 'prompt' must be a non-empty string")
    if "expected_biz_id" not in record:
        raise PairsError(f"{where}: missing 'expected_biz_id' (a biz_id, or null when no stored passage should answer)")
    expected = record["expected_biz_id"]
    if expected is not None:
        # an integer is a biz_id as ingest.py accepts it (and as the reference's INT64 biz_id stores it)
        if isinstance(expected, bool) or not isinstance(expected, (str, int)):
            raise PairsError(
                f"{where}: 'expected_biz_id' must be a string, an integer or null, got {type(expected).__name__}"
            )
        expected = str(expected).strip()  # ingestion strips biz_ids too; compared as text
        if not expected:
            raise PairsError(f"{where}: 'expected_biz_id' is empty; use null for prompts that should miss")
    kind = record.get("kind")
    if kind is not None and not isinstance(kind, str):
        raise PairsError(f"{where}: 'kind' must be a string when present")
    return Pair(line=lineno, prompt=prompt, expected_biz_id=expected, kind=kind)


def load_answer_pairs(path: Path) -> list[dict]:
    """Prompt pairs for the answer tier: JSONL of {"a", "b", "label": "same"|"different", "kind"?}."""
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in numbered_lines(fh):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PairsError(f"{path}:{lineno}: not valid JSON: {exc.msg}") from None
            if not isinstance(row, dict) or not all(isinstance(row.get(k), str) and row[k].strip() for k in "ab"):
                raise PairsError(f"{path}:{lineno}: expected an object with non-empty strings 'a' and 'b'")
            if row.get("label") not in ("same", "different"):
                raise PairsError(f'{path}:{lineno}: \'label\' must be "same" or "different"')
            rows.append(row)
    if not rows:
        raise PairsError(f"{path}: no prompt pairs in the file")
    return rows
