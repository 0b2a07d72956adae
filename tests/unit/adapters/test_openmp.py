"""How the model's OpenMP threads wait (writing.adapters.embedding.openmp): set before torch loads,
never over what the operator set, and never silently too late."""

from __future__ import annotations

import subprocess
import sys

from writing.adapters.embedding.openmp import (
    DEFAULT_SPINS,
    SPIN_COUNT,
    WAIT_POLICY,
    apply_spin_wait,
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
    said = apply_spin_wait(environ, modules={})
    assert environ == {WAIT_POLICY: "PASSIVE", "PATH": "/bin"}
    assert "as the environment says" in said and "OMP_WAIT_POLICY=PASSIVE" in said


def test_apply_sets_both_before_torch_is_loaded():
    environ: dict[str, str] = {}
    said = apply_spin_wait(environ, modules={"numpy": object()})
    assert environ == {WAIT_POLICY: "ACTIVE", SPIN_COUNT: DEFAULT_SPINS}
    assert "spinning" in said


def test_apply_says_it_is_too_late_once_torch_is_loaded_and_changes_nothing():
    environ: dict[str, str] = {}
    said = apply_spin_wait(environ, modules={"torch": object()})
    assert environ == {}
    assert "torch was loaded before" in said


def test_the_service_sets_it_by_default():
    assert Settings().embedding_spin_wait is True
    assert Settings(embedding_spin_wait=False).embedding_spin_wait is False


def test_a_fresh_process_hands_the_variables_to_the_libgomp_torch_loads():
    """In a new interpreter: apply, then import torch; its libgomp is loaded after the variables were set
    (they are in the process environment it reads at load time), and torch still runs a parallel op."""
    code = (
        "import os, sys\n"
        "from writing.adapters.embedding.openmp import apply_spin_wait\n"
        "assert 'torch' not in sys.modules\n"
        "print(apply_spin_wait())\n"
        "import torch\n"
        "x = torch.ones(256, 256)\n"
        "assert float((x @ x)[0, 0]) == 256.0\n"
        "print(os.environ['OMP_WAIT_POLICY'], os.environ['GOMP_SPINCOUNT'])\n"
    )
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == f"ACTIVE {DEFAULT_SPINS}"
