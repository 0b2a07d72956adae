"""Measuring a threshold, for both tiers with the second check off and on: the answer tier's outcomes from
prompt pairs (``answer_records``) and a whole run inside the service (``live_tiers``,
``POST /v1/calibration/runs``, over the service's own corpus and model).

Shared by ``calibrate.py`` (``writing.cli.calibrate``, which explains the measures and writes the report)
and the service. The parts live in their own modules and are re-exported here:

- ``writing.core.calibration_pairs``: the labelled input (``load_pairs``, ``load_answer_pairs``)
- ``writing.core.calibration_measures``: precision, recall and hit rate per threshold (``sweep``)
- ``writing.core.calibration_recommendation``: the threshold to recommend (``recommend``, ``TierReport``)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from writing.core.calibration_measures import (
    KindRow,
    Record,
    Row,
    breakdown_by_kind,
    metrics_at,
    sweep,
    thresholds,
    top_wrong,
    wrong_hits,
)
from writing.core.calibration_pairs import Pair, PairsError, load_answer_pairs, load_pairs, parse_pair
from writing.core.calibration_recommendation import (
    EPS,
    TABLE_STEP,
    Recommendation,
    TierReport,
    meets,
    recommend,
    wilson_lower,
)
from writing.core.guard import HitGuard

__all__ = [
    "EPS",
    "LIVE_BATCH",
    "SAME_REQUEST",
    "TABLE_STEP",
    "KindRow",
    "Pair",
    "PairsError",
    "Recommendation",
    "Record",
    "Row",
    "TierReport",
    "answer_records",
    "breakdown_by_kind",
    "live_tiers",
    "load_answer_pairs",
    "load_pairs",
    "meets",
    "metrics_at",
    "parse_pair",
    "recommend",
    "sweep",
    "thresholds",
    "top_wrong",
    "wilson_lower",
    "wrong_hits",
]

SAME_REQUEST = "same-request"  # the stand-in biz_id of an answer-tier pair: a hit is correct when the label is "same"


def answer_records(embedder, pairs: Sequence[dict], guard: HitGuard) -> list[Record]:
    """The answer tier as the service sees it: a stored prompt ``b`` is found for a request ``a`` at their
    cosine similarity (both embedded as prompts); the hit is right when the pair asks for the same."""
    import numpy as np

    a = embedder.embed_queries([p["a"] for p in pairs])
    b = embedder.embed_queries([p["b"] for p in pairs])
    sims = np.sum(a * b, axis=1)
    out = []
    for p, sim in zip(pairs, sims, strict=True):
        verdict = guard.check(p["a"], p["b"], "generated")
        out.append(
            Record(
                similarity=float(min(1.0, sim)),
                top1_biz_id=SAME_REQUEST,
                expected_biz_id=SAME_REQUEST if p["label"] == "same" else None,
                kind=p.get("kind"),
                prompt=f"{p['a']} | {p['b']}",
                guard="pass" if verdict.ok else verdict.reason,
            )
        )
    return out


# -- a run inside the service (POST /v1/calibration/runs) ------------------------------------------------
LIVE_BATCH = 32  # prompts per model call: the service's own prompts interleave between them


def live_tiers(
    embed: Callable[[list[str]], Sequence],
    top1: Callable[[Sequence], list[tuple[float, str, str] | None]],
    guard: HitGuard,
    pairs: Sequence[Pair],
    answer_pairs: Sequence[dict],
    target: float,
) -> list[TierReport]:
    """Both tiers' sweeps over the running service's corpus and model, off the event loop.

    ``embed(prompts)`` returns their vectors (the service's model, queued behind its prompts);
    ``top1(vectors)`` the curated top-1 of each as (similarity, biz_id, content), or None."""
    tiers = []
    if pairs:
        records = []
        for start in range(0, len(pairs), LIVE_BATCH):
            chunk = pairs[start : start + LIVE_BATCH]
            for pair, found in zip(chunk, top1(embed([p.prompt for p in chunk])), strict=True):
                verdict = guard.check(pair.prompt, found[2], "curated") if found is not None else None
                records.append(
                    Record(
                        similarity=None if found is None else found[0],
                        top1_biz_id=None if found is None else str(found[1]),
                        expected_biz_id=pair.expected_biz_id,
                        kind=pair.kind,
                        prompt=pair.prompt,
                        guard=None if verdict is None else ("pass" if verdict.ok else verdict.reason),
                    )
                )
        tiers.append(TierReport.of("curated", "SIMILARITY_THRESHOLD", records, target))
    if answer_pairs:

        class _Chunked:  # answer_records' embedder, in chunks through ``embed``
            @staticmethod
            def embed_queries(texts: list[str]):
                import numpy as np

                return np.concatenate([embed(texts[i : i + LIVE_BATCH]) for i in range(0, len(texts), LIVE_BATCH)])

        tiers.append(
            TierReport.of("answer", "ANSWER_CACHE_THRESHOLD", answer_records(_Chunked, answer_pairs, guard), target)
        )
    return tiers
