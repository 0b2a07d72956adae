"""How the model's OpenMP threads wait (writing.adapters.embedding.openmp): set before torch loads,
never over what the operator set, and never silently too late."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from writing.adapters.embedding.openmp import (
    DEFAULT_SPINS,
    SPIN_COUNT,
    WAIT_POLICY,
    plan,
    spin_wait,
    spin_wait_variables,
    torch_openmp,
)
from writing.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def test_an_unset_environment_gets_active_waits_with_libgomps_own_spin_count():
    assert spin_wait_variables({}) == {WAIT_POLICY: "ACTIVE", SPIN_COUNT: DEFAULT_SPINS}
    assert DEFAULT_SPINS == "300000"  # libgomp's default: ACTIVE alone would spin for minutes after each pass


GOMP = Path("/site-packages/torch/lib/libgomp.so.1")


def test_the_operators_choice_wins_even_when_only_one_of_the_two_is_set():
    assert spin_wait_variables({WAIT_POLICY: "PASSIVE"}) == {}
    assert spin_wait_variables({SPIN_COUNT: "0"}) == {}
    wanted, said = plan({WAIT_POLICY: "PASSIVE", "PATH": "/bin"}, GOMP, "")
    assert wanted == {}
    assert "as the environment says" in said and "OMP_WAIT_POLICY=PASSIVE" in said


def test_libgomp_not_loaded_yet_gets_both():
    wanted, said = plan({"PATH": "/bin"}, GOMP, "7f00 r-xp /usr/lib/libc.so.6\n")
    assert wanted == {WAIT_POLICY: "ACTIVE", SPIN_COUNT: DEFAULT_SPINS}
    assert "spinning" in said


@pytest.mark.parametrize("runtime", [Path("/t/lib/libomp.dylib"), Path("/t/lib/libiomp5.so"), None])
def test_another_openmp_runtime_gets_nothing(runtime):
    """ACTIVE without a block time makes LLVM's and Intel's runtimes spin for ever; GOMP_SPINCOUNT is libgomp's."""
    wanted, said = plan({}, runtime, "")
    assert wanted == {}
    assert "this setting is libgomp's" in said


def test_torchs_libgomp_loaded_already_is_left_as_it_was_set_up():
    wanted, said = plan({}, GOMP, f"7f00 r-xp 00000000 00:00 0 {GOMP}\n")
    assert wanted == {}
    assert "earlier in this process" in said


def test_another_copy_of_libgomp_loaded_is_not_torchs():
    other = "7f00 r-xp 00000000 00:00 0 /site-packages/scikit_learn.libs/libgomp-a34b3233.so.1.0.0\n"
    assert plan({}, GOMP, other)[0] == {WAIT_POLICY: "ACTIVE", SPIN_COUNT: DEFAULT_SPINS}


def test_the_variables_are_set_only_inside_and_removed_after():
    environ: dict[str, str] = {"PATH": "/bin"}
    with spin_wait(environ) as said:
        inside = dict(environ)
    assert environ == {"PATH": "/bin"}  # the processes the service starts keep the operator's environment
    if "spinning" in said:  # torch's libgomp, not loaded in this test process yet
        assert inside == {"PATH": "/bin", WAIT_POLICY: "ACTIVE", SPIN_COUNT: DEFAULT_SPINS}
    else:
        assert inside == environ


def test_the_installed_torch_ships_libgomp():
    runtime = torch_openmp()
    assert runtime is not None and runtime.name.startswith("libgomp"), runtime


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
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "False False"
    shown = done.stderr.replace(" ", "")
    assert "OMP_WAIT_POLICY='ACTIVE'" in shown and f"GOMP_SPINCOUNT='{DEFAULT_SPINS}'" in shown, done.stderr[-2000:]
