"""The sample corpus: reading it, and loading it into a store the way ``ingest.py`` does."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_CORPUS = ROOT / "data" / "sample_corpus.jsonl"


def load_corpus() -> list[dict]:
    return [json.loads(line) for line in SAMPLE_CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def ingest_sample(settings, embedder, source: Path = SAMPLE_CORPUS):
    """Load the sample corpus into the store the settings name (the same code path as ingest.py);
    returns (summary, passages stored)."""
    from writing.cli.ingest import ingest
    from writing.core.corpus import CorpusWriter
    from writing.wiring import build_store

    store = build_store(settings)
    store.open(embedder.dim)
    try:
        return ingest(source, CorpusWriter(embedder, store), progress=False), store.count()
    finally:
        store.close()
