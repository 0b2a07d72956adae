"""Choose SIMILARITY_THRESHOLD from measured precision on labelled prompts.

    python calibrate.py --pairs data/eval_pairs.jsonl [--out calibration/] [--target-precision 0.98]
                        [--ingest] [--corpus data/sample_corpus.jsonl]

The pairs file is JSONL, one labelled prompt per line::

    {"prompt": "...", "expected_biz_id": "season-03", "kind": "paraphrase"}
    {"prompt": "...", "expected_biz_id": null, "kind": "near_miss"}

``expected_biz_id`` is the biz_id of the stored passage that should answer the prompt, or null when
no stored passage should (the LLM must answer). The key is required, so a forgotten label is an
error rather than a silent "should miss". ``kind`` is optional; when present the report breaks the
results down by it. A malformed file is reported with its line number (exit status 2) before any
model is loaded.

Every prompt goes through the service's own retrieval path (the same settings / environment
variables as the service: EMBEDDING_MODEL, MILVUS_URI or MILVUS_LITE_PATH, MILVUS_COLLECTION, ...):
``RetrievalPolicy.decide`` embeds it through the
``EmbeddingBatcher`` and takes the COSINE top-1 from Milvus; the LLM is never called. For each threshold t from 0.50 to 0.99 (step 0.01), with "hit" meaning top-1
similarity >= t (the service's comparison, so a tie counts as a hit):

- hit rate       = hits / prompts
- precision      = correct hits / hits, where a correct hit is one whose top-1 biz_id equals
                   expected_biz_id; a hit on a prompt labelled null is always wrong.
                   With no hits precision is undefined: reported as n/a (null in the JSON), and
                   such a threshold is never recommended (it would never serve a stored passage).
- wrong-hit rate = wrong hits / prompts
- miss rate      = 1 - hit rate
- recall         = correct hits / prompts with a non-null expected_biz_id (n/a when there are none)

The recommendation is the LOWEST threshold whose precision >= --target-precision; the report says
clearly when no threshold reaches it. Precision is not necessarily monotone in the threshold, so the
report also says whether every higher threshold (with hits) keeps the target.

The second check (``HIT_GUARD``, writing/core/guard.py) is reported too: every tier's sweep with the
check off and on (a hit then also needs the check to pass the top-1), for the curated tier from the
prompts above and for the answer tier from prompt pairs (``--answer-pairs``, default
data/guard_pairs.jsonl: ``{"a", "b", "label": "same"|"different"}``), where a request ``a`` finds the
stored prompt ``b`` at their cosine similarity and the hit is right when the label is "same"; the
recommended ANSWER_CACHE_THRESHOLD follows the same rule as SIMILARITY_THRESHOLD.

Outputs in --out: calibration.md (table every 0.05 plus the recommended row, per-kind breakdown,
the wrong hits at the recommended threshold and the highest-scoring wrong top-1 matches),
calibration.png (precision / hit rate / wrong-hit rate / recall against the threshold) and
calibration.json (every row and the recommendation). The table and the recommendation are also
printed. Exit status: 0 done (also when no threshold reaches the target), 1 the store or model
failed, 2 bad arguments, a malformed pairs file or invalid settings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from writing.core.calibration import (  # the measures; this module runs them and writes the report
    TABLE_STEP,
    KindRow,
    Pair,
    PairsError,
    Recommendation,
    Record,
    Row,
    TierReport,
    _fmt,
    answer_records,
    breakdown_by_kind,
    load_answer_pairs,
    load_pairs,
    recommend,
    sweep,
    top_wrong,
    wrong_hits,
)
from writing.core.guard import HitGuard

logger = logging.getLogger(__name__)

DEFAULT_TARGET = 0.98
DEFAULT_OUT = Path("calibration")
DEFAULT_CORPUS = Path("data/sample_corpus.jsonl")
DEFAULT_ANSWER_PAIRS = Path("data/guard_pairs.jsonl")


# -- report -----------------------------------------------------------------------------------------
def _short(text: str, n: int = 40) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= n else text[: n - 1] + "…"


def table_rows(rows: Sequence[Row], rec: Recommendation) -> list[Row]:
    shown = [r for i, r in enumerate(sorted(rows, key=lambda r: r.threshold)) if i % TABLE_STEP == 0]
    if rec.row is not None and rec.row not in shown:
        shown.append(rec.row)
    return sorted(shown, key=lambda r: r.threshold)


def markdown_table(rows: Sequence[Row], rec: Recommendation) -> str:
    lines = [
        "| threshold | hits | hit rate | precision | wrong-hit rate | miss rate | recall |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table_rows(rows, rec):
        t = f"{r.threshold:.2f}"
        if rec.threshold is not None and r.threshold == rec.threshold:
            t = f"**{t}** ←"
        lines.append(
            f"| {t} | {r.hits}/{r.prompts} | {r.hit_rate:.3f} | {_fmt(r.precision)} | "
            f"{r.wrong_hit_rate:.3f} | {r.miss_rate:.3f} | {_fmt(r.recall)} |"
        )
    return "\n".join(lines)


def markdown_kinds(kinds: Sequence[KindRow]) -> str:
    lines = [
        "| kind | prompts | answerable | hits | correct | wrong | hit rate | precision | recall |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for k in kinds:
        lines.append(
            f"| {k.kind} | {k.prompts} | {k.answerable} | {k.hits} | {k.correct_hits} | {k.wrong_hits} | "
            f"{k.hit_rate:.3f} | {_fmt(k.precision)} | {_fmt(k.recall)} |"
        )
    return "\n".join(lines)


def markdown_records(records: Sequence[Record]) -> str:
    lines = ["| similarity | kind | expected | top-1 | prompt |", "|---:|---|---|---|---|"]
    for r in records:
        lines.append(
            f"| {r.similarity:.4f} | {r.kind or ''} | {r.expected_biz_id or 'null'} | "
            f"{r.top1_biz_id or '(none)'} | {_short(r.prompt)} |"
        )
    return "\n".join(lines)


@dataclass
class RunInfo:
    pairs_file: str
    embedding_model: str
    store: str
    collection: str
    corpus_size: int | None
    seconds: float


def render_markdown(records: Sequence[Record], rows: Sequence[Row], rec: Recommendation, info: RunInfo) -> str:
    parts = [
        "# Similarity threshold calibration",
        "",
        f"- pairs: `{info.pairs_file}` ({len(records)} prompts, "
        f"{sum(r.expected_biz_id is not None for r in records)} with an expected passage)",
        f"- embedding model: `{info.embedding_model}`",
        f"- store: {info.store}, collection `{info.collection}`"
        + (f" ({info.corpus_size} passages)" if info.corpus_size is not None else ""),
        f"- target precision: {rec.target_precision:.3f}",
        "",
        "A hit is a top-1 similarity >= threshold (as in the service). Precision = correct hits / hits "
        "(a hit on a prompt labelled null is wrong; n/a when there are no hits, and such a threshold is "
        "never recommended); wrong-hit rate = wrong hits / prompts; miss rate = 1 - hit rate; "
        "recall = correct hits / prompts with an expected passage. Every 0.05 is shown plus the "
        "recommended row; calibration.json has every 0.01.",
        "",
        markdown_table(rows, rec),
        "",
        f"**{rec.message}.**",
    ]
    unsearched = [r for r in records if r.note]
    if unsearched:
        parts += [
            "",
            f"{len(unsearched)} prompt(s) were not searched by the service and count as misses at every "
            "threshold: " + "; ".join(sorted({r.note for r in unsearched if r.note})) + ".",
        ]
    if rec.threshold is not None:
        kinds = breakdown_by_kind(records, rec.threshold)
        if kinds:
            parts += ["", f"## By kind at threshold {rec.threshold:.2f}", "", markdown_kinds(kinds)]
        wrong = wrong_hits(records, rec.threshold)
        parts += ["", f"## Wrong hits at threshold {rec.threshold:.2f}", ""]
        parts.append(markdown_records(wrong) if wrong else "None.")
    worst = top_wrong(records)
    if worst:
        parts += [
            "",
            "## Highest-scoring wrong top-1 matches",
            "",
            "Any threshold at or below these similarities serves the wrong passage (or a passage where "
            "the LLM should answer) for these prompts.",
            "",
            markdown_records(worst),
        ]
    return "\n".join(parts) + "\n"


def plot(rows: Sequence[Row], rec: Recommendation, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts = [r.threshold for r in rows]
    nan = float("nan")
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    ax.plot(ts, [nan if r.precision is None else r.precision for r in rows], label="precision", lw=2)
    ax.plot(ts, [r.hit_rate for r in rows], label="hit rate", lw=2)
    ax.plot(ts, [r.wrong_hit_rate for r in rows], label="wrong-hit rate", lw=1, ls=":")
    ax.plot(ts, [nan if r.recall is None else r.recall for r in rows], label="recall (answerable)", lw=1, ls="-.")
    ax.axhline(rec.target_precision, color="grey", ls="--", lw=1, label=f"target {rec.target_precision:.2f}")
    if rec.threshold is not None:
        ax.axvline(rec.threshold, color="red", lw=1.5, label=f"recommended {rec.threshold:.2f}")
        title = f"recommended threshold {rec.threshold:.2f}"
    else:
        title = f"no threshold reaches precision {rec.target_precision:.2f}"
    ax.set_xlim(min(ts), max(ts))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("similarity threshold")
    ax.set_ylabel("rate")
    ax.set_title(f"Threshold calibration: {title}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_outputs(
    out: Path,
    records: Sequence[Record],
    rows: Sequence[Row],
    rec: Recommendation,
    info: RunInfo,
    tiers: Sequence[TierReport] = (),
) -> str:
    out.mkdir(parents=True, exist_ok=True)
    md = render_markdown(records, rows, rec, info)
    for tier in tiers:
        md += "\n" + tier.markdown() + "\n"
    (out / "calibration.md").write_text(md, encoding="utf-8")
    if tiers:
        plot_tiers(tiers, out / "calibration.png")
    else:
        plot(rows, rec, out / "calibration.png")
    doc = {
        "run": asdict(info),
        "target_precision": rec.target_precision,
        "recommendation": {
            "threshold": rec.threshold,
            "holds_above": rec.holds_above,
            "precision_lower_95": rec.precision_lower_95,
            "message": rec.message,
            "row": asdict(rec.row) if rec.row else None,
        },
        "by_kind": (
            [asdict(k) for k in breakdown_by_kind(records, rec.threshold)] if rec.threshold is not None else []
        ),
        "rows": [asdict(r) for r in rows],
        "records": [asdict(r) for r in records],
        "second_check": {t.name: t.as_json() for t in tiers},
    }
    (out / "calibration.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return md


def shown_path(path: str | Path) -> str:
    """A path as the report shows it: relative to the working directory (the project, as run from the
    README) when it lies below it; a model inside an installed package as ``<package>/...``; another
    absolute path as its file name; anything else (a hub id, a relative path) as given.
    Reports are committed, so they must not carry the absolute paths of the machine that made them."""
    p = Path(path)
    if not p.is_absolute():
        return str(path)
    parts = p.parts
    if "site-packages" in parts:
        return str(Path(*parts[parts.index("site-packages") + 1 :]))
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return p.name


# -- retrieval through the service ----------------------------------------------------------------------
def build_policy(settings, batcher, store, llm):
    """The decision as the app builds it, set up to report the top-1 of every prompt: only the curated
    tier (this calibrates the curated corpus), no shadow mode (it hides the match), a store failure
    raises instead of reading as a miss; the threshold is given per request (the edge's range check is
    the app's, not the decision's)."""
    from writing.core.judge import CandidateJudge
    from writing.core.links import Link
    from writing.core.policy import RetrievalPolicy
    from writing.core.telemetry import NullMetrics
    from writing.core.tiers.curated import CuratedTier

    link = Link("vector store", lambda: store.open(batcher.dim), retry_interval=settings.milvus_retry_interval)
    curated = CuratedTier(
        store, link, CandidateJudge(), threshold=settings.similarity_threshold, fail_without_store=True
    )
    policy = RetrievalPolicy(
        batcher,
        [curated],
        NullMetrics(),
        defaults=llm.defaults,
        retrieve_long_prompts=settings.retrieve_long_prompts,
    )
    return policy, link


@dataclass(frozen=True)
class TopOne:
    similarity: float | None
    biz_id: str | None
    note: str | None = None  # why there is no similarity: bypass / rejected by the service
    content: str = ""  # the top-1 passage, for the second check


async def top1(policy, prompt: str, max_chars: int) -> TopOne:
    """The curated top-1 for one prompt, through the service's own decision code."""
    # decide(AnswerRequest): the match is kept only for a hit, so ask with threshold -1 (every
    # cosine similarity reaches it) and apply the grid afterwards
    from writing.core.models import AnswerRequest
    from writing.errors import InvalidRequest
    from writing.validation import check_prompt

    try:
        check_prompt(prompt, max_chars)  # what the app's edge would refuse with a 422
        decision = await policy.decide(AnswerRequest(prompt=prompt, threshold=-1.0))
    except InvalidRequest as exc:  # the service would answer 422: never a stored passage
        return TopOne(None, None, f"rejected: {exc}")
    if decision.store_error:
        raise RuntimeError("the vector store failed during retrieval; see the log")
    if decision.bypass_reason:  # e.g. longer than the embedding window: the LLM answers
        return TopOne(None, None, f"bypass: {decision.bypass_reason}")
    match = decision.match
    if match is not None and decision.match_source != "curated":
        match = None
    if match is None:
        return TopOne(decision.similarity, None)
    return TopOne(decision.similarity, str(match.biz_id), content=match.content)


async def retrieve_all(settings, embedder, store, pairs: Sequence[Pair], *, concurrency: int = 32) -> list[Record]:
    """Top-1 for every prompt via the service (batcher + store, exactly as served)."""
    from writing.wiring import build_batcher, build_llm

    batcher = build_batcher(settings, embedder)
    llm = build_llm(settings)
    policy, link = build_policy(settings, batcher, store, llm)
    gate = asyncio.Semaphore(max(1, min(concurrency, settings.embedding_queue_size)))

    guard = HitGuard()

    async def one(pair: Pair) -> Record:
        async with gate:
            found = await top1(policy, pair.prompt, settings.max_prompt_chars)
        verdict = await asyncio.to_thread(guard.check, pair.prompt, found.content, "curated") if found.content else None
        return Record(
            similarity=found.similarity,
            top1_biz_id=found.biz_id,
            expected_biz_id=pair.expected_biz_id,
            kind=pair.kind,
            prompt=pair.prompt,
            note=found.note,
            guard=None if verdict is None else ("pass" if verdict.ok else verdict.reason),
        )

    try:
        await link.open()
        return list(await asyncio.gather(*(one(p) for p in pairs)))
    finally:
        await asyncio.to_thread(batcher.close)  # joins the worker thread: not on the event loop
        await llm.close()


def _ingest(settings, embedder, store, corpus: Path) -> None:
    from writing.cli.ingest import ingest
    from writing.core.corpus import CorpusWriter

    summary = ingest(
        corpus, CorpusWriter(embedder, store, batch_size=settings.embedding_max_batch_size), progress=False
    )
    for p in summary.problems:
        print(f"warning: corpus line skipped {p.where}: {p.message}", file=sys.stderr)
    print(f"ingest {corpus}: {summary.line()}", file=sys.stderr)
    if summary.inserted and store.uri:
        time.sleep(5)  # searches use Bounded consistency; let a server's fresh inserts become visible


def plot_tiers(tiers: Sequence[TierReport], path: Path) -> None:
    """Precision and hit rate against the threshold, the second check off (dashed) and on (solid)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nan = float("nan")
    fig, axes = plt.subplots(1, len(tiers), figsize=(7 * len(tiers), 5), dpi=110, squeeze=False)
    for ax, tier in zip(axes[0], tiers, strict=True):
        for rows, style, label in ((tier.rows_off, "--", "check off"), (tier.rows_on, "-", "check on")):
            ts = [r.threshold for r in rows]
            ax.plot(
                ts,
                [nan if r.precision is None else r.precision for r in rows],
                ls=style,
                color="C0",
                label=f"precision, {label}",
            )
            ax.plot(ts, [r.hit_rate for r in rows], ls=style, color="C1", label=f"hit rate, {label}")
        ax.axhline(tier.rec_on.target_precision, color="grey", ls=":", lw=1, label="target precision")
        for rec, style in ((tier.rec_off, "--"), (tier.rec_on, "-")):
            if rec.threshold is not None:
                ax.axvline(rec.threshold, color="red", ls=style, lw=1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(f"{tier.setting}")
        ax.set_title(f"{tier.name}: recommended {_thr(tier.rec_off)} (off) / {_thr(tier.rec_on)} (on)")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _thr(rec: Recommendation) -> str:
    return "none" if rec.threshold is None else f"{rec.threshold:.2f}"


def _corpus_ids(corpus: Path) -> set[str]:
    from writing.cli.ingest import Problem, read_records

    problems: list[Problem] = []
    return {p.biz_id for p in read_records(corpus, problems)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="calibrate.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=Path, required=True, help="labelled prompts (JSONL)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default calibration/)")
    parser.add_argument(
        "--target-precision", type=float, default=DEFAULT_TARGET, help="precision to reach (default 0.98)"
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="passages for --ingest")
    parser.add_argument(
        "--ingest", action="store_true", help="load --corpus into the store first (idempotent; skips stored passages)"
    )
    parser.add_argument(
        "--answer-pairs",
        type=Path,
        default=DEFAULT_ANSWER_PAIRS if DEFAULT_ANSWER_PAIRS.exists() else None,
        help="prompt pairs to calibrate ANSWER_CACHE_THRESHOLD (default data/guard_pairs.jsonl)",
    )
    args = parser.parse_args(argv)
    if not 0 < args.target_precision <= 1:
        parser.error("--target-precision must be in (0, 1]")
    if args.ingest and not args.corpus.exists():
        parser.error(f"--corpus {args.corpus} does not exist")

    # 1. validate the labels before anything heavy is imported or loaded
    try:
        pairs = load_pairs(args.pairs)
        answer_pairs = load_answer_pairs(args.answer_pairs) if args.answer_pairs else []
    except PairsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.ingest:
        known = _corpus_ids(args.corpus)
        unknown = sorted({p.expected_biz_id for p in pairs if p.expected_biz_id} - known)
        if unknown:
            print(f"warning: expected_biz_id not in {args.corpus}: {', '.join(unknown[:20])}", file=sys.stderr)

    from writing.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    too_long = [p.line for p in pairs if len(p.prompt) > settings.max_prompt_chars]
    if too_long:
        print(
            f"warning: {len(too_long)} prompt(s) exceed MAX_PROMPT_CHARS={settings.max_prompt_chars} and would be "
            f"rejected by the service (lines {', '.join(map(str, too_long[:20]))}); they are still scored",
            file=sys.stderr,
        )

    # 2. the real retrieval path
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from writing.errors import DimensionMismatch, VectorStoreError
    from writing.wiring import build_embedder, build_store

    started = time.perf_counter()
    try:
        embedder = build_embedder(settings)
    except Exception as exc:  # noqa: BLE001 - a missing or broken model is an operator error
        print(f"error: cannot load EMBEDDING_MODEL={settings.embedding_model!r}: {exc}", file=sys.stderr)
        return 1
    store = build_store(settings)
    try:
        try:
            store.open(embedder.dim)
            if args.ingest:
                _ingest(settings, embedder, store, args.corpus)
            corpus_size = store.count()
            if corpus_size == 0:
                print(
                    f"error: collection {settings.milvus_collection!r} in {store.target} is empty; "
                    "ingest a corpus first or pass --ingest",
                    file=sys.stderr,
                )
                return 1
            print(f"retrieving top-1 for {len(pairs)} prompts from {corpus_size} passages…", file=sys.stderr)
            records = asyncio.run(retrieve_all(settings, embedder, store, pairs))
        except (VectorStoreError, DimensionMismatch, RuntimeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    finally:
        store.close()

    # 3. metrics, recommendation, outputs
    rows = sweep(records)
    rec = recommend(rows, args.target_precision)
    info = RunInfo(
        pairs_file=shown_path(args.pairs),
        embedding_model=shown_path(settings.embedding_model),
        store=f"{store.kind} {store.uri or shown_path(settings.milvus_lite_path)}",
        collection=settings.milvus_collection,
        corpus_size=corpus_size,
        seconds=round(time.perf_counter() - started, 1),
    )
    tiers = [TierReport.of("Curated tier", "SIMILARITY_THRESHOLD", records, args.target_precision)]
    if answer_pairs:
        tiers.append(
            TierReport.of(
                "Answer tier", "ANSWER_CACHE_THRESHOLD", answer_records(embedder, answer_pairs), args.target_precision
            )
        )
    write_outputs(args.out, records, rows, rec, info, tiers)
    print(markdown_table(rows, rec))
    print()
    print(rec.message)
    for tier in tiers:
        print()
        print(tier.markdown())
    print(f"wrote {args.out / 'calibration.md'}, calibration.png, calibration.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
