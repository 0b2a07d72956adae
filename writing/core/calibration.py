"""Measuring a threshold: precision, recall and hit rate per threshold from labelled prompts, and the
threshold to recommend for a target precision, for both tiers with the second check off and on.

Pure computation over retrieval outcomes (``Record``), shared by ``calibrate.py`` (``writing.cli.calibrate``,
which explains the measures and writes the report) and ``POST /v1/calibration/runs``, which runs it over the
service's own corpus and model (``live_tiers``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from writing.core.guard import HitGuard
from writing.text import BadEncoding, numbered_lines

TABLE_STEP = 5  # the Markdown table shows every 5th threshold (0.50, 0.55, ...) plus the recommendation
EPS = 1e-12  # float slack when comparing a precision with the target (49/50 vs 0.98)


class PairsError(ValueError):
    """The pairs file is malformed; the message names the line."""


# -- input ------------------------------------------------------------------------------------------
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


# -- pure computation ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Record:
    """One prompt's retrieval outcome: top-1 similarity and biz_id (None when nothing came back)."""

    similarity: float | None
    top1_biz_id: str | None
    expected_biz_id: str | None
    kind: str | None = None
    prompt: str = ""
    note: str | None = None  # set when the service did not search (bypass, rejected prompt)
    guard: str | None = None  # the second check on the top-1: None (not run) | "pass" | the reject reason

    @property
    def top1_correct(self) -> bool:
        return self.expected_biz_id is not None and self.top1_biz_id == self.expected_biz_id

    def hit(self, threshold: float, guarded: bool = False) -> bool:
        """A hit at ``threshold``; ``guarded``: only when the second check passes it too."""
        if self.similarity is None or self.similarity < threshold:
            return False
        return not guarded or self.guard in (None, "pass")


@dataclass(frozen=True)
class Row:
    threshold: float
    prompts: int
    answerable: int  # prompts with a non-null expected_biz_id
    hits: int
    correct_hits: int
    wrong_hits: int
    hit_rate: float
    precision: float | None  # None (n/a) when there are no hits
    wrong_hit_rate: float
    miss_rate: float
    recall: float | None  # None (n/a) when no prompt is answerable


def thresholds(start: float = 0.50, stop: float = 0.99, step: float = 0.01) -> list[float]:
    """The grid as the floats an operator would type (0.75, not 0.7500000000000002)."""
    n = int(round((stop - start) / step))
    return [round(start + i * step, 10) for i in range(n + 1)]


def metrics_at(records: Sequence[Record], threshold: float, guarded: bool = False) -> Row:
    n = len(records)
    answerable = sum(1 for r in records if r.expected_biz_id is not None)
    hits = [r for r in records if r.hit(threshold, guarded)]
    correct = sum(1 for r in hits if r.top1_correct)
    wrong = len(hits) - correct
    hit_rate = len(hits) / n if n else 0.0
    return Row(
        threshold=threshold,
        prompts=n,
        answerable=answerable,
        hits=len(hits),
        correct_hits=correct,
        wrong_hits=wrong,
        hit_rate=hit_rate,
        precision=correct / len(hits) if hits else None,
        wrong_hit_rate=wrong / n if n else 0.0,
        miss_rate=1.0 - hit_rate,
        recall=correct / answerable if answerable else None,
    )


def sweep(records: Sequence[Record], grid: Iterable[float] | None = None, guarded: bool = False) -> list[Row]:
    return [metrics_at(records, t, guarded) for t in (thresholds() if grid is None else grid)]


def meets(row: Row, target: float) -> bool:
    return row.precision is not None and row.precision >= target - EPS


@dataclass(frozen=True)
class Recommendation:
    target_precision: float
    threshold: float | None  # None: no threshold with hits reaches the target
    row: Row | None
    holds_above: bool  # every higher threshold with hits also meets the target
    precision_lower_95: float | None  # Wilson lower bound of the precision at the recommendation
    message: str


def wilson_lower(successes: int, n: int, z: float = 1.96) -> float | None:
    """Lower end of the Wilson score interval: how low the true precision may plausibly be."""
    if n == 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / denom)


def recommend(rows: Sequence[Row], target: float) -> Recommendation:
    """The lowest threshold whose precision reaches ``target`` (thresholds without hits never count)."""
    ordered = sorted(rows, key=lambda r: r.threshold)
    for i, row in enumerate(ordered):
        if meets(row, target):
            holds = all(meets(r, target) for r in ordered[i + 1 :] if r.hits)
            lower = wilson_lower(row.correct_hits, row.hits)
            msg = (
                f"recommended SIMILARITY_THRESHOLD={row.threshold:.2f}: the lowest threshold with precision "
                f">= {target:.3f} (precision {row.precision:.3f} = {row.correct_hits}/{row.hits} hits, "
                f"95% lower bound {lower:.3f}; hit rate {row.hit_rate:.3f}, wrong-hit rate "
                f"{row.wrong_hit_rate:.3f}, recall {_fmt(row.recall)})"
            )
            if not holds:
                msg += "; note: precision drops below the target again at some higher threshold"
            return Recommendation(target, row.threshold, row, holds, lower, msg)
    best = max((r for r in ordered if r.hits), key=lambda r: (r.precision, -r.threshold), default=None)
    if best is None:
        msg = f"NO threshold reaches precision {target:.3f}: no prompt scored >= {ordered[0].threshold:.2f}"
    else:
        msg = (
            f"NO threshold from {ordered[0].threshold:.2f} to {ordered[-1].threshold:.2f} reaches precision "
            f">= {target:.3f}; the best is {best.precision:.3f} ({best.correct_hits}/{best.hits} hits) at "
            f"{best.threshold:.2f}. Do not pick a threshold from this run: improve the corpus, the model or "
            "the labels, or lower the target knowingly"
        )
    return Recommendation(target, None, None, False, None, msg)


@dataclass(frozen=True)
class KindRow:
    kind: str
    prompts: int
    answerable: int
    hits: int
    correct_hits: int
    wrong_hits: int
    hit_rate: float
    precision: float | None
    recall: float | None


def breakdown_by_kind(records: Sequence[Record], threshold: float) -> list[KindRow]:
    kinds = sorted({r.kind for r in records if r.kind is not None})
    out = []
    for kind in kinds:
        row = metrics_at([r for r in records if r.kind == kind], threshold)
        out.append(
            KindRow(
                kind,
                row.prompts,
                row.answerable,
                row.hits,
                row.correct_hits,
                row.wrong_hits,
                row.hit_rate,
                row.precision,
                row.recall,
            )
        )
    return out


def wrong_hits(records: Sequence[Record], threshold: float) -> list[Record]:
    return sorted(
        (r for r in records if r.hit(threshold) and not r.top1_correct),
        key=lambda r: -(r.similarity or 0.0),
    )


def top_wrong(records: Sequence[Record], limit: int = 10) -> list[Record]:
    """The highest-scoring wrong top-1 matches: they decide how high the threshold must go."""
    wrong = [r for r in records if r.similarity is not None and not r.top1_correct]
    return sorted(wrong, key=lambda r: -r.similarity)[:limit]  # type: ignore[operator]


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


SAME_REQUEST = "same-request"  # the stand-in biz_id of an answer-tier pair: a hit is correct when the label is "same"


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


def answer_records(embedder, pairs: Sequence[dict]) -> list[Record]:
    """The answer tier as the service sees it: a stored prompt ``b`` is found for a request ``a`` at their
    cosine similarity (both embedded as prompts); the hit is right when the pair asks for the same."""
    import numpy as np

    guard = HitGuard()
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


@dataclass(frozen=True)
class TierReport:
    """One tier's sweep with the second check off and on, and what each recommends."""

    name: str
    setting: str
    rows_off: list[Row]
    rows_on: list[Row]
    rec_off: Recommendation
    rec_on: Recommendation

    @classmethod
    def of(cls, name: str, setting: str, records: Sequence[Record], target: float) -> TierReport:
        rows_off, rows_on = sweep(records), sweep(records, guarded=True)
        return cls(name, setting, rows_off, rows_on, recommend(rows_off, target), recommend(rows_on, target))

    def markdown(self) -> str:
        def line(label: str, rec: Recommendation) -> str:
            if rec.row is None:
                return f"| {label} | none | n/a | n/a | n/a |"
            r = rec.row
            return f"| {label} | {r.threshold:.2f} | {_fmt(r.precision)} | {r.hit_rate:.3f} | {_fmt(r.recall)} |"

        return "\n".join(
            [
                f"## {self.name}: the second check (HIT_GUARD) off and on",
                "",
                f"Recommended {self.setting} at precision >= {self.rec_off.target_precision:.2f}:",
                "",
                "| check | threshold | precision | hit rate | recall |",
                "|---|---:|---:|---:|---:|",
                line("off", self.rec_off),
                line("on", self.rec_on),
                "",
                "| threshold | precision off | precision on | hit rate off | hit rate on |",
                "|---:|---:|---:|---:|---:|",
                *(
                    f"| {a.threshold:.2f} | {_fmt(a.precision)} | {_fmt(b.precision)} | {a.hit_rate:.3f} | {b.hit_rate:.3f} |"
                    for i, (a, b) in enumerate(zip(self.rows_off, self.rows_on, strict=True))
                    if i % TABLE_STEP == 0
                ),
            ]
        )

    def as_json(self) -> dict:
        def rec(r: Recommendation) -> dict:
            return {"threshold": r.threshold, "message": r.message, "row": asdict(r.row) if r.row else None}

        return {
            "setting": self.setting,
            "off": {"recommendation": rec(self.rec_off), "rows": [asdict(r) for r in self.rows_off]},
            "on": {"recommendation": rec(self.rec_on), "rows": [asdict(r) for r in self.rows_on]},
        }


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

        tiers.append(TierReport.of("answer", "ANSWER_CACHE_THRESHOLD", answer_records(_Chunked, answer_pairs), target))
    return tiers
