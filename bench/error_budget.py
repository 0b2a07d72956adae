"""Does the error budget keep its promise? A simulation over the labelled pairs (issue 27; not in CI).

    .venv/bin/python -m bench.error_budget [--requests 100000] [--out docs/benchmarks]

**Situations.** Every labelled pair becomes one situation: a request and the candidate the tier would
find for it, with their similarity under the Chinese stand-in embedding (m3e-small) and whether serving
the candidate would be right.
- curated: each prompt of data/eval_pairs.jsonl against its most similar passage of
  data/sample_corpus.jsonl (the entry); right when its biz_id is the one expected (a prompt that expects
  none is wrong with any passage);
- answer: each pair of data/guard_pairs.jsonl, ``a`` asking and the stored answer for ``b`` found
  (the entry is ``b``); right when the pair is labelled ``same``.

The situations of each tier are split in half (seeded): the static baseline is calibrated on one half
(the lowest threshold whose wrong-hit share of that half's hits is within the budget); the traffic is
drawn from the other, with repetition, Zipf (s=1.1) over a seeded order, as real traffic repeats its
paraphrases and near misses.

**Policies**, on the same traffic: static 0.75; static calibrated; and the budgeted policy
(``writing.core.budget``): it starts at the configured threshold (the tier's default), verifies sampled
hits and near misses with a judge that errs at a set rate (both ways; its rates estimated from all the
labelled pairs of the other half, then corrected for), at most ``--verify-per-minute`` at ``--rps``
requests a second, and re-plans its thresholds (tier and per entry) every ``--replan`` requests.

**Read-outs.** The wrong-hit rate per window of ``--window`` requests; the warm-up (the first window
after which every window is within the budget); after it, the achieved wrong-hit rate and hit rate,
and the static thresholds' hit rate at the same achieved error (interpolated along the static curve
swept over thresholds on the same traffic); verification calls. A learning-curve plot is written.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.harness import EVAL_PAIRS, ROOT, SAMPLE_CORPUS, load_jsonl, machine_info
from writing.core.budget.bound import estimate_judge_errors
from writing.core.budget.labels import Label
from writing.core.budget.sampling import SamplingRule
from writing.core.budget.thresholds import Budget, plan

GUARD_PAIRS = ROOT / "data" / "guard_pairs.jsonl"
TIERS = {"curated": (0.75, 0.5, 1.0), "answer": (0.92, 0.5, 1.0)}  # configured, run-time low, high


@dataclass(frozen=True)
class Situation:
    entry: int
    similarity: float
    right: bool


def embed(texts: list[str]) -> dict[str, np.ndarray]:
    from writing.adapters.embedding.encoder import Embedder
    from writing.devtools.standin_models import M3E_SMALL

    model = Embedder(str(M3E_SMALL.path()), pooling=M3E_SMALL.pooling)
    unique = sorted(set(texts))
    vectors = np.concatenate([model.embed(unique[i : i + 32]) for i in range(0, len(unique), 32)])
    return dict(zip(unique, vectors, strict=True))


def situations() -> dict[str, list[Situation]]:
    corpus = load_jsonl(SAMPLE_CORPUS)
    evals = load_jsonl(EVAL_PAIRS)
    guards = load_jsonl(GUARD_PAIRS)
    vec = embed([r["content"] for r in corpus] + [r["prompt"] for r in evals] + [r[k] for r in guards for k in "ab"])
    passages = np.stack([vec[r["content"]] for r in corpus])
    curated = []
    for r in evals:
        sims = passages @ vec[r["prompt"]]
        top = int(np.argmax(sims))
        curated.append(Situation(top, min(1.0, float(sims[top])), corpus[top]["biz_id"] == r["expected_biz_id"]))
    entries: dict[str, int] = {}
    answer = [
        Situation(
            entries.setdefault(r["b"], len(entries)), min(1.0, float(vec[r["a"]] @ vec[r["b"]])), r["label"] == "same"
        )
        for r in guards
    ]
    return {"curated": curated, "answer": answer}


def split(rows: list[Situation], seed: int) -> tuple[list[Situation], list[Situation]]:
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    half = len(rows) // 2
    return [rows[i] for i in order[:half]], [rows[i] for i in order[half:]]


def traffic(rows: list[Situation], n: int, seed: int) -> list[Situation]:
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, len(rows) + 1) ** 1.1
    order = rng.permutation(len(rows))
    picks = rng.choice(len(rows), size=n, p=weights / weights.sum())
    return [rows[order[i]] for i in picks]


def calibrate(rows: list[Situation], budget: float, high: float) -> float:
    """The lowest threshold whose hits on these rows are at most ``budget`` wrong (point estimate)."""
    for t in sorted({r.similarity for r in rows}):
        hits = [r for r in rows if r.similarity >= t]
        if hits and sum(not r.right for r in hits) / len(hits) <= budget:
            return t
    return high


def static_run(stream: list[Situation], threshold: float) -> tuple[float, float]:
    hits = [s for s in stream if s.similarity >= threshold]
    wrong = sum(not s.right for s in hits)
    return (wrong / len(hits) if hits else 0.0), len(hits) / len(stream)


def static_curve(stream: list[Situation]) -> list[tuple[float, float, float]]:
    """(error, hit rate, threshold) for thresholds swept over the stream's similarities, by error."""
    grid = sorted({round(s.similarity, 3) for s in stream})
    return sorted((*static_run(stream, t), t) for t in grid)


def hit_rate_at(curve: list[tuple[float, float, float]], error: float) -> float:
    """The best static hit rate at an achieved error of at most ``error`` (interpolated between points)."""
    best = 0.0
    for (e0, h0, _), (e1, h1, _) in zip(curve, curve[1:], strict=False):
        if e1 <= error:
            best = max(best, h0, h1)
        elif e0 <= error < e1:
            best = max(best, h0 + (h1 - h0) * (error - e0) / (e1 - e0))
    return best


@dataclass
class Run:
    windows: list[tuple[float, float]]  # (wrong-hit rate, hit rate) per window
    verified: int
    capped: int
    final_threshold: float
    entries_with_own: int


def budgeted_run(
    stream: list[Situation],
    *,
    tier: str,
    budget: Budget,
    judge_error: float,
    calibration: list[Situation],
    args: argparse.Namespace,
    seed: int,
) -> Run:
    rng = random.Random(seed)
    # the judge's error rates, estimated on labelled pairs (the calibration half), as the service would
    judged = [(not s.right, (not s.right) != (rng.random() < judge_error)) for s in calibration]
    errors = estimate_judge_errors(judged)
    configured = TIERS[tier][0]
    rule = SamplingRule()
    labels: list[Label] = []
    per_entry: dict[int, int] = defaultdict(int)
    current = plan([], budget, errors, configured)
    cap_window: list[float] = []
    windows, verified, capped = [], 0, 0
    hits = wrong = 0
    for i, s in enumerate(stream):
        now = i / args.rps
        threshold = current.threshold_for(s.entry)
        hit = s.similarity >= threshold
        hits += hit
        wrong += hit and not s.right
        if rule.considers(s.similarity, threshold, budget.low):
            p = rule.probability(s.similarity, threshold, per_entry[s.entry])
            if rng.random() < p:
                while cap_window and now - cap_window[0] >= 60.0:
                    cap_window.pop(0)
                if len(cap_window) >= args.verify_per_minute:
                    capped += 1
                else:
                    cap_window.append(now)
                    says_wrong = (not s.right) != (rng.random() < judge_error)
                    labels.append(Label(tier, s.entry, s.similarity, wrong=says_wrong, sampled_with=p))
                    per_entry[s.entry] += 1
                    verified += 1
        if (i + 1) % args.replan == 0:
            current = plan(labels, budget, errors, configured)
        if (i + 1) % args.window == 0:
            windows.append((wrong / hits if hits else 0.0, hits / args.window))
            hits = wrong = 0
    return Run(windows, verified, capped, current.tier.value, len(current.entries))


def warm_up(windows: list[tuple[float, float]], budget: float) -> int | None:
    """The number of windows before which every later window is within the budget (None: never)."""
    for k in range(len(windows)):
        if all(e <= budget for e, _ in windows[k:]):
            return k
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=5_000)
    parser.add_argument("--replan", type=int, default=1_000)
    parser.add_argument("--rps", type=float, default=10.0)
    parser.add_argument("--verify-per-minute", type=int, default=60)
    parser.add_argument("--budgets", default="0.01,0.02,0.05")
    parser.add_argument("--judge-errors", default="0,0.1")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="write the plot and a JSON of the results here")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    by_tier = situations()
    print(f"situations embedded in {time.perf_counter() - t0:.1f} s; {json.dumps(machine_info())}")
    results = []
    curves = {}
    for tier, rows in by_tier.items():
        calibration, held = split(rows, args.seed)
        stream = traffic(held, args.requests, args.seed)
        curve = static_curve(stream)
        configured, low, high = TIERS[tier]
        for budget_rate in map(float, args.budgets.split(",")):
            static_t = calibrate(calibration, budget_rate, high)
            static_e, static_h = static_run(stream, static_t)
            e75, h75 = static_run(stream, 0.75)
            for judge_error in map(float, args.judge_errors.split(",")):
                budget = Budget(rate=budget_rate, low=low, high=high)
                run = budgeted_run(
                    stream, tier=tier, budget=budget, judge_error=judge_error, calibration=calibration,
                    args=args, seed=args.seed,
                )  # fmt: skip
                k = warm_up(run.windows, budget_rate)
                after = run.windows[k:] if k is not None else []
                err = float(np.mean([e for e, _ in after])) if after else float("nan")
                hit = float(np.mean([h for _, h in after])) if after else float("nan")
                results.append(
                    {
                        "tier": tier, "budget": budget_rate, "judge_error": judge_error,
                        "warm_up_requests": None if k is None else k * args.window,
                        "achieved_error": err, "max_window_error": max((e for e, _ in after), default=None),
                        "hit_rate": hit, "static_hit_at_same_error": hit_rate_at(curve, err) if after else None,
                        "verified": run.verified, "capped": run.capped, "tier_threshold": run.final_threshold,
                        "entries_with_own_threshold": run.entries_with_own,
                        "static_calibrated": {"threshold": static_t, "error": static_e, "hit_rate": static_h},
                        "static_0.75": {"error": e75, "hit_rate": h75},
                        "windows": run.windows,
                    }
                )  # fmt: skip
                r = results[-1]
                print(
                    f"{tier:8} d={budget_rate:.2f} judge={judge_error:.2f}: warm-up {r['warm_up_requests']}, "
                    f"error {err:.4f} (max window {r['max_window_error']}), hit {hit:.3f}; "
                    f"static at same error {r['static_hit_at_same_error']}; "
                    f"calibrated t={static_t:.3f} error {static_e:.4f} hit {static_h:.3f}; "
                    f"0.75 error {e75:.4f} hit {h75:.3f}; verified {run.verified} capped {run.capped}; "
                    f"tier t={run.final_threshold:.3f}, {run.entries_with_own} entries own"
                )
        curves[tier] = curve
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        slim = [{k: v for k, v in r.items() if k != "windows"} for r in results]
        (args.out / "error-budget.json").write_text(json.dumps(slim, indent=1, ensure_ascii=False), encoding="utf-8")
        plot(results, args, args.out / "error-budget.png")
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


def plot(results: list[dict], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tiers = sorted({r["tier"] for r in results})
    fig, axes = plt.subplots(2, len(tiers), figsize=(6 * len(tiers), 7), sharex=True)
    for col, tier in enumerate(tiers):
        for r in (r for r in results if r["tier"] == tier and r["budget"] == 0.02):
            x = [(i + 1) * args.window for i in range(len(r["windows"]))]
            label = f"budget 0.02, judge {r['judge_error']:.0%} wrong"
            axes[0][col].plot(x, [e for e, _ in r["windows"]], label=label)
            axes[1][col].plot(x, [h for _, h in r["windows"]], label=label)
        ref = next(r for r in results if r["tier"] == tier and r["budget"] == 0.02)
        for name, style in (("static_calibrated", "--"), ("static_0.75", ":")):
            axes[0][col].axhline(ref[name]["error"], linestyle=style, color="grey", label=name)
            axes[1][col].axhline(ref[name]["hit_rate"], linestyle=style, color="grey", label=name)
        axes[0][col].axhline(0.02, color="red", linewidth=0.8, label="budget")
        axes[0][col].set_title(f"{tier} tier: wrong-hit rate per {args.window} requests")
        axes[1][col].set_title(f"{tier} tier: hit rate")
        axes[1][col].set_xlabel("requests")
        axes[0][col].set_ylim(0, 0.1)
        axes[0][col].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    sys.exit(main())
