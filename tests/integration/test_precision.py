"""bf16 (what EMBEDDING_QUANTIZE=auto picks on a CPU with native bf16) keeps every retrieval decision.

Judged with the Chinese stand-in (m3e-small, mean pooling) at the threshold scripts/run.sh gives it: with
all-MiniLM-L6-v2 most Chinese characters are [UNK], and nearly every decision is an easy miss.
"""

from __future__ import annotations

import json

import numpy as np

from tests.support.corpus import ROOT, load_corpus
from tests.support.standin import run_script_default

EVAL_PAIRS = ROOT / "data" / "eval_pairs.jsonl"
THRESHOLD = float(run_script_default("SIMILARITY_THRESHOLD"))

# how far bf16 may move a similarity: measured up to 0.0010 on these prompts (m3e-small, AVX512-BF16)
BF16_MARGIN = 0.002


def top1(embedder, passages: list[str], prompts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(top-1 index, top-1 similarity) per prompt, by exact cosine search."""
    sims = embedder.embed_queries(prompts) @ embedder.embed(passages).T
    return sims.argmax(axis=1), sims.max(axis=1)


def test_bf16_agrees_with_fp32_on_every_decision(m3e_model_path, m3e_embedder):
    """Every decision but those of prompts within bf16's error of the threshold: a similarity of 0.7999 in
    fp32 may be 0.8000 in bf16 (m3e-small puts many prompts near its threshold)."""
    from writing.adapters.embedding.encoder import Embedder

    fp32 = m3e_embedder
    bf16 = Embedder(m3e_model_path, quantize="bf16", pooling=m3e_embedder.pooling, pass_tokens=2048)
    passages = [p["content"] for p in load_corpus()]
    prompts = [json.loads(line)["prompt"] for line in EVAL_PAIRS.read_text(encoding="utf-8").splitlines() if line]
    a, b = fp32.embed_queries(prompts), bf16.embed_queries(prompts)
    cosine = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cosine.min() >= 0.999, cosine.min()
    top_fp32, sim_fp32 = top1(fp32, passages, prompts)
    top_bf16, sim_bf16 = top1(bf16, passages, prompts)
    assert np.abs(sim_fp32 - sim_bf16).max() < BF16_MARGIN
    hit_fp32, hit_bf16 = sim_fp32 >= THRESHOLD, sim_bf16 >= THRESHOLD
    clear = np.abs(sim_fp32 - THRESHOLD) >= BF16_MARGIN
    assert clear.sum() >= 0.9 * len(prompts)  # the check covers most prompts
    changed = [
        (prompts[i][:40], float(sim_fp32[i]), float(sim_bf16[i]))
        for i in np.flatnonzero(clear & ((hit_fp32 != hit_bf16) | (hit_fp32 & (top_fp32 != top_bf16))))
    ]
    assert not changed, f"{len(changed)} of {int(clear.sum())} decisions changed: {changed}"
