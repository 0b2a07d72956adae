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


# short prompts of different lengths (Chinese and English) for the batcher tests
BATCHER_TEXTS = [
    "春天来了，柳树发芽",
    "夏天的太阳像一团火",
    "秋天是一位调色的画家，她把枫叶染成火红",
    "冬天的早晨，窗户上结满了冰花",
    "请用三句话解释TCP三次握手的过程",
    "我的妈妈",
    "来广州，一定要先去喝一次早茶，虾饺、叉烧包、肠粉配一壶热茶",
    "a short English prompt",
    "毕业典礼那天，礼堂里坐满了穿着校服的同学",
    "写一篇关于友谊的作文",
    "如何保护环境",
    "西湖的美景",
]
