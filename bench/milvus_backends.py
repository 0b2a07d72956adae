"""Top-1 COSINE search latency of three Milvus back-ends, on random 1024-dim unit vectors.

    .venv/bin/python -m bench.milvus_backends [--large] [--queries 50] [--backends lite,server,lite3]

Back-ends (each measured in its own process):

- lite:   Milvus Lite 2.5.1 through pymilvus 2.6 (the service's .venv);
- server: a Milvus standalone server (``.venv/bin/milvus-server``, PyPI package ``milvus``) on
          non-default ports, with its data in a temporary folder; stopped (whole process group) at the end;
- lite3:  Milvus Lite 3.x through pymilvus 3.x, from a separate venv (``.venv-lite3``; create it with
          ``python -m venv .venv-lite3 && .venv-lite3/bin/pip install pymilvus==3.0.2 milvus-lite==3.2.2 numpy``).

For 1k and 10k rows (and 100k with ``--large``): create a collection (INT64 id, FLOAT_VECTOR 1024,
AUTOINDEX COSINE, Bounded), insert in chunks of 1000 (timed, with flush + load), then time
``--queries`` single-vector top-1 searches with Bounded consistency (after a short warm-up), and
report the median. The measuring function only needs pymilvus and numpy, so it runs in either venv:
the script re-invokes itself (``PYTHON -m bench.milvus_backends --backend NAME``, from the repository
root); besides pymilvus and numpy, the child imports only standard-library code from this checkout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import ROOT
from writing.devtools.processes import free_port, milvus_server_command, stop_process_group

DIM = 1024
CHUNK = 1000


# -- the measurement (runs inside the venv under test) ---------------------------------------------------
def measure(uri: str, sizes: list[int], queries: int, seed: int = 7) -> list[dict]:
    from importlib.metadata import version

    import numpy as np
    from pymilvus import DataType, MilvusClient

    rng = np.random.default_rng(seed)
    client = MilvusClient(uri)
    rows_out = []
    for n in sizes:
        name = f"bench_{n}"
        if client.has_collection(name):
            client.drop_collection(name)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
        index = client.prepare_index_params()
        index.add_index("vec", index_type="AUTOINDEX", metric_type="COSINE")
        client.create_collection(name, schema=schema, index_params=index, consistency_level="Bounded")

        t0 = time.perf_counter()
        for start in range(0, n, CHUNK):
            k = min(CHUNK, n - start)
            v = rng.standard_normal((k, DIM), dtype=np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            client.insert(name, [{"id": start + i, "vec": v[i].tolist()} for i in range(k)])
        insert_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        with contextlib.suppress(Exception):  # Lite persists on insert; a server seals segments on flush
            client.flush(name)
        client.load_collection(name)
        flush_load_s = time.perf_counter() - t1

        q = rng.standard_normal((queries + 5, DIM), dtype=np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)

        def search(vec, name=name):
            return client.search(
                name,
                data=[vec.tolist()],
                anns_field="vec",
                limit=1,
                search_params={"metric_type": "COSINE"},
                consistency_level="Bounded",
            )

        # Bounded consistency may not see the newest rows at once: wait until the count is complete
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = client.query(name, filter="id >= 0", output_fields=["count(*)"], consistency_level="Strong")
            if got and int(got[0]["count(*)"]) >= n:
                break
            time.sleep(0.5)
        for vec in q[:5]:  # warm-up
            search(vec)
        times, found = [], 0
        for vec in q[5:]:
            t = time.perf_counter()
            res = search(vec)
            times.append((time.perf_counter() - t) * 1000)
            found += bool(res and res[0])
        # exactness check: a stored vector must find itself
        probe = client.query(name, filter="id == 3", output_fields=["vec"], consistency_level="Strong")
        self_hit = None
        if probe:
            r = search(np.asarray(probe[0]["vec"], dtype=np.float32))
            self_hit = bool(r and r[0] and int(r[0][0]["id"]) == 3)
        rows_out.append({
            "rows": n,
            "insert_s": insert_s,
            "flush_load_s": flush_load_s,
            "search_ms_median": statistics.median(times),
            "search_ms_p90": sorted(times)[int(0.9 * (len(times) - 1))],
            "search_ms_min": min(times),
            "queries": len(times),
            "answered": found,
            "self_hit": self_hit,
            "pymilvus": version("pymilvus"),
            "milvus_lite": _maybe_version("milvus-lite"),
        })  # fmt: skip
        client.drop_collection(name)
        print(f"[milvus_backends] {uri[:60]} {n} rows: {rows_out[-1]}", file=sys.stderr, flush=True)
    client.close()
    return rows_out


def _maybe_version(pkg: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


# -- the Milvus standalone server ------------------------------------------------------------------------
class Server:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.etcd_port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = data_dir.parent / "milvus-server.log"

    def start(self, timeout: float = 240) -> float:
        exe = shutil.which("milvus-server", path=str(Path(sys.executable).parent)) or "milvus-server"
        cmd = milvus_server_command(
            exe, str(self.data_dir), "--proxy-port", str(self.port), "--etcd-port", str(self.etcd_port)
        )
        t0 = time.perf_counter()
        with open(self.log, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        from pymilvus import MilvusClient

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"milvus-server exited ({self.proc.returncode}); see {self.log}")
            with contextlib.suppress(Exception):
                c = MilvusClient(self.uri, timeout=3)
                c.list_collections(timeout=3)
                c.close()
                return time.perf_counter() - t0
            time.sleep(1)
        raise TimeoutError(f"milvus-server not ready in {timeout}s; see {self.log}")

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_process_group(self.proc, grace=20)  # the data is thrown away: no long graceful stop
        self.proc = None


# -- orchestration -------------------------------------------------------------------------------------------
def run_child(python: str, backend: str, uri: str, sizes: list[int], queries: int, timeout: float) -> list[dict]:
    cmd = [python, "-m", "bench.milvus_backends", "--backend", backend, "--uri", uri,
           "--sizes", ",".join(map(str, sizes)), "--queries", str(queries), "--json"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILVUS_")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    sys.stderr.write(proc.stderr[-2000:] if proc.returncode else "")
    if proc.returncode != 0:
        raise RuntimeError(f"{backend} failed ({proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="lite,server,lite3", help="which of lite, server, lite3")
    parser.add_argument("--large", action="store_true", help="also 100k rows (Lite 2.5.1 takes minutes to insert)")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=900, help="seconds per back-end")
    parser.add_argument("--backend", help=argparse.SUPPRESS)  # child mode: measure one back-end
    parser.add_argument("--uri", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", help="comma-separated row counts (default 1000,10000[,100000])")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--python", default=None, help="interpreter for lite3 (default .venv-lite3/bin/python)")
    args = parser.parse_args(argv)

    if args.backend:  # child
        sizes = [int(s) for s in args.sizes.split(",")]
        print(json.dumps(measure(args.uri, sizes, args.queries)))
        return 0

    sizes = (
        [int(s) for s in args.sizes.split(",")] if args.sizes else [1000, 10_000] + ([100_000] if args.large else [])
    )
    lite3_python = args.python or str(ROOT / ".venv-lite3" / "bin" / "python")
    results: dict[str, list[dict] | str] = {}
    notes: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="milvus-backends-") as tmp:
        tmp = Path(tmp)
        for backend in args.backends.split(","):
            t0 = time.perf_counter()
            try:
                if backend == "lite":
                    results[backend] = run_child(
                        sys.executable, backend, str(tmp / "lite.db"), sizes, args.queries, args.timeout
                    )
                elif backend == "lite3":
                    if not Path(lite3_python).exists():
                        raise RuntimeError(f"{lite3_python} is missing; see the module docstring")
                    results[backend] = run_child(
                        lite3_python, backend, str(tmp / "lite3.db"), sizes, args.queries, args.timeout
                    )
                elif backend == "server":
                    (tmp / "server").mkdir()
                    server = Server(tmp / "server" / "data")
                    try:
                        up = server.start()
                        notes[backend] = f"started in {up:.0f} s on proxy port {server.port}"
                        results[backend] = run_child(
                            sys.executable, backend, server.uri, sizes, args.queries, args.timeout
                        )
                    finally:
                        server.stop()
                else:
                    raise ValueError(f"unknown back-end {backend}")
            except Exception as exc:
                results[backend] = f"failed: {exc}"
            print(f"[milvus_backends] {backend} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    labels = {
        "lite": "Milvus Lite (pymilvus {pymilvus}, milvus-lite {milvus_lite})",
        "server": "Milvus standalone 2.3.5 server (pymilvus {pymilvus})",
        "lite3": "Milvus Lite (pymilvus {pymilvus}, milvus-lite {milvus_lite})",
    }
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "?")  # fmt: skip
    print(f"## Milvus back-ends: top-1 COSINE search, {DIM}-dim random unit vectors, Bounded consistency\n")
    print(f"- machine: {os.cpu_count()} CPUs, {cpu}; {args.queries} queries per size (median), AUTOINDEX")
    for k, v in notes.items():
        print(f"- {k}: {v}")
    print()
    print("| back-end | rows | search median ms | p90 ms | insert s | flush+load s | self-hit |")
    print("|---|---:|---:|---:|---:|---:|:---:|")
    for backend, rows in results.items():
        if isinstance(rows, str):
            print(f"| {backend} | - | {rows} | | | | |")
            continue
        for r in rows:
            label = labels[backend].format(**r)
            print(
                f"| {label} | {r['rows']:,} | {r['search_ms_median']:.2f} | {r['search_ms_p90']:.2f} "
                f"| {r['insert_s']:.1f} | {r['flush_load_s']:.1f} | {'yes' if r['self_hit'] else 'no'} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
