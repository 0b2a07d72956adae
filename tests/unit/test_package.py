"""The package's shape: importing it is cheap, every logger sits under the package's own, the layers
import only downwards."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import writing
from writing.observability.logs import PROJECT_LOGGERS

PACKAGE = Path(writing.__file__).parent
ROOT = PACKAGE.parent
# a layer imports only from lower ones; wiring is the composition root that api and cli start from
LAYERS = {"api": 4, "cli": 4, "devtools": 4, "wiring": 3, "adapters": 2, "core": 1}


def modules() -> list[str]:
    return [m.name for m in pkgutil.walk_packages([str(PACKAGE)], prefix="writing.")]


def test_importing_every_module_loads_no_model_framework():
    code = (
        "import importlib, sys\n"
        f"for name in {modules()!r}: importlib.import_module(name)\n"
        "import app, embedding, milvus_server, vllm_client, ingest, calibrate\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'pymilvus', 'matplotlib') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"imported at import time: {out.stdout.strip()}"


def _sources() -> list[Path]:
    return [
        *PACKAGE.rglob("*.py"),
        *ROOT.glob("*.py"),
        *(ROOT / "tests").rglob("*.py"),
        *(ROOT / "bench").rglob("*.py"),
    ]


def test_every_logger_is_under_the_package_logger():
    for path in PACKAGE.rglob("*.py"):
        if path.name == "logs.py":  # the module that sets the levels of PROJECT_LOGGERS
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "getLogger" and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant):
                    assert any(arg.value.startswith(p) for p in PROJECT_LOGGERS), (path, arg.value)
                else:
                    assert isinstance(arg, ast.Name) and arg.id == "__name__", (path, ast.dump(arg))


def test_no_module_edits_the_import_path():
    needle = "sys." + "path"
    for path in _sources():
        assert needle not in path.read_text(encoding="utf-8"), path


def test_layers_import_only_downwards():
    """core never imports api or adapters; adapters never import api."""
    for path in PACKAGE.rglob("*.py"):
        layer = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if layer not in LAYERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("writing."):
                target = node.module.split(".")[1]
                if target in LAYERS and target != layer:
                    assert LAYERS[target] < LAYERS[layer], f"{path.relative_to(ROOT)} imports {node.module}"


def _imported(node: ast.AST, package: str = "writing") -> list[str]:
    """The modules an import statement names (``from writing import adapters`` names writing.adapters);
    a relative import is resolved against ``package``, the importing module's package."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
    module = ".".join([*base, *([node.module] if node.module else [])])
    return [module, *(f"{module}.{alias.name}" for alias in node.names)]


def test_the_api_never_imports_the_adapters():
    """The routes see the stores through the core's ports and ``writing.wiring``; no module under
    writing/api/ imports an adapter, at module level or inside a function."""
    adapters = "writing.adapters"
    found = []
    for path in (PACKAGE / "api").rglob("*.py"):
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for name in _imported(node, package):
                if name == adapters or name.startswith(adapters + "."):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert found == [], "\n".join(found)


def test_the_api_import_check_sees_nested_imports():
    code = "def f():\n    from writing.adapters.milvus.records import OPEN\n    import writing.adapters.milvus\n"
    names = [n for node in ast.walk(ast.parse(code)) for n in _imported(node)]
    assert "writing.adapters.milvus.records" in names and "writing.adapters.milvus" in names
    assert "writing.adapters" in [
        n for node in ast.walk(ast.parse("from writing import adapters")) for n in _imported(node)
    ]
    relative = "from ...adapters.milvus import records\nfrom .. import deps\n"  # from writing/api/routes/
    names = [n for node in ast.walk(ast.parse(relative)) for n in _imported(node, "writing.api.routes")]
    assert "writing.adapters.milvus.records" in names and "writing.api.deps" in names
