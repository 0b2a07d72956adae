"""The hit guard's golden verdicts: every labelled pair of data/ with the verdict the guard gives it.

    .venv/bin/python -m tests.unit.core.guard_golden          # rewrite data/guard_golden.jsonl
    .venv/bin/python -m tests.unit.core.guard_golden --check  # compare, print the differences

Written once from the guard as it stood before it was split into a package (issue 22), so that the
refactor can be shown to change no verdict: tests/unit/core/test_guard.py recomputes every row and
compares it with the file exactly (ok, reason and detail). Rewrite it only for a deliberate change of
behaviour, and say so in the commit.

The pairs, as bench/guard.py and the tests use them:

* data/guard_pairs.jsonl: the generated tier, ``check(a, b)``, and also ``check(b, a)`` (``reversed``):
  the tier is checked both ways, and the order of the two directions shows in the verdict's detail;
* data/guard_curated_pairs.jsonl: the curated tier, ``check(prompt, passage of biz_id)``;
* data/eval_pairs.jsonl: the curated tier, ``check(prompt, passage)`` with the row's
  ``expected_biz_id`` (exact, paraphrase) or, for a near miss, the passage it is ``near``. Rows with
  neither (unrelated prompts, near misses of no particular passage) name no candidate and are left out.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "data"
GOLDEN = DATA / "guard_golden.jsonl"
FIELDS = ("file", "line", "tier", "reversed", "prompt", "candidate", "ok", "reason", "detail")


def _rows(name: str) -> Iterator[tuple[int, dict]]:
    with open(DATA / name, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                yield lineno, json.loads(line)


def cases() -> list[dict]:
    """Every (file, line, tier, prompt, candidate) the golden file holds, in its order."""
    corpus = {r["biz_id"]: r["content"] for _, r in _rows("sample_corpus.jsonl")}
    out: list[dict] = []

    def add(name: str, lineno: int, tier: str, prompt: str, candidate: str, reversed_: bool = False) -> None:
        out.append(
            {
                "file": f"data/{name}",
                "line": lineno,
                "tier": tier,
                "reversed": reversed_,
                "prompt": prompt,
                "candidate": candidate,
            }
        )

    for lineno, r in _rows("guard_pairs.jsonl"):
        add("guard_pairs.jsonl", lineno, "generated", r["a"], r["b"])
        add("guard_pairs.jsonl", lineno, "generated", r["b"], r["a"], reversed_=True)
    for lineno, r in _rows("guard_curated_pairs.jsonl"):
        add("guard_curated_pairs.jsonl", lineno, "curated", r["prompt"], corpus[r["biz_id"]])
    for lineno, r in _rows("eval_pairs.jsonl"):
        biz_id = r.get("expected_biz_id") or r.get("near")
        if biz_id:
            add("eval_pairs.jsonl", lineno, "curated", r["prompt"], corpus[biz_id])
    return out


def verdicts(guard) -> list[dict]:
    """The golden rows as ``guard`` (a ``HitGuard``) gives them."""
    out = []
    for case in cases():
        v = guard.check(case["prompt"], case["candidate"], case["tier"])
        out.append({**case, "ok": v.ok, "reason": v.reason, "detail": v.detail})
    return out


def load() -> list[dict]:
    with open(GOLDEN, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def default_guard():
    from writing.core.guard import HitGuard

    try:
        from writing.adapters.segmenter import RJiebaTagger
    except ImportError:  # the guard before issue 22 held its own segmenter
        return HitGuard()
    return HitGuard(tagger=RJiebaTagger())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    args = parser.parse_args(argv)
    rows = verdicts(default_guard())
    if args.check:
        golden = load()
        differ = [(g, r) for g, r in zip(golden, rows, strict=False) if g != r]
        for g, r in differ:
            print(
                f"{g['file']}:{g['line']} {g['tier']}: golden {g['reason']} {g['detail']!r}, now {r['reason']} {r['detail']!r}"
            )
        print(
            f"{len(rows)} rows, {len(differ)} differ"
            + ("" if len(golden) == len(rows) else f", golden has {len(golden)}")
        )
        return 1 if differ or len(golden) != len(rows) else 0
    with open(GOLDEN, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} rows written to {GOLDEN.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
