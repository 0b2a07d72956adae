"""Fairness between keys: a noisy neighbour, and a corpus import under load (issue 25, part 4).

    .venv/bin/python -m bench.fairness [--tree DIR] [--rounds 1] [--duration 15] [--noisy 48] [--quiet 2]

One service at a time (``uvicorn app:app``, the test model, a new Milvus Lite file with the sample corpus and
short passages, a fake LLM sleeping ``--llm-delay`` s), keys quiet, noisy, steady1..4 (a tenant each), admin;
ANSWER_CACHE=false, MAX_BODY_BYTES=4 MiB (a 1,000-line import is over 256 KiB), the defaults otherwise.

- **Prompts**. *Short hits*: a short stored passage (bench/floor.py's SHORT, the first 12 characters of each
  sample passage) with spaces between other characters each time: a new text (the exact tier and the LRU
  miss it), the same tokens (CJK is split per character, spaces dropped): each runs the model and is a
  curated hit. *Window fillers*: shuffled sample sentences cut to ``--fill`` (0.9) of the window (as the
  service reports it) in tokens: each runs the model at nearly full length, none is bypassed as too long.
- **Noisy neighbour** (``--duration`` s each): the quiet key alone (``--quiet`` concurrent short hits,
  closed loop): p50/p99. The noisy key alone (``--noisy`` concurrent window fillers): its throughput C,
  the model's capacity. Both: the quiet key's p50/p99 against its baseline; the noisy key's throughput
  against its fair share: two keys active, each is owed half the model, C/2; the quiet key uses far
  less and a work-conserving scheduler gives the rest to the noisy one, so noisy/(C/2) (>= 1: not
  starved) and noisy/C (what it kept) are reported. 429/503 per key: within its MAX_IN_FLIGHT_SHARE a
  noisy key should be slowed, not refused.
- **Import under load**: one ``POST /v1/corpus/import`` of ``--import-lines`` (1,000) new passages of
  100-300 characters on the idle service: its duration (a 202 is polled until done). Then steady1..4
  (one short hit at a time each) for ``--duration`` s, then again while the admin imports as many new
  ones: their p50/p99 over the requests that overlapped the import, against alone; the import's duration.

``--tree DIR`` (another checkout, e.g. ``git worktree add /tmp/before REV``) runs the same on DIR's service
("before") and this tree's ("after"), rounds alternating the order, each tree against its own baselines.
Medians over rounds: a markdown table on stdout, JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bench.floor import SHORT
from bench.harness import (
    ROOT,
    SAMPLE_CORPUS,
    Service,
    load_jsonl,
    machine_info,
    model_path,
    pct,
    save_result,
    service_env,
    versions,
    wait_for_idle,
)
from bench.loadgen import LeanClient
from writing.devtools.fake_llm import FakeLLM

CALLERS = {"quiet": "quiet-key", "noisy": "noisy-key"} | {f"steady{i}": f"steady{i}" for i in range(1, 5)}
TENANTS = {"quiet": "quiet", "noisy": "noisy"} | {f"steady{i}": f"s{i}" for i in range(1, 5)}
ADMIN_KEY = "admin-key"
SEMANTIC = ("milvus:semantic", "milvus:")  # X-Writing-Source:X-Match-Kind of a semantic hit (before 1.3: no kind)
DONE = ("done", "completed", "finished", "succeeded", "failed", "error")
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def cpu_flags() -> list[str]:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    return [f for f in FLAGS if f in next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), [])]


def commit_of(tree: Path) -> str:
    git = ["git", "-C", str(tree)]
    sha = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return (sha or "?") + ("+dirty" if dirty.stdout.strip() else "")


# -- prompts ---------------------------------------------------------------------------------------------
def short_bases() -> list[str]:
    return SHORT + [r["content"][:12].rstrip("，。、；：！？") for r in load_jsonl(SAMPLE_CORPUS)]


class Prompts:
    """Unique prompts for one service: short hits (``short``), window fillers (``long``), new passages."""

    def __init__(self, tokenizer, fill_tokens: int, seed: int) -> None:
        self.bases, self.tok, self.fill, self.rng = short_bases(), tokenizer, fill_tokens, random.Random(seed)
        texts = [r["content"] for r in load_jsonl(SAMPLE_CORPUS)]
        self.sentences = [x + "。" for t in texts for x in t.split("。") if len(x) >= 6]
        self.n_short = self.n_long = self.n_passages = 0
        self.variants = len(self.bases) * 2 ** (max(map(len, self.bases)) - 1)

    def short(self) -> str:
        """Base b with spaces in the gaps that the bits of k name (k >= 1: never the stored text)."""
        while True:
            b, k = self.n_short % len(self.bases), self.n_short // len(self.bases) + 1
            self.n_short = (self.n_short + 1) % self.variants  # all used up: again (the LRU forgot them)
            base = self.bases[b]
            if k < 2 ** (len(base) - 1):  # else this base's variants are used up; the others go on
                return "".join(c + (" " if k >> i & 1 else "") for i, c in enumerate(base[:-1])) + base[-1]

    def long(self) -> str:
        self.n_long += 1
        text = self._text(f"第{self.n_long}篇：", self.fill + 16)
        while (extra := len(self.tok(text, verbose=False)["input_ids"]) - self.fill) > 0:
            text = text[: len(text) - extra]  # CJK: one token per character
        return text

    def passages(self, n: int, tag: str) -> list[dict]:
        """``n`` new passages of 100-300 characters (sample sentences shuffled, a unique head)."""
        self.n_passages += n
        return [{"content": self._text(f"（{tag}{i}）", self.rng.randint(100, 300)), "biz_id": f"import-{tag}-{i}"}
                for i in range(self.n_passages - n, self.n_passages)]  # fmt: skip

    def _text(self, text: str, chars: int) -> str:
        while len(text) < chars:
            text += self.rng.choice(self.sentences)
        return text[:chars]


# -- load --------------------------------------------------------------------------------------------------
@dataclass
class Sample:
    start: float
    end: float
    status: int | str
    kind: str  # X-Writing-Source:X-Match-Kind or the bypass reason


async def closed_loop(client: LeanClient, key: str, prompt: Callable[[], str], n: int, stop: asyncio.Event) -> list:
    samples: list[Sample] = []
    headers = {"Authorization": f"Bearer {key}"}

    async def worker() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                r = await client.get("/generate", params={"prompt": prompt()}, headers=headers)
                status, h = r.status_code, r.headers
                kind = f"{h.get('x-writing-source', '-')}:{h.get('x-match-kind') or h.get('x-cache-bypass-reason', '')}"
            except Exception as exc:  # a timeout or a dropped connection: counted, not fatal
                status, kind = type(exc).__name__, "-"
            samples.append(Sample(t0, time.perf_counter(), status, kind))

    await asyncio.gather(*(worker() for _ in range(n)))
    return samples


def stats(samples: list[Sample], t0: float, t1: float) -> dict:
    ok = [s for s in samples if s.status == 200]
    lat = [(s.end - s.start) * 1000 for s in ok]
    return {"n": len(ok), "rps": sum(1 for s in ok if s.end <= t1) / (t1 - t0), "p50_ms": pct(lat, 50),
            "p99_ms": pct(lat, 99), "statuses": dict(Counter(str(s.status) for s in samples)),
            "kinds": dict(Counter(s.kind for s in ok))}  # fmt: skip


async def phase(url: str, who: dict[str, tuple[Callable[[], str], int]], until: Awaitable) -> tuple[dict, list]:
    """Each key of ``who`` runs its closed loop until ``until`` is done: stats per key, and every sample."""
    stop = asyncio.Event()
    clients = {name: LeanClient(url, timeout=900) for name in who}
    t0 = time.perf_counter()
    tasks = [asyncio.ensure_future(closed_loop(clients[k], CALLERS[k], p, n, stop)) for k, (p, n) in who.items()]
    await until
    t1 = time.perf_counter()
    stop.set()
    done = await asyncio.gather(*tasks)
    for c in clients.values():
        await c.aclose()
    pooled = [s for d in done for s in d]
    return {k: stats(s, t0, t1) for k, s in zip(who, done, strict=True)} | {"all": stats(pooled, t0, t1)}, pooled


async def run_import(admin, lines: list[dict]) -> dict:
    """One import; a job-style answer (202) is polled until it says it is done."""
    body = {"jsonl": "\n".join(json.dumps(x, ensure_ascii=False) for x in lines), "first_line": 1}
    t0 = time.perf_counter()
    r = await admin.post("/v1/corpus/import", json=body)
    out = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    if r.status_code == 202:
        where = r.headers.get("location") or out.get("url") or f"/v1/corpus/import/{out.get('id') or out.get('job_id')}"
        polled = r
        while polled.status_code in (200, 202) and str(out.get("status", "")).lower() not in DONE:
            await asyncio.sleep(0.1)
            polled = await admin.get(where)
            out = polled.json()
    wall = time.perf_counter() - t0
    return {"s": wall, "t0": t0, "t1": t0 + wall, "status": r.status_code, "inserted": out.get("inserted"),
            "errors": len(out.get("errors") or [])}  # fmt: skip


async def measure(service: Service, args, tokenizer, seed: int, log) -> dict:
    import httpx

    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=service.url, headers=auth, timeout=900) as admin:
        records = [{"content": r["content"], "biz_id": r["biz_id"]} for r in load_jsonl(SAMPLE_CORPUS)]
        records += [{"content": t, "biz_id": f"short-{i}"} for i, t in enumerate(short_bases())]
        (await admin.post("/v1/corpus", json={"passages": records})).raise_for_status()
        r = await admin.get("/v1/corpus/stats")  # the window as the service sees it (the tokens it embeds)
        window = r.json().get("max_tokens") if r.status_code == 200 else None
        window = window or json.loads((Path(model_path()) / "sentence_bert_config.json").read_text())["max_seq_length"]
        p = Prompts(tokenizer, int(args.fill * window), seed)
        out: dict = {"window_tokens": window, "long_tokens": len(tokenizer(p.long())["input_ids"])}
        out["short_tokens"] = statistics.median(len(tokenizer(p.short())["input_ids"]) for _ in range(50))
        url, sleep = service.url, asyncio.sleep
        await phase(url, {"quiet": (p.short, 4), "noisy": (p.long, 8)}, sleep(args.warm))  # warm-up
        await run_import(admin, p.passages(16, "warm"))

        # 1. the noisy neighbour
        quiet, noisy = (p.short, args.quiet), (p.long, args.noisy)
        out["quiet_alone"] = (await phase(url, {"quiet": quiet}, sleep(args.duration)))[0]["quiet"]
        out["noisy_alone"] = (await phase(url, {"noisy": noisy}, sleep(args.duration)))[0]["noisy"]
        out["both"] = (await phase(url, {"quiet": quiet, "noisy": noisy}, sleep(args.duration)))[0]
        log(f"  quiet alone {brief(out['quiet_alone'])}; noisy alone {out['noisy_alone']['rps']:.1f} req/s; "
            f"together: quiet {brief(out['both']['quiet'])}, noisy {out['both']['noisy']['rps']:.1f} req/s")  # fmt: skip

        # 2. an import under load
        out["import_idle"] = await run_import(admin, p.passages(args.import_lines, "idle"))
        steady = {f"steady{i}": (p.short, 1) for i in range(1, 5)}
        out["steady_alone"] = (await phase(url, steady, sleep(args.duration)))[0]
        lines = p.passages(args.import_lines, "load")

        async def lead_import_tail() -> None:
            await sleep(1.0)
            out["import_load"] = await run_import(admin, lines)
            await sleep(0.5)

        _, samples = await phase(url, steady, lead_import_tail())
        imp = out["import_load"]
        overlap = [s for s in samples if s.start < imp["t1"] and s.end > imp["t0"]]
        out["steady_import"] = stats(overlap, imp["t0"], imp["t1"])
        log(f"  import idle {out['import_idle']['s']:.2f}s, under load {imp['s']:.2f}s; steady alone "
            f"{brief(out['steady_alone']['all'])}, during the import {brief(out['steady_import'])}")  # fmt: skip
        return out


def median(values: list) -> float | None:
    return statistics.median(v) if (v := [x for x in values if x is not None]) else None


def brief(s: dict) -> str:
    return f"p50 {s['p50_ms'] or 0:.1f} / p99 {s['p99_ms'] or 0:.1f} ms (n {s['n']})"


def refused(s: dict) -> tuple[int, int]:
    return s["statuses"].get("429", 0), s["statuses"].get("503", 0)


def figures(r: dict) -> dict[str, float | None]:
    """One round's numbers as the table reads them."""
    qa, na, qb, nb = r["quiet_alone"], r["noisy_alone"], r["both"]["quiet"], r["both"]["noisy"]
    sa, si, c = r["steady_alone"]["all"], r["steady_import"], r["noisy_alone"]["rps"]
    div = lambda a, b: a / b if a is not None and b else None  # noqa: E731
    q429, q503 = (sum(x) for x in zip(refused(qa), refused(qb), strict=True))
    n429, n503 = (sum(x) for x in zip(refused(na), refused(nb), strict=True))
    phases = (qa, na, qb, nb, sa, si)
    others = sum(v for s in phases for k, v in s["statuses"].items() if k not in ("200", "429", "503"))
    return {
        "quiet_alone_p50": qa["p50_ms"], "quiet_alone_p99": qa["p99_ms"],
        "quiet_both_p50": qb["p50_ms"], "quiet_both_p99": qb["p99_ms"], "quiet_both_n": qb["n"],
        "quiet_p50_ratio": div(qb["p50_ms"], qa["p50_ms"]), "quiet_p99_ratio": div(qb["p99_ms"], qa["p99_ms"]),
        "noisy_alone_rps": c, "noisy_both_rps": nb["rps"],
        "noisy_vs_fair": div(nb["rps"], c / 2), "noisy_vs_alone": div(nb["rps"], c),
        "quiet_429": q429, "quiet_503": q503, "noisy_429": n429, "noisy_503": n503,
        "steady_alone_p50": sa["p50_ms"], "steady_alone_p99": sa["p99_ms"],
        "steady_import_p50": si["p50_ms"], "steady_import_p99": si["p99_ms"], "steady_import_n": si["n"],
        "steady_p50_ratio": div(si["p50_ms"], sa["p50_ms"]), "steady_p99_ratio": div(si["p99_ms"], sa["p99_ms"]),
        "steady_refused": sum(sum(refused(s)) for s in (sa, si)),
        "import_idle_s": r["import_idle"]["s"], "import_load_s": r["import_load"]["s"],
        "import_inserted": min(r["import_idle"]["inserted"] or 0, r["import_load"]["inserted"] or 0),
        "other_failures": others,
        "quiet_not_semantic_hits": sum(v for s in (qa, qb, sa, si) for k, v in s["kinds"].items() if k not in SEMANTIC),
    }  # fmt: skip


ROWS = [  # label, format, keys
    ("quiet key alone: p50 / p99", "{:.1f} / {:.1f} ms", ("quiet_alone_p50", "quiet_alone_p99")),
    ("quiet key beside the noisy one: p50 / p99 (requests)", "{:.1f} / {:.1f} ms ({:.0f})", ("quiet_both_p50", "quiet_both_p99", "quiet_both_n")),
    ("**quiet p50 / p99, beside vs alone**", "**{:.2f}x / {:.2f}x**", ("quiet_p50_ratio", "quiet_p99_ratio")),
    ("noisy key alone (its capacity C)", "{:.1f} req/s", ("noisy_alone_rps",)),
    ("noisy key beside the quiet one", "{:.1f} req/s", ("noisy_both_rps",)),
    ("**noisy vs its fair share C/2**", "**{:.2f}x**", ("noisy_vs_fair",)),
    ("noisy vs alone (C)", "{:.2f}x", ("noisy_vs_alone",)),
    ("429 / 503: quiet key", "{:.0f} / {:.0f}", ("quiet_429", "quiet_503")),
    ("429 / 503: noisy key", "{:.0f} / {:.0f}", ("noisy_429", "noisy_503")),
    ("4 steady keys alone: p50 / p99", "{:.1f} / {:.1f} ms", ("steady_alone_p50", "steady_alone_p99")),
    ("4 steady keys during the import: p50 / p99", "{:.1f} / {:.1f} ms", ("steady_import_p50", "steady_import_p99")),
    ("**steady p99 during the import vs alone**", "**{:.2f}x**", ("steady_p99_ratio",)),
    ("steady p50 during the import vs alone", "{:.2f}x", ("steady_p50_ratio",)),
    ("steady requests overlapping the import; refused (429/503)", "{:.0f}; {:.0f}", ("steady_import_n", "steady_refused")),
    ("import, idle service", "{:.2f} s", ("import_idle_s",)),
    ("**import under the steady load**", "**{:.2f} s**", ("import_load_s",)),
    ("passages inserted per import", "{:.0f}", ("import_inserted",)),
    ("other failures; short prompts not served as semantic hits", "{:.0f}; {:.0f}", ("other_failures", "quiet_not_semantic_hits")),
]  # fmt: skip


def markdown(result: dict) -> str:
    trees, a = result["trees"], result["args"]
    m, fail = result["machine"], lambda t: ", FAILED" * bool(t.get("failed"))
    head = " | ".join(f"{label} ({t['path']} @ {t['commit']}{fail(t)})" for label, t in trees.items())
    lines = [
        f"## Fairness: a noisy neighbour, an import under load ({result['timestamp']})",
        "",
        f"- {m['cpu']}, {m['affinity']} cores; flags: {', '.join(result['cpu_flags']) or 'none of ' + ', '.join(FLAGS)}; "
        f"{result['foreign_cores_at_start']:.2f} cores busy elsewhere at start",
        f"- {a['rounds']} round(s), medians; {a['duration']:.0f} s per phase; quiet key: {a['quiet']} concurrent short hits "
        f"(~{result['short_tokens']:.0f} tokens); noisy key: {a['noisy']} concurrent window fillers ({result['long_tokens']} "
        f"of {result['window_tokens']} tokens); 4 steady keys, 1 each; imports of {a['import_lines']} lines; "
        f"fake LLM {a['llm_delay']} s",
        "",
        f"| | {head} |",
        "|---|" + "---:|" * len(trees),
    ]  # fmt: skip
    for label, fmt, keys in ROWS:
        cells = []
        for t in trees.values():
            vals = [t["median"].get(k) for k in keys]
            cells.append("-" if any(v is None for v in vals) else fmt.format(*vals))
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, help="an older checkout to run beside this one (before)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per phase")
    parser.add_argument("--quiet", type=int, default=2, help="the quiet key's concurrency")
    parser.add_argument("--noisy", type=int, default=48, help="the noisy key's concurrency (32-64)")
    parser.add_argument("--fill", type=float, default=0.9, help="a window filler's tokens, as a share of the window")
    parser.add_argument("--import-lines", type=int, default=1000)
    parser.add_argument("--llm-delay", type=float, default=0.05, help="seconds the fake LLM sleeps per answer")
    parser.add_argument("--warm", type=float, default=3.0, help="seconds of warm-up traffic per service")
    parser.add_argument("--wait-idle", type=float, default=60)
    parser.add_argument("--service-env", action="append", default=[], metavar="KEY=VALUE", help="extra service env")
    parser.add_argument("--no-json", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[fairness {time.perf_counter() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path())
    trees = {"after": ROOT} if args.tree is None else {"before": args.tree.resolve(), "after": ROOT}
    result: dict = {
        "timestamp": dt.datetime.now().strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine_info(),
        "cpu_flags": cpu_flags(), "versions": versions(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "trees": {label: {"path": str(t), "commit": commit_of(t), "rounds": []} for label, t in trees.items()},
    }  # fmt: skip
    result["foreign_cores_at_start"] = wait_for_idle(args.wait_idle, log)
    keys = ",".join(f"{CALLERS[k]}:{TENANTS[k]}" for k in CALLERS)
    env_extra = {"API_KEYS": keys, "ADMIN_API_KEYS": ADMIN_KEY, "MAX_BODY_BYTES": str(4 * 2**20)}
    env_extra |= dict(kv.split("=", 1) for kv in args.service_env)
    with tempfile.TemporaryDirectory(prefix="writing-fairness-") as tmp, FakeLLM() as llm:
        llm.state.delay = args.llm_delay
        for i in range(args.rounds):
            for label in list(trees) if i % 2 == 0 else list(trees)[::-1]:
                tree, rows = trees[label], result["trees"][label]["rounds"]
                extra = env_extra | ({"PYTHONPATH": str(tree)} if tree != ROOT else {})
                env = service_env(model_path(), f"{tmp}/{label}-{i}.db", llm.base_url, cache=True, extra=extra)
                service = Service(env, Path(tmp) / f"{label}-{i}.log", cwd=tree)
                log(f"round {i}, {label} ({tree}): starting the service")
                try:
                    service.start()
                    rows.append(asyncio.run(measure(service, args, tokenizer, seed=i, log=log)))
                except Exception as exc:  # e.g. a tree mid-edit that does not start: the other goes on
                    log(f"round {i}, {label} FAILED: {exc!r}")
                    result["trees"][label].setdefault("failed", []).append(repr(exc))
                finally:
                    service.stop()
                    result["trees"][label].setdefault("service_errors", []).extend(service.errors())
    for t in result["trees"].values():
        figs = [figures(r) for r in t["rounds"]]
        t["median"] = {k: median([f[k] for f in figs]) for k in (figs[0] if figs else {})}
    done = [r for t in result["trees"].values() for r in t["rounds"]]
    if not done:
        log("no service ran to the end: nothing to report")
        return 1
    result.update({k: done[-1][k] for k in ("window_tokens", "long_tokens", "short_tokens")})
    print(markdown(result))
    if not args.no_json:
        stamp = result["timestamp"].replace(":", "")
        print(f"\nJSON: {save_result(result, f'fairness-{stamp}')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
