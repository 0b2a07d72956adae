"""bench/ is a package of scripts run as ``python -m bench.NAME`` from the repository root: its modules
import each other without a cycle (local imports count too), importing them loads no model framework,
and each script keeps ``main(argv)`` behind ``if __name__ == "__main__"``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import writing

ROOT = Path(writing.__file__).parent.parent
BENCH = ROOT / "bench"


def bench_modules() -> dict[str, Path]:
    return {("bench" if p.name == "__init__.py" else f"bench.{p.stem}"): p for p in sorted(BENCH.glob("*.py"))}


def bench_imports(path: Path, known: set[str]) -> set[str]:
    """The bench modules a file imports, anywhere in it (``from bench import x`` names bench.x)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in known else node.module)
        elif isinstance(node, ast.ImportFrom) and node.level:  # relative: within bench/
            base = f"bench.{node.module}" if node.module else "bench"
            out.update(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names)
    return {m for m in out if m in known}


def test_no_import_cycle_in_bench():
    modules = bench_modules()
    graph = {name: bench_imports(path, set(modules)) - {name} for name, path in modules.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join([*path[path.index(nxt) :], nxt])
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_bench_modules_import_from_the_root_without_model_frameworks():
    names = [name for name in bench_modules() if name != "bench"]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "print(','.join(sorted(m for m in ('torch', 'transformers', 'pymilvus') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"imported at import time: {out.stdout.strip()}"


def test_every_script_has_main_behind_the_main_guard():
    for name, path in bench_modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded = any(isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) for node in tree.body)
        if not guarded:
            continue  # a library module: bench, bench.harness, bench.floor, bench.loadgen
        mains = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
        assert mains, f"{name} has no main()"
        assert "sys.exit(main())" in ast.unparse(tree.body[-1]), f"{name}: end with sys.exit(main())"
