"""Estimate the judge's error rates on labelled pairs, for VERIFY_JUDGE_MISS_RATE and
VERIFY_JUDGE_FALSE_ALARM_RATE:

    python -m writing.cli.judge_errors [--pairs data/guard_curated_pairs.jsonl] [--corpus data/sample_corpus.jsonl]

Each pair is a request and a curated passage (by biz_id) labelled ``same`` (the passage fulfils the
request) or ``different``; the configured LLM (LLM_BASE_URL, LLM_MODEL) judges each with the prompt that
verification uses (``writing.core.budget.judging``). Prints the raw rates and the values to set: each
at the safe end of its 95% interval (misses high, false alarms low), as ``estimate_judge_errors`` says.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from writing.core.budget.bound import estimate_judge_errors
from writing.core.budget.judging import PARAMS, judge_messages, parse_verdict
from writing.errors import LLMError

AT_ONCE = 4


def load_pairs(pairs: Path, corpus: Path) -> list[tuple[str, str, bool]]:
    """(request, passage text, truly wrong) for each pair whose biz_id is in the corpus."""
    texts = {}
    for line in corpus.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            texts[str(row["biz_id"])] = row["content"]
    out = []
    for line in pairs.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if str(row["biz_id"]) in texts:
                out.append((row["prompt"], texts[str(row["biz_id"])], row["label"] != "same"))
    return out


async def judge_all(llm, pairs: list[tuple[str, str, bool]]) -> tuple[list[tuple[bool, bool]], int]:
    gate = asyncio.Semaphore(AT_ONCE)
    unclear = 0

    async def one(request: str, text: str, wrong: bool) -> tuple[bool, bool] | None:
        nonlocal unclear
        async with gate:
            completion = await llm.complete(judge_messages(request, text), PARAMS)
        verdict = parse_verdict(completion.text)
        if verdict is None:
            unclear += 1
            return None
        return wrong, verdict

    found = await asyncio.gather(*(one(*p) for p in pairs))
    return [f for f in found if f is not None], unclear


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Estimate the LLM judge's error rates on labelled pairs.")
    parser.add_argument("--pairs", type=Path, default=Path("data/guard_curated_pairs.jsonl"))
    parser.add_argument("--corpus", type=Path, default=Path("data/sample_corpus.jsonl"))
    args = parser.parse_args(argv)
    from writing.settings import load_settings
    from writing.wiring import build_llm

    settings = load_settings()
    pairs = load_pairs(args.pairs, args.corpus)
    if not pairs:
        print(f"error: no pair of {args.pairs} names a passage of {args.corpus}", file=sys.stderr)
        return 1

    async def run() -> tuple[list[tuple[bool, bool]], int]:
        llm = build_llm(settings)
        try:
            return await judge_all(llm, pairs)
        finally:
            await llm.close()

    try:
        verdicts, unclear = asyncio.run(run())
    except LLMError as exc:
        print(f"error: the LLM at {settings.llm_base_url} failed ({exc.code}): {exc}", file=sys.stderr)
        return 1
    wrong = [j for t, j in verdicts if t]
    right = [j for t, j in verdicts if not t]
    safe = estimate_judge_errors(verdicts)
    report = {
        "pairs": len(pairs),
        "judged": len(verdicts),
        "no_verdict": unclear,
        "miss_rate": round(sum(1 for j in wrong if not j) / len(wrong), 4) if wrong else None,
        "false_alarm_rate": round(sum(1 for j in right if j) / len(right), 4) if right else None,
        "VERIFY_JUDGE_MISS_RATE": round(min(safe.miss, 0.49), 4),
        "VERIFY_JUDGE_FALSE_ALARM_RATE": round(safe.false_alarm, 4),
    }
    print(json.dumps(report, ensure_ascii=False, indent=1))
    raw = (report["miss_rate"] or 0.0) + (report["false_alarm_rate"] or 0.0)
    if raw >= 0.9 or not wrong or not right:
        print(
            "warning: this judge tells right from wrong no better than chance on these pairs: its verdicts "
            "cannot show a budget kept; do not switch VERIFY on with it",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
