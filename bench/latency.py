"""Median hit and miss latency of a running service, sequentially (concurrency 1).

    .venv/bin/python -m bench.latency --url http://127.0.0.1:8000 -n 20

Hits: the first N passages of the sample corpus sent as prompts (each returns from Milvus).
Misses: N distinct unrelated prompts with Cache-Control: no-store (each goes to the LLM).
Both use GET /generate, as upstream callers do. Prints medians, p90 and the Server-Timing stages.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import httpx

from bench.harness import SAMPLE_CORPUS, load_jsonl

MISS_TOPICS = [
    "TCP三次握手",
    "Python装饰器",
    "复利的计算方法",
    "如何配置路由器",
    "劳动合同的试用期",
    "显卡驱动安装",
    "SQL索引的原理",
    "二叉树的遍历",
    "HTTP缓存头",
    "Linux文件权限",
]


def stages(header: str) -> dict[str, float]:
    out = {}
    for part in filter(None, (p.strip() for p in header.split(","))):
        name, _, dur = part.partition(";dur=")
        out[name] = float(dur)
    return out


def run(client: httpx.Client, prompts: list[str], headers: dict) -> tuple[list[float], list[dict], list[str]]:
    times, timings, sources = [], [], []
    for p in prompts:
        t0 = time.perf_counter()
        r = client.get("/generate", params={"prompt": p}, headers=headers)
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        timings.append(stages(r.headers.get("server-timing", "")))
        sources.append(r.headers.get("x-writing-source", "?"))
    return times, timings, sources


def summary(name: str, times: list[float], timings: list[dict], sources: list[str]) -> str:
    q = statistics.quantiles(times, n=10)
    med = {
        k: statistics.median(t[k] for t in timings if k in t)
        for k in ("embed", "search", "llm")
        if any(k in t for t in timings)
    }
    stage_text = ", ".join(f"{k} {v:.1f} ms" for k, v in med.items())
    return (
        f"| {name} | {len(times)} | {statistics.median(times):.1f} | {q[-1]:.1f} | {stage_text} | "
        f"{', '.join(f'{s}={sources.count(s)}' for s in sorted(set(sources)))} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("-n", type=int, default=20)
    parser.add_argument("--api-key", default="")
    args = parser.parse_args(argv)
    corpus = [r["content"] for r in load_jsonl(SAMPLE_CORPUS)]
    hits = corpus[: args.n]
    stamp = int(time.time())
    misses = [f"请简要解释{MISS_TOPICS[i % len(MISS_TOPICS)]}（{stamp}-{i}）" for i in range(args.n)]
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    with httpx.Client(base_url=args.url, timeout=300) as client:
        client.get("/generate", params={"prompt": corpus[-1]}, headers=headers)  # warm-up
        hit = run(client, hits, headers)
        miss = run(client, misses, {**headers, "Cache-Control": "no-store"})
    print("| requests | n | median ms | p90 ms | stage medians | sources |")
    print("|---|---|---|---|---|---|")
    print(summary("hit", *hit))
    print(summary("miss", *miss))
    return 0


if __name__ == "__main__":
    sys.exit(main())
