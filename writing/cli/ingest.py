"""Load passages into the curated corpus.

    python ingest.py data/sample_corpus.jsonl      # JSONL: one {"content": ..., "biz_id": ...} per line
    python ingest.py path/to/folder                # every *.txt below it; biz_id = the file's path
    EMBEDDING_MODEL=NEW python ingest.py --reembed [--target NAME]
                                                   # copy MILVUS_COLLECTION into a new collection
                                                   # embedded with NEW; then restart the service with
                                                   # MILVUS_COLLECTION=NAME and EMBEDDING_MODEL=NEW
    python ingest.py --migrate [--target NAME]     # copy MILVUS_COLLECTION (e.g. one made by the
                                                   # reference, served read-only) into a collection of
                                                   # the service's schema, vectors as they are (no
                                                   # re-embedding); then MILVUS_COLLECTION=NAME
    python ingest.py --migrate-answers             # upgrading from 1.3: copy the stored answers of
                                                   # <collection>_answers_v2 into _answers_v3 (adds
                                                   # each prompt's hash; no model; can run while the
                                                   # service runs, and again)

Both copies can be run again: they add what is missing and remove from the target what the source no
longer holds (a passage deleted from the old collection meanwhile does not come back).

Uses the same settings (environment variables) as the service. Idempotent: a passage stored already
(same normalised text) is skipped, so a second or interrupted run can be repeated safely. Malformed
lines are reported with their line number and skipped; the exit status is 1 when any were found.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from writing.core.corpus import CorpusWriter, InvalidPassage, Problem, make_passage, read_jsonl
from writing.core.models import Passage

logger = logging.getLogger(__name__)


@dataclass
class Summary:
    read: int = 0
    inserted: int = 0
    skipped: int = 0
    removed: int = 0  # copies only: passages the source no longer holds
    problems: list[Problem] = field(default_factory=list)

    def line(self) -> str:
        removed = f", removed {self.removed} (deleted from the source)" if self.removed else ""
        return (
            f"read {self.read}, inserted {self.inserted}, skipped {self.skipped} (already stored){removed}, "
            f"malformed {len(self.problems)}"
        )


def read_records(source: Path, problems: list[Problem]) -> Iterator[Passage]:
    """Passages from a JSONL file or a folder of .txt files; bad records go to ``problems``."""
    if source.is_dir():
        for path in sorted(source.rglob("*.txt")):
            where = str(path)
            try:
                text = path.read_text(encoding="utf-8")
                yield make_passage({"content": text, "biz_id": str(path.relative_to(source).with_suffix(""))})
            except (UnicodeDecodeError, InvalidPassage) as exc:
                problems.append(Problem(where, str(exc)))
        return
    with source.open(encoding="utf-8", errors="strict") as fh:
        yield from read_jsonl(fh, str(source), problems)


def ingest(source: Path, writer: CorpusWriter, *, batch_size: int = 64, progress: bool = True) -> Summary:
    from tqdm import tqdm

    summary = Summary()
    bar = tqdm(desc="ingest", unit="passage", disable=not progress)
    batch: list[Passage] = []

    def flush() -> None:
        result = writer.add(batch)
        summary.inserted += result.inserted
        summary.skipped += result.skipped
        bar.update(len(batch))
        batch.clear()

    for passage in read_records(source, summary.problems):
        summary.read += 1
        batch.append(passage)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    bar.close()
    return summary


def reembed(source_store, writer: CorpusWriter, *, progress: bool = True, keep_vectors: bool = False) -> Summary:
    """Fill ``writer``'s (new) collection from every passage of ``source_store`` (embedded afresh, or with
    the stored vectors when ``keep_vectors``); resumable. Then the target loses what the source no longer
    holds, so a passage deleted from the source since an earlier run does not come back."""
    from tqdm import tqdm

    summary = Summary()
    label = "migrate" if keep_vectors else "re-embed"
    if keep_vectors:  # (passages, their stored vectors) per batch
        batches = (([p for p, _ in rows], [v for _, v in rows]) for rows in source_store.iter_rows())
    else:  # (passages, None): the writer embeds them
        batches = ((batch, None) for batch in source_store.iter_passages())
    with tqdm(desc=label, unit="passage", total=source_store.count(), disable=not progress) as bar:
        for passages, vectors in batches:
            result = writer.add(passages, vectors)
            summary.read += len(passages)
            summary.inserted += result.inserted
            summary.skipped += result.skipped
            bar.update(len(passages))
    stale = set(writer.store.passage_hashes()) - set(source_store.passage_hashes())
    summary.removed = writer.store.delete_hashes(sorted(stale)) if stale else 0
    return summary


def model_slug(model: str) -> str:
    name = Path(model.rstrip("/")).name if Path(model).exists() else model.split("/")[-1]
    return "".join(c if c.isalnum() else "_" for c in name.lower())[:60]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, nargs="?", help="a JSONL file or a folder of .txt files")
    parser.add_argument(
        "--reembed",
        action="store_true",
        help="copy every passage of MILVUS_COLLECTION into a new collection embedded with EMBEDDING_MODEL",
    )
    parser.add_argument(
        "--migrate",
        action="store_true",
        help="copy MILVUS_COLLECTION (e.g. made by the reference) into a collection of the service's schema, "
        "keeping its vectors",
    )
    parser.add_argument(
        "--migrate-answers",
        action="store_true",
        help="copy the stored answers of <collection>_answers_v2 (1.3 and before) into <collection>_answers_v3",
    )
    parser.add_argument(
        "--target",
        help="the new collection for --reembed (default: <collection>_<model>) or --migrate (default: <collection>_v2)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="passages per insert (default 64)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.reembed + args.migrate + args.migrate_answers > 1:
        parser.error("--reembed, --migrate and --migrate-answers are different copies: choose one")
    if (args.reembed or args.migrate or args.migrate_answers) == (args.source is not None):
        parser.error("give a FILE_OR_DIR to ingest, or --reembed, or --migrate, or --migrate-answers")
    if args.source is not None and not args.source.exists():
        parser.error(f"{args.source} does not exist")

    from writing.observability.logs import LOG_FORMAT
    from writing.settings import SettingsError, load_settings
    from writing.wiring import build_embedder, build_store

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.migrate_answers:
        return _migrate_answers(settings)
    if args.migrate:  # no model: the vectors are copied as they are
        return _copy(settings, None, args.target, progress=not args.no_progress)
    embedder = build_embedder(settings)
    if args.reembed:
        return _copy(settings, embedder, args.target, progress=not args.no_progress)
    store = build_store(settings)
    store.open(embedder.dim)
    try:
        summary = ingest(
            args.source,
            CorpusWriter(embedder, store, batch_size=settings.embedding_max_batch_size),
            batch_size=args.batch_size,
            progress=not args.no_progress,
        )
        total = store.count()
    finally:
        store.close()
    for p in summary.problems:
        print(f"skipped {p.where}: {p.message}", file=sys.stderr)
    print(f"{summary.line()}; the collection {settings.milvus_collection!r} now holds {total} passages")
    return 1 if summary.problems else 0


def _copy(settings, embedder, target: str | None, *, progress: bool) -> int:
    """--reembed (``embedder`` given) or --migrate (None: the stored vectors are copied)."""
    from writing.wiring import build_store

    migrate = embedder is None
    default = f"{settings.milvus_collection}_v2" if migrate else None
    target = target or default or f"{settings.milvus_collection}_{model_slug(settings.embedding_model)}"
    if target == settings.milvus_collection:
        print("--target must differ from MILVUS_COLLECTION: the old collection is kept", file=sys.stderr)
        return 2
    source = build_store(settings)
    source.open(None)  # whatever model built it
    dest = source.sibling(target)
    try:
        dest.open(source.dim if migrate else embedder.dim)
        writer = CorpusWriter(embedder, dest, batch_size=settings.embedding_max_batch_size)
        summary = reembed(source, writer, progress=progress, keep_vectors=migrate)
        total, expected = dest.count(), source.count()
    finally:
        dest.close()
        source.close()
    print(f"{summary.line()}; {target!r} holds {total} of the {expected} passages in {settings.milvus_collection!r}")
    if total != expected:
        print("incomplete: run the same command again to finish (it skips what is stored)", file=sys.stderr)
        return 1
    model = "" if migrate else f" EMBEDDING_MODEL={settings.embedding_model}"
    print(
        f"complete. Switch by restarting the service with MILVUS_COLLECTION={target}{model}; "
        f"{settings.milvus_collection!r} is kept until you drop it."
    )
    return 0


def _migrate_answers(settings) -> int:
    """--migrate-answers: the stored answers of 1.3 into the new collection (with each prompt's hash)."""
    from writing.adapters.milvus.answers import COLLECTION_SUFFIX
    from writing.adapters.milvus.answers_migration import LEGACY_SUFFIX, migrate_answers
    from writing.wiring import build_store

    store = build_store(settings)
    try:
        result = migrate_answers(store.connection, settings.milvus_collection)
    finally:
        store.close()
    name = settings.milvus_collection
    if result is None:
        print(f"no {name}{LEGACY_SUFFIX} collection: nothing to copy")
        return 0
    done, source, target = result
    print(
        f"read {done.read}, copied {done.copied}, already there {done.present}; "
        f"{name}{COLLECTION_SUFFIX} holds {target} answers ({source} in {name}{LEGACY_SUFFIX})"
    )
    print(f"{name}{LEGACY_SUFFIX} is kept until you drop it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
