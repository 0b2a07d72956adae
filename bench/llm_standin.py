"""Does the local LLM stand-in write readable Chinese? Degenerate answers and miss latency, before and after.

    .venv/bin/python -m bench.llm_standin [--seed 42] [--limit N] [--threads N]

Starts two llama.cpp servers on 127.0.0.1 with ``writing.devtools.local_llm.start``: the stand-in as it was
started before (``stock=True``: ``python -m llama_cpp.server --chat_format gemma``, llama.cpp's defaults)
and as it is started now (the few-shot prompt format and SAMPLING_DEFAULTS of local_llm). Each of the 20
PROMPTS then goes, one request at a time and interleaved, to four configurations:

- ``before``: the stock server, with what the service sends by default (temperature 0.7, top_p 0.9,
  max_tokens 512: LLM_TEMPERATURE, LLM_TOP_P, LLM_MAX_TOKENS);
- ``sampling only``: the stock server with local_llm.SAMPLING_DEFAULTS sent in the request and max_tokens
  256 (what the new defaults alone do, without the new prompt format);
- ``format only``: the new server with llama.cpp's own defaults sent in the request (LLAMA_CPP_DEFAULTS)
  and max_tokens 256 (what the new prompt format alone does);
- ``after``: the new server with what the service sends under scripts/run.sh (max_tokens 256 from its
  LLM_MAX_TOKENS; temperature 0.7, top_p 0.9 as before).

Every request carries ``seed`` (the same for all) and goes through the service's own client
(writing.adapters.llm.client.LLMClient), so its fields are exactly those the service sends on a miss.

Degenerate, as measured here: an answer (the text returned, as is) in which some substring of 6 characters
occurs at least 4 times, occurrences counted overlapping (every start position: "哈" * 9 holds "哈" * 6
four times). Also reported: answers the service would reject as empty, answers cut at max_tokens,
answers that begin with a line break (empty under a caller's stop ["\\n"]), answers that copy 8
characters in a row of one of the stand-in's worked examples, the share of CJK characters among the
non-space ones, the latency of each answer measured at the client (median and p90), tokens per second.
Writes bench/results/llm_standin.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass

from bench.harness import ROOT, pct, save_result
from bench.procfs import machine_busy_s, process_cpu, self_cpu
from writing.devtools import local_llm
from writing.devtools.processes import free_port

PROMPTS = [
    "广州有什么好玩的",
    "写一段描写秋天的文字",
    "写一首关于大海的诗",
    "写一句关于春天的话",
    "给朋友写一封生日祝福",
    "写一篇关于友谊的短文",
    "介绍一下长城",
    "描写一下雨后的街道",
    "写一段关于母爱的文字",
    "用几句话描写冬天的早晨",
    "写一首关于故乡的小诗",
    "写一段毕业典礼上的致辞",
    "描写一只可爱的小猫",
    "怎样才能学好写作",
    "写一段描写夕阳的文字",
    "介绍一下北京的美食",
    "写一段鼓励考生的话",
    "描写一次难忘的旅行",
    "写一首关于星空的现代诗",
    "请用三句话解释TCP三次握手的过程",
]
NGRAM, REPEATS = 6, 4
BEFORE = {"max_tokens": 512, "temperature": 0.7, "top_p": 0.9}  # writing.settings defaults
# llama-cpp-python 0.3.36's own defaults (llama_cpp/server/types.py) for the fields of SAMPLING_DEFAULTS
LLAMA_CPP_DEFAULTS = {"repeat_penalty": 1.1, "frequency_penalty": 0.0, "presence_penalty": 0.0, "min_p": 0.05}
STANDIN_MAX_TOKENS = 256  # scripts/run.sh: LLM_MAX_TOKENS for the stand-in
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def max_repeats(text: str, n: int = NGRAM) -> tuple[int, str]:
    """How often the most frequent substring of ``n`` characters occurs (overlapping), and which it is."""
    counts = Counter(text[i : i + n] for i in range(len(text) - n + 1))
    if not counts:
        return 0, ""
    gram, count = counts.most_common(1)[0]
    return count, gram


def degenerate(text: str) -> bool:
    return max_repeats(text)[0] >= REPEATS


def copies_an_example(text: str, n: int = 8) -> bool:
    """Whether the answer repeats ``n`` characters in a row of one of the stand-in's worked examples."""
    examples = [a for _, a in local_llm.EXAMPLES]
    return any(text[i : i + n] in a for a in examples for i in range(len(text) - n + 1))


def cjk_share(text: str) -> float:
    chars = [c for c in text if not c.isspace()]
    return sum(1 for c in chars if CJK.match(c)) / len(chars) if chars else 0.0


@dataclass
class Answer:
    config: str
    prompt: str
    latency_s: float
    text: str
    error: str | None
    finish_reason: str | None
    completion_tokens: int | None
    max_repeats: int
    repeated: str


@dataclass
class Config:
    name: str
    server: str  # "stock" or "standin"
    max_tokens: int
    temperature: float
    top_p: float
    extra: dict


def configs() -> list[Config]:
    t, p = BEFORE["temperature"], BEFORE["top_p"]
    return [
        Config("before", "stock", BEFORE["max_tokens"], t, p, {}),
        Config("sampling only", "stock", STANDIN_MAX_TOKENS, t, p, dict(local_llm.SAMPLING_DEFAULTS)),
        Config("format only", "standin", STANDIN_MAX_TOKENS, t, p, dict(LLAMA_CPP_DEFAULTS)),
        Config("after", "standin", STANDIN_MAX_TOKENS, t, p, {}),
    ]


async def ask(client, cfg: Config, prompt: str, seed: int) -> Answer:
    from writing.core.models import SamplingParams

    params = SamplingParams(
        max_tokens=cfg.max_tokens, temperature=cfg.temperature, top_p=cfg.top_p, extra={"seed": seed, **cfg.extra}
    )
    t0 = time.perf_counter()
    try:
        c = await client.complete([{"role": "user", "content": prompt}], params)
        text, error, finish, tokens = c.text, None, c.finish_reason, c.completion_tokens
    except Exception as exc:  # the service's own verdict, e.g. LLMEmptyAnswer
        text, error, finish, tokens = "", f"{type(exc).__name__}: {exc}", None, None
    latency = time.perf_counter() - t0
    reps, gram = max_repeats(text)
    return Answer(cfg.name, prompt, latency, text, error, finish, tokens, reps, gram)


def summarise(answers: list[Answer]) -> dict:
    lat = [a.latency_s for a in answers]
    tokens = [a.completion_tokens or 0 for a in answers]
    return {
        "answers": len(answers),
        "degenerate": sum(1 for a in answers if a.max_repeats >= REPEATS),
        "degenerate_share": sum(1 for a in answers if a.max_repeats >= REPEATS) / len(answers),
        "empty_or_error": sum(1 for a in answers if a.error),
        "starts_with_newline": sum(1 for a in answers if a.text.startswith("\n")),
        "copies_an_example": sum(1 for a in answers if copies_an_example(a.text)),
        "cut_at_max_tokens": sum(1 for a in answers if a.finish_reason == "length"),
        "median_latency_s": statistics.median(lat),
        "p90_latency_s": pct(lat, 90),
        "max_latency_s": max(lat),
        "median_tokens": statistics.median(tokens),
        "tokens_per_s": sum(tokens) / sum(lat) if sum(lat) else 0.0,
        "median_chars": statistics.median(len(a.text) for a in answers),
        "median_cjk_share": statistics.median(cjk_share(a.text) for a in answers),
    }


def sh(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine() -> dict:
    lscpu = dict((k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in sh("lscpu").splitlines()) if v)
    return {
        "cpu": lscpu.get("Model name", "?"),
        "cpus": lscpu.get("CPU(s)", "?"),
        "flags": lscpu.get("Flags", "?"),
        "commit": sh("git", "rev-parse", "HEAD"),
        "dirty_files": len(sh("git", "status", "--porcelain").splitlines()),
        "llama_cpp_python": sh(local_llm.DEFAULT_PYTHON, "-c", "import llama_cpp; print(llama_cpp.__version__)"),
    }


def table(summaries: dict[str, dict]) -> str:
    rows = [
        ("answers", "answers", "{}"),
        ("degenerate (a 6-char substring >= 4 times)", "degenerate", "{}"),
        ("degenerate share", "degenerate_share", "{:.0%}"),
        ("empty (the service's 502) or error", "empty_or_error", "{}"),
        ("cut at max_tokens", "cut_at_max_tokens", "{}"),
        ("starts with a line break", "starts_with_newline", "{}"),
        ("copies 8+ characters of a worked example", "copies_an_example", "{}"),
        ("miss latency median (s)", "median_latency_s", "{:.1f}"),
        ("miss latency p90 (s)", "p90_latency_s", "{:.1f}"),
        ("miss latency max (s)", "max_latency_s", "{:.1f}"),
        ("completion tokens, median", "median_tokens", "{:.0f}"),
        ("tokens per second (all answers)", "tokens_per_s", "{:.1f}"),
        ("answer length, median (chars)", "median_chars", "{:.0f}"),
        ("CJK share of non-space chars, median", "median_cjk_share", "{:.0%}"),
    ]
    names = list(summaries)
    out = ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for label, key, fmt in rows:
        out.append(f"| {label} | " + " | ".join(fmt.format(summaries[n][key]) for n in names) + " |")
    return "\n".join(out)


async def run(args) -> dict:
    from writing.adapters.llm.client import LLMClient

    prompts = PROMPTS[: args.limit] if args.limit else PROMPTS
    procs, clients = {}, {}
    log_dir = ROOT / "bench" / "results"
    log_dir.mkdir(parents=True, exist_ok=True)
    info = machine()
    try:
        for server, stock in (("stock", True), ("standin", False)):
            port = free_port()
            procs[server] = local_llm.start(
                port, log_path=log_dir / f"llm_standin.{server}.log", threads=args.threads, stock=stock
            )
            clients[server] = LLMClient(
                base_url=f"http://127.0.0.1:{port}/v1", api_key="EMPTY", timeout=args.timeout, max_retries=0
            )
        cfgs = configs()
        for cfg in cfgs:  # warm-up, not counted: the first request of a server loads pages and fills its cache
            await ask(clients[cfg.server], Config(cfg.name, cfg.server, 8, 0.7, 0.9, {}), "你好", args.seed)
        load_before, uptime_before = os.getloadavg(), sh("uptime")
        cpu0 = {s: process_cpu(p.pid) for s, p in procs.items()}
        busy0, self0, t0 = machine_busy_s(), self_cpu(), time.perf_counter()
        answers: list[Answer] = []
        for i, prompt in enumerate(prompts):
            for cfg in cfgs:
                a = await ask(clients[cfg.server], cfg, prompt, args.seed)
                answers.append(a)
                flag = "DEGENERATE" if a.max_repeats >= REPEATS else "ok"
                print(
                    f"[{i + 1}/{len(prompts)}] {cfg.name:13} {a.latency_s:5.1f}s {flag:10} {a.max_repeats:3}x "
                    f"{a.text[:60]!r}",
                    file=sys.stderr,
                    flush=True,
                )
        wall = time.perf_counter() - t0
        ours = sum(process_cpu(p.pid) - cpu0[s] for s, p in procs.items()) + (self_cpu() - self0)
        foreign = max(0.0, (machine_busy_s() - busy0 - ours) / wall)
        load_after, uptime_after = os.getloadavg(), sh("uptime")
    finally:
        for c in clients.values():
            await c.close()
        for p in procs.values():
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
    summaries = {cfg.name: summarise([a for a in answers if a.config == cfg.name]) for cfg in cfgs}
    return {
        "machine": info,
        "load": {
            "uptime_before": uptime_before,
            "uptime_after": uptime_after,
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "foreign_cores_during_run": foreign,
            "wall_s": wall,
        },
        "settings": {
            "seed": args.seed,
            "threads": args.threads or "llama.cpp's default (cores // 2)",
            "configs": [asdict(c) for c in cfgs],
            "standin_sampling_defaults": local_llm.SAMPLING_DEFAULTS,
            "standin_prompt_format": local_llm.PROMPT_FORMAT,
            "standin_stop": list(local_llm.STOP),
            "stock_command": local_llm.command(0, stock=True, model="MODEL"),
            "standin_command": local_llm.command(0, model="MODEL"),
            "degenerate": f"some {NGRAM}-character substring occurs >= {REPEATS} times, overlapping",
        },
        "summaries": summaries,
        "answers": [asdict(a) for a in answers],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--limit", type=int, default=0, help="only the first N prompts (0: all 20)")
    parser.add_argument(
        "--threads", type=int, default=None, help="llama.cpp threads of both servers (default: llama.cpp's, as run.sh)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds for one answer")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    path = save_result(result, "llm_standin")
    print(table(result["summaries"]))
    print(f"\nload: {result['load']['uptime_before']} -> {result['load']['uptime_after']}")
    print(f"other processes used {result['load']['foreign_cores_during_run']:.2f} cores during the run")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
