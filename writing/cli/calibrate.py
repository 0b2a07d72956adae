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
import logging
import sys
import time
from pathlib import Path

from writing.cli.calibration_report import RunInfo, markdown_table, shown_path, write_outputs
from writing.cli.calibration_retrieval import ingest_corpus, retrieve_all
from writing.core.calibration import answer_records
from writing.core.calibration_measures import sweep
from writing.core.calibration_pairs import PairsError, load_answer_pairs, load_pairs
from writing.core.calibration_recommendation import TierReport, recommend

logger = logging.getLogger(__name__)

DEFAULT_TARGET = 0.98
DEFAULT_OUT = Path("calibration")
DEFAULT_CORPUS = Path("data/sample_corpus.jsonl")
DEFAULT_ANSWER_PAIRS = Path("data/guard_pairs.jsonl")


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
    from writing.wiring import build_embedder, build_guard, build_store

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
                ingest_corpus(settings, embedder, store, args.corpus)
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
                "Answer tier",
                "ANSWER_CACHE_THRESHOLD",
                answer_records(embedder, answer_pairs, build_guard()),
                args.target_precision,
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
