"""bf16 (what EMBEDDING_QUANTIZE=auto picks on a CPU with native bf16) keeps every retrieval decision."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.support.corpus import load_corpus

EVAL_PAIRS = Path(__file__).resolve().parents[2] / "data" / "eval_pairs.jsonl"
THRESHOLD = 0.75


def decisions(embedder, passages: list[str], prompts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(top-1 index, hit at the threshold) per prompt, by exact cosine search."""
    stored = embedder.embed(passages)
    asked = embedder.embed_queries(prompts)
    sims = asked @ stored.T
    return sims.argmax(axis=1), sims.max(axis=1) >= THRESHOLD


def test_bf16_agrees_with_fp32_on_every_decision(model_path, embedder):
    from writing.adapters.embedding.encoder import Embedder

    bf16 = Embedder(model_path, quantize="bf16")
    passages = [p["content"] for p in load_corpus()]
    prompts = [json.loads(line)["prompt"] for line in EVAL_PAIRS.read_text(encoding="utf-8").splitlines() if line]
    a, b = embedder.embed_queries(prompts), bf16.embed_queries(prompts)
    cosine = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cosine.min() >= 0.999, cosine.min()
    top_fp32, hit_fp32 = decisions(embedder, passages, prompts)
    top_bf16, hit_bf16 = decisions(bf16, passages, prompts)
    changed = int(np.sum((hit_fp32 != hit_bf16) | (hit_fp32 & (top_fp32 != top_bf16))))
    assert changed == 0, f"{changed} of {len(prompts)} decisions changed"
