"""The core's shape (docs/architecture.md): small units, no metrics library, the decision in one place."""

from __future__ import annotations

import ast
from pathlib import Path

import writing

CORE = Path(writing.__file__).parent / "core"
MAX_CLASS_LINES = 250


def _trees():
    for path in sorted(CORE.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def test_no_class_in_the_core_is_over_250_lines():
    big = [
        f"{path.relative_to(CORE)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path, tree in _trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES
    ]
    assert big == []


def test_the_core_reports_metrics_through_its_protocol_only():
    for path, tree in _trees():
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(("prometheus_client", "writing.observability")), (path, name)


def test_the_decision_exists_once():
    """Only the policy walks the tiers: nothing else in the core calls a tier's lookup."""
    callers = [
        path.relative_to(CORE)
        for path, tree in _trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "lookup" and path.name != "policy.py"
    ]
    assert callers == []
