"""How the model's OpenMP threads wait for their next parallel region (libgomp, which torch's CPU wheel ships).

A forward pass is hundreds of parallel regions (each matmul, each layer norm) with a little serial work
between them; libgomp's threads wait for the next region by spinning, and sleep on a futex only after
GOMP_SPINCOUNT spins (300,000 by default, about 3 ms). But when libgomp manages more threads than the
process has CPUs, it spins only 100 times (``gomp_throttled_spin_count_var``): every region then wakes
its threads through futexes. The service gets there as soon as two threads have run a pass (each
OpenMP master thread keeps a team: the embedding workers, and the thread that traced the model at
start-up), and a pass then ran about a third slower than the same pass alone (20 ms against 15 on 2
cores, measured in ``docs/benchmarks/2026-12-07-openmp-spin.md``).

``OMP_WAIT_POLICY=ACTIVE`` raises the throttled spin to 1,000 (enough to bridge the gap between two
regions), and ``GOMP_SPINCOUNT=300000`` keeps the unthrottled spin at libgomp's own default (ACTIVE alone
would spin for minutes after every pass). libgomp reads both once, when torch loads it: the service
sets them while it imports torch (``spin_wait``), unless the operator set either (EMBEDDING_SPIN_WAIT=false:
neither). Only for libgomp: an LLVM or Intel OpenMP runtime (torch's macOS wheels, some conda builds) ignores
GOMP_SPINCOUNT and would spin for ever under ACTIVE, so where torch ships another runtime nothing is set.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path

WAIT_POLICY = "OMP_WAIT_POLICY"
SPIN_COUNT = "GOMP_SPINCOUNT"
DEFAULT_SPINS = "300000"  # libgomp's own spin count when OMP_WAIT_POLICY is unset


def spin_wait_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables to add to ``environ`` (pure): none where the operator set either of them."""
    if WAIT_POLICY in environ or SPIN_COUNT in environ:
        return {}
    return {WAIT_POLICY: "ACTIVE", SPIN_COUNT: DEFAULT_SPINS}


def torch_openmp() -> Path | None:
    """The OpenMP library the installed torch ships in its ``lib`` folder, found without importing torch;
    None where there is none (torch missing, or linked to a system runtime)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "lib"
    found = sorted(folder.glob("lib*omp*.so*")) + sorted(folder.glob("lib*omp*.dylib"))
    gnu = [path for path in found if path.name.startswith("libgomp")]
    return (gnu or found or [None])[0]


def loaded_libraries() -> str:
    """This process's mapped files (Linux), to tell whether a library is loaded already; "" elsewhere."""
    try:
        return Path("/proc/self/maps").read_text(errors="replace")
    except OSError:
        return ""


def plan(environ: Mapping[str, str], runtime: Path | None, loaded: str) -> tuple[dict[str, str], str]:
    """What to set while torch loads, and what to log (pure). ``runtime`` is torch's OpenMP library,
    ``loaded`` this process's mapped files."""
    wanted = spin_wait_variables(environ)
    if not wanted:
        given = ", ".join(f"{name}={environ[name]}" for name in (WAIT_POLICY, SPIN_COUNT) if name in environ)
        return {}, f"OpenMP waits as the environment says ({given})"
    if runtime is None or not runtime.name.startswith("libgomp"):
        what = runtime.name if runtime is not None else "no OpenMP library of its own"
        return {}, f"OpenMP waits with its runtime's defaults: torch ships {what}, and this setting is libgomp's"
    if str(runtime) in loaded or str(runtime.resolve()) in loaded:
        return {}, "OpenMP waits as libgomp was set up when it was loaded, earlier in this process"
    return wanted, f"OpenMP waits by spinning ({WAIT_POLICY}=ACTIVE, {SPIN_COUNT}={DEFAULT_SPINS})"


@contextlib.contextmanager
def spin_wait(environ: MutableMapping[str, str] | None = None) -> Iterator[str]:
    """Around the import of torch: the variables are in this process's environment while libgomp loads
    (it reads them once, then), and gone again after, so the processes the service starts (Milvus Lite)
    keep the operator's environment. Yields what was done (``plan``), for the start-up log."""
    environ = os.environ if environ is None else environ
    wanted, said = plan(environ, torch_openmp(), loaded_libraries())
    environ.update(wanted)
    try:
        yield said
    finally:
        for name in wanted:
            environ.pop(name, None)
