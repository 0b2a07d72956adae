"""Quality and cost of the hit guard (writing.core.guard) on the labelled pairs, as Markdown.

    python -m bench.guard                 # rjieba, the guard's segmenter
    python -m bench.guard --tagger jieba  # the same rules over jieba's posseg, if jieba is installed
    python -m bench.guard --tagger all

Quality, per tier (generated: data/guard_pairs.jsonl; curated: data/guard_curated_pairs.jsonl against
data/sample_corpus.jsonl) and split (design: what the rules were written from; holdout: not): the share
of "different" pairs rejected by kind, the share of "same" pairs wrongly rejected, and every pair the
guard gets wrong. Per rule (writing.core.guard.tiers), its precision and recall on those pairs: as
served (the first rule to reject decides) and alone (every rule run on every pair). Also the curated
paraphrases of data/eval_pairs.jsonl, which should all pass.

Cost: first-use load of the segmenter (a fresh guard in this process), and microseconds per
``check``: cold (neither text analysed), prompt-cold (the candidate already analysed, as a stored
prompt or passage is in service) and warm (both cached), p50 and p90 over all pairs, a few rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from writing.adapters.segmenter import RJiebaTagger
from writing.core.guard import HitGuard, Tagger, Tier

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


class JiebaTagger:
    """jieba 0.42's posseg behind the guard's Tagger protocol, for comparison only."""

    def __init__(self) -> None:
        self.load_seconds: float | None = None
        self._pos = None
        self._tok = None

    def _load(self) -> None:
        if self._pos is None:
            started = time.perf_counter()
            import jieba
            import jieba.posseg

            jieba.setLogLevel(60)
            self._tok = jieba.Tokenizer()
            self._pos = jieba.posseg.POSTokenizer(self._tok)
            self._pos.cut("预热")  # jieba loads its dictionary on the first cut
            self.load_seconds = time.perf_counter() - started

    def tag(self, text: str) -> list[tuple[str, str]]:
        self._load()
        return [(p.word, p.flag) for p in self._pos.cut(text)]

    def subwords(self, word: str) -> list[str]:
        self._load()
        return list(self._tok.cut_for_search(word))


TAGGERS: dict[str, Callable[[], Tagger]] = {"rjieba": RJiebaTagger, "jieba": JiebaTagger}


def load(name: str) -> list[dict]:
    with open(DATA / name, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def cases() -> list[tuple[dict, str, str, str]]:
    """(row, tier, prompt, candidate) for every labelled pair."""
    corpus = {r["biz_id"]: r["content"] for r in load("sample_corpus.jsonl")}
    out = [(r, "generated", r["a"], r["b"]) for r in load("guard_pairs.jsonl")]
    out += [(r, "curated", r["prompt"], corpus[r["biz_id"]]) for r in load("guard_curated_pairs.jsonl")]
    return out


def pct(n: int, d: int) -> str:
    return f"{n}/{d} ({100 * n / d:.0f}%)" if d else "-"


def quality(guard: HitGuard, name: str) -> None:
    results = [(row, tier, a, b, guard.check(a, b, tier)) for row, tier, a, b in cases()]
    print(f"\n## Quality with {name}\n")
    print("| tier | split | different rejected | same wrongly rejected | exact rejected |")
    print("| --- | --- | --- | --- | --- |")
    for tier in ("generated", "curated"):
        for split in ("design", "holdout"):
            rows = [(r, v) for r, t, _, _, v in results if t == tier and r["split"] == split]
            diff = [v for r, v in rows if r["label"] == "different"]
            same = [v for r, v in rows if r["label"] == "same"]
            exact = [v for r, v in rows if r["kind"] == "exact"]
            print(
                f"| {tier} | {split} | {pct(sum(not v.ok for v in diff), len(diff))} "
                f"| {pct(sum(not v.ok for v in same), len(same))} | {pct(sum(not v.ok for v in exact), len(exact))} |"
            )
    print("\nBy kind (rejected / pairs; for same pairs, a rejection is an error):\n")
    kinds = sorted({r["kind"] for r, *_ in results}, key=lambda k: (k not in ("reworded", "exact"), k))
    print("| tier | split | " + " | ".join(kinds) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in kinds) + " |")
    for tier in ("generated", "curated"):
        for split in ("design", "holdout"):
            counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            for r, t, _, _, v in results:
                if t == tier and r["split"] == split:
                    counts[r["kind"]][0] += not v.ok
                    counts[r["kind"]][1] += 1
            cells = [f"{counts[k][0]}/{counts[k][1]}" if counts[k][1] else "-" for k in kinds]
            print(f"| {tier} | {split} | " + " | ".join(cells) + " |")
    reasons: dict[tuple[str, str], int] = defaultdict(int)
    for r, _, _, _, v in results:
        if r["label"] == "different" and not v.ok:
            reasons[(r["kind"], v.reason or "")] += 1
    print("\nReason given for rejected different pairs (kind -> reason: count): ", end="")
    print(", ".join(f"{k} -> {reason}: {n}" for (k, reason), n in sorted(reasons.items())))
    print("\nWrong verdicts:\n")
    for r, tier, a, b, v in results:
        if v.ok == (r["label"] == "different"):
            what = "missed" if v.ok else f"wrongly rejected ({v.reason}: {v.detail})"
            print(f"- {r['split']} {tier} {r['kind']}: {what}: `{a[:60]}` vs `{b[:40]}`")
    per_rule(guard, results)
    corpus = {r["biz_id"]: r["content"] for r in load("sample_corpus.jsonl")}
    paraphrases = [r for r in load("eval_pairs.jsonl") if r.get("expected_biz_id")]
    wrong = [r for r in paraphrases if not guard.check(r["prompt"], corpus[r["expected_biz_id"]], "curated").ok]
    print(
        f"\ndata/eval_pairs.jsonl, prompts with their expected passage: {pct(len(wrong), len(paraphrases))} wrongly rejected"
    )
    for r in wrong:
        print(f"- `{r['prompt']}` vs {r['expected_biz_id']}")


def per_rule(guard: HitGuard, results: list) -> None:
    """Each rule's rejections of pairs labelled different (right) and same (wrong), per tier: as served,
    where the first rule to reject decides, and alone, every rule run on every pair (``rejections``).
    Precision: right / all its rejections; recall: right / the tier's pairs labelled different."""
    print("\n## Per rule\n")
    print("Rejections of pairs labelled different / same; precision = different / all its rejections, recall =")
    print("different / the tier's pairs labelled different. Served: the first rule to reject decides the")
    print("verdict; alone: the rule run on every pair by itself.\n")
    print(
        "| tier | rule | reason | served: diff / same | precision | recall | alone: diff / same | precision | recall |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    tiers: tuple[Tier, ...] = ("generated", "curated")
    for tier in tiers:
        rows = [(r["label"], guard.rejections(a, b, tier)) for r, t, a, b, _ in results if t == tier]
        different = sum(label == "different" for label, _ in rows)
        for rule in guard.rules[tier]:
            served = [label for label, found in rows if found and next(iter(found)) == rule.name]
            alone = [label for label, found in rows if rule.name in found]
            cells = []
            for labels in (served, alone):
                right, wrong = labels.count("different"), labels.count("same")
                precision = f"{100 * right / (right + wrong):.0f}%" if labels else "-"
                cells.append(f"{right} / {wrong} | {precision} | {pct(right, different)}")
            print(f"| {tier} | {rule.name} | {rule.reason} | " + " | ".join(cells) + " |")


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def timed(guard: HitGuard, a: str, b: str, tier: Tier) -> float:
    """Microseconds for one ``check``."""
    started = time.perf_counter()
    guard.check(a, b, tier)
    return (time.perf_counter() - started) * 1e6


def cost(factory: Callable[[], Tagger], name: str, rounds: int) -> list[str]:
    tagger = factory()
    guard = HitGuard(tagger=tagger)
    guard.check("写一篇厦门旅游攻略", "写一篇福州旅游攻略", "generated")  # first use loads the dictionary
    load_ms = (getattr(tagger, "load_seconds", None) or 0.0) * 1000
    pairs = [(tier, a, b) for _, tier, a, b in cases() if a.strip() != b.strip()]
    rows = []
    tiers: tuple[Tier, ...] = ("generated", "curated")
    for tier in tiers:
        mine = [(a, b) for t, a, b in pairs if t == tier]
        cold, prompt_cold, warm = [], [], []
        for _ in range(rounds):
            for a, b in mine:
                guard.cache_clear()
                cold.append(timed(guard, a, b, tier))
                guard.cache_clear()
                guard.analyse(b)
                prompt_cold.append(timed(guard, a, b, tier))
                warm.append(timed(guard, a, b, tier))
        cells = [f"{percentile(xs, 50):.0f} / {percentile(xs, 90):.0f}" for xs in (cold, prompt_cold, warm)]
        rows.append(f"| {name} | {load_ms:.0f} | {tier} | {len(mine)} | " + " | ".join(cells) + " |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tagger", choices=[*TAGGERS, "all"], default="rjieba")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds over all pairs")
    args = parser.parse_args(argv)
    names = list(TAGGERS) if args.tagger == "all" else [args.tagger]
    timing = []
    for name in names:
        try:
            timing += cost(TAGGERS[name], name, args.rounds)
        except ImportError as exc:
            print(f"\n{name}: not installed ({exc}); skipped")
            continue
        quality(HitGuard(tagger=TAGGERS[name]()), name)
    if timing:
        print("\n## Cost per check (microseconds, p50 / p90)\n")
        print("| segmenter | first-use load (ms) | tier | pairs | cold | prompt cold, candidate cached | warm |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        print("\n".join(timing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
