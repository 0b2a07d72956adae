"""How the model's OpenMP threads wait (writing.adapters.embedding.openmp): set before torch loads,
never over what the operator set, and never silently too late."""

from __future__ import annotations

import subprocess
import sys

from writing.adapters.embedding.openmp import (
    DEFAULT_SPINS,
    SPIN_COUNT,
    WAIT_POLICY,
    spin_wait,
    spin_wait_variables,
)
from writing.settings import Settings


def test_an_unset_environment_gets_active_waits_with_libgomps_own_spin_count():
    assert spin_wait_variables({}) == {WAIT_POLICY: "ACTIVE", SPIN_COUNT: DEFAULT_SPINS}
    assert DEFAULT_SPINS == "300000"  # libgomp's default: ACTIVE alone would spin for minutes after each pass


def test_the_operators_choice_wins_even_when_only_one_of_the_two_is_set():
    assert spin_wait_variables({WAIT_POLICY: "PASSIVE"}) == {}
    assert spin_wait_variables({SPIN_COUNT: "0"}) == {}
    environ = {WAIT_POLICY: "PASSIVE", "PATH": "/bin"}
    with spin_wait(environ, modules={}) as said:
        assert environ == {WAIT_POLICY: "PASSIVE", "PATH": "/bin"}
    assert environ == {WAIT_POLICY: "PASSIVE", "PATH": "/bin"}
    assert "as the environment says" in said and "OMP_WAIT_POLICY=PASSIVE" in said


def test_both_are_set_while_torch_loads_and_gone_after():
    environ: dict[str, str] = {"PATH": "/bin"}
    with spin_wait(environ, modules={"numpy": object()}) as said:
        assert environ == {"PATH": "/bin", WAIT_POLICY: "ACTIVE", SPIN_COUNT: DEFAULT_SPINS}
    assert environ == {"PATH": "/bin"}  # the processes the service starts keep the operator's environment
    assert "spinning" in said


def test_it_says_it_is_too_late_once_torch_is_loaded_and_changes_nothing():
    environ: dict[str, str] = {}
    with spin_wait(environ, modules={"torch": object()}) as said:
        assert environ == {}
    assert "torch was loaded before" in said


def test_the_service_sets_it_by_default():
    assert Settings().embedding_spin_wait is True
    assert Settings(embedding_spin_wait=False).embedding_spin_wait is False


def test_the_libgomp_torch_loads_reads_them():
    """In a new interpreter, with libgomp asked to print what it read when it loads (OMP_DISPLAY_ENV):
    torch imported inside ``spin_wait`` loads a libgomp that waits ACTIVE with 300,000 spins."""
    code = (
        "import os, sys\n"
        "from writing.adapters.embedding.openmp import spin_wait\n"
        "assert 'torch' not in sys.modules\n"
        "with spin_wait() as said:\n"
        "    import torch\n"
        "print(said)\n"
        "print('OMP_WAIT_POLICY' in os.environ, 'GOMP_SPINCOUNT' in os.environ)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "OMP_DISPLAY_ENV": "verbose"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "False False"
    shown = done.stderr.replace(" ", "")
    assert "OMP_WAIT_POLICY='ACTIVE'" in shown and f"GOMP_SPINCOUNT='{DEFAULT_SPINS}'" in shown, done.stderr[-2000:]
