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
neither).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping, MutableMapping

WAIT_POLICY = "OMP_WAIT_POLICY"
SPIN_COUNT = "GOMP_SPINCOUNT"
DEFAULT_SPINS = "300000"  # libgomp's own spin count when OMP_WAIT_POLICY is unset


def spin_wait_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables to add to ``environ`` (pure): none where the operator set either of them."""
    if WAIT_POLICY in environ or SPIN_COUNT in environ:
        return {}
    return {WAIT_POLICY: "ACTIVE", SPIN_COUNT: DEFAULT_SPINS}


@contextlib.contextmanager
def spin_wait(
    environ: MutableMapping[str, str] | None = None, modules: Mapping[str, object] | None = None
) -> Iterator[str]:
    """Around the import of torch: the variables are in this process's environment while libgomp loads
    (it reads them once, then), and gone again after, so the processes the service starts (Milvus Lite)
    keep the operator's environment. Yields what was done, for the start-up log; says so where it is
    too late (torch already loaded) or where the operator chose."""
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    wanted = spin_wait_variables(environ)
    if not wanted:
        given = ", ".join(f"{name}={environ[name]}" for name in (WAIT_POLICY, SPIN_COUNT) if name in environ)
        yield f"OpenMP waits as the environment says ({given})"
        return
    if "torch" in modules:
        yield "OpenMP waits with libgomp's defaults: torch was loaded before the service could set them"
        return
    environ.update(wanted)
    try:
        yield f"OpenMP waits by spinning ({WAIT_POLICY}=ACTIVE, {SPIN_COUNT}={DEFAULT_SPINS})"
    finally:
        for name in wanted:
            environ.pop(name, None)
