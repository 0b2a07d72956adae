"""The documentation names only what exists: every path, module, setting, route and metric that README.md
and docs/ (the benchmark reports included) name is checked against the repository and the app; the
route table of docs/api.md is the app's, roles included; docs/configuration.md is what
``python -m writing.devtools.settings_doc`` writes from the settings model now.

Fast: no model, no server, no lifespan (``create_app`` only builds the routes). CHANGELOG.md is history
(it names what was removed) and docs/calibration/ is calibrate.py's output: neither is checked here.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

from writing.devtools import settings_doc
from writing.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "docs" / "benchmarks").glob("*.md")),
]

# Upper-case names with an underscore that docs may use although no setting has them: each with why.
NOT_SETTINGS = {
    "OMP_WAIT_POLICY": "OpenMP's own variable: EMBEDDING_SPIN_WAIT sets it before torch loads (openmp.py)",
    "GOMP_SPINCOUNT": "libgomp's own variable: EMBEDDING_SPIN_WAIT sets it before torch loads (openmp.py)",
    "TOKENIZERS_PARALLELISM": "Hugging Face tokenizers' own variable, named in a benchmark report (the service leaves it)",
    "YOUR_KEY_OR_ANYTHING": "a placeholder for an API key in the OpenAI SDK example",
    "FILE_OR_DIR": "a placeholder in ingest.py's usage",
}
# Paths docs may name that a fresh checkout lacks: made at run time, each with what makes it.
RUNTIME_PATHS = {
    ".venv": "the service's virtual environment (scripts/bootstrap.sh)",
    ".venv-llm": "the LLM stand-in's virtual environment (scripts/bootstrap.sh)",
    ".venv-lite3": "Milvus Lite 3's virtual environment (bench/milvus_backends.py says how to make it)",
    "data/milvus.db": "the Milvus Lite file the service creates (MILVUS_LITE_PATH)",
    "run": "logs of scripts/run.sh",
    "bench/results": "JSON results of the benchmarks (ignored by git)",
}
# File names docs use as examples of the reader's own files.
EXAMPLE_FILES = {
    "export.jsonl": "the production corpus exported by the reader (docs/calibration.md)",
}
# Dotted names in backticks that look like modules of ours but are not modules.
NOT_MODULES = {
    "writing.access": "the access logger's name (writing/api/middleware.py)",
}
# writing_* names that are not metrics.
NOT_METRICS = {
    "writing_v2": "a collection name in a migration example",
    "writing_copy": "a collection name in a calibration example",
}

FENCE_RE = re.compile(r"^(```|~~~)[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)
SPAN_RE = re.compile(r"`([^`\n]+)`")
LINK_RE = re.compile(r"\]\(([^)\s]+)\)")
SETTING_RE = re.compile(r"(?<![A-Za-z0-9_])[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+(?![A-Za-z0-9_*])")
SETTING_PREFIX_RE = re.compile(r"(?<![A-Za-z0-9_])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)_\*")
ROUTE_RE = re.compile(r"(?<![A-Za-z])(GET|POST|PUT|DELETE|PATCH)\s+`?(/[^\s`'\"|,;)]*)")
URL_RE = re.compile(r"(?:localhost|127\.0\.0\.1|HOST):(?:8000|PORT)(/[\w/{}.-]*)")
MODULE_RE = re.compile(r"(?<![\w./-])(?:writing|bench|tests)(?:\.[A-Za-z_]\w*)+")
METRIC_RE = re.compile(r"(?<![\w/])writing_[a-z0-9_]+")
PATH_RE = re.compile(r"^[\w.-]+(?:/[\w.-]+)*/?$")
PATH_EXTENSIONS = (".py", ".sh", ".md", ".txt", ".jsonl", ".json", ".toml", ".png", ".js", ".css", ".html")
CODE_DIRS = ("writing", "bench", "tests", "scripts", "data", "docs")
SKIP_DIRS = {".git", "__pycache__", "node_modules", ".pytest_cache"}
PACKAGE_BASES = (ROOT / "writing", *(p for p in sorted((ROOT / "writing").iterdir()) if p.is_dir()))


# -- what the docs say -------------------------------------------------------------------------------------
def _parts(doc: Path) -> tuple[str, list[str], list[str]]:
    """(the prose without fenced code, the inline code spans of the prose, the fenced code blocks)."""
    text = doc.read_text(encoding="utf-8")
    blocks = [m.group(2) for m in FENCE_RE.finditer(text)]
    prose = FENCE_RE.sub("", text)
    return prose, SPAN_RE.findall(prose), blocks


def _where(doc: Path) -> str:
    return str(doc.relative_to(ROOT))


@cache
def _basenames() -> frozenset[str]:
    names = set()
    for _, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".venv")]
        names.update(files)
        names.update(dirs)
    return frozenset(names)


def _is_runtime(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in RUNTIME_PATHS)


def _path_exists(token: str, doc: Path) -> bool:
    path = token.removeprefix("./").rstrip("/")
    if _is_runtime(path) or path in EXAMPLE_FILES:
        return True
    if "/" not in path:  # a bare file name: somewhere in the repository
        return (ROOT / path).exists() or (doc.parent / path).exists() or path in _basenames()
    # from the repository root, from the doc's folder, or inside the package or one of its layers
    # (docs/architecture.md writes core/policy.py and tiers/curated.py)
    return any((base / path).exists() for base in (ROOT, doc.parent, *PACKAGE_BASES))


def _path_tokens(text: str, *, code: bool) -> list[str]:
    out = []
    for raw in re.split(r"[\s'\"=(),;\[\]]+", text):
        token = raw.rstrip(".:")
        if not token or token.startswith(("-", "/", "~")) or any(c in token for c in "<>{}*$:`"):
            continue
        if re.fullmatch(r"\.\w+", token):  # an extension alone: every `.txt`
            continue
        if not PATH_RE.match(token):
            continue
        first, nested = token.removeprefix("./").split("/")[0], "/" in token
        if code:  # commands: paths in our folders, and top-level scripts and requirements
            wanted = (first in CODE_DIRS and nested) or (not nested and re.fullmatch(r"[\w-]+\.(py|sh|txt)", token))
        else:  # prose: paths below a top-level entry, file names, what runs create
            wanted = ((ROOT / first).exists() and nested) or token.endswith(PATH_EXTENSIONS) or _is_runtime(token)
        if wanted:
            out.append(token)
    return out


def test_every_path_named_exists():
    missing = []
    for doc in DOCS:
        prose, spans, blocks = _parts(doc)
        for span in spans:
            missing += [f"{_where(doc)}: `{t}`" for t in _path_tokens(span, code=False) if not _path_exists(t, doc)]
        for block in blocks:
            missing += [f"{_where(doc)}: {t}" for t in _path_tokens(block, code=True) if not _path_exists(t, doc)]
        for link in LINK_RE.findall(prose):
            target = link.split("#")[0]
            if not target or link.startswith(("http://", "https://", "mailto:")):
                continue
            if not (doc.parent / target).exists():
                missing.append(f"{_where(doc)}: link ({link})")
    assert not missing, "named in the docs but not in the repository:\n" + "\n".join(missing)


# -- modules -----------------------------------------------------------------------------------------------
def _module_file(parts: list[str]) -> Path | None:
    base = ROOT.joinpath(*parts)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.is_dir() and parts[0] == "bench":  # bench/ runs as a package from the repository root
        return base
    return None


def _top_level_names(path: Path) -> set[str]:
    if path.is_dir():
        return {p.stem for p in path.iterdir()}
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    if path.name == "__init__.py":
        names.update(p.stem for p in path.parent.iterdir())
    return names


def _module_problem(name: str) -> str | None:
    parts = name.split(".")
    if any(p.isupper() for p in parts):  # a placeholder: bench.NAME
        return None
    for i in range(len(parts), 0, -1):
        found = _module_file(parts[:i])
        if found is None:
            continue
        rest = parts[i:]
        if rest and rest[0] not in _top_level_names(found):
            return f"{name}: {'.'.join(parts[:i])} defines no {rest[0]}"
        return None
    return f"{name}: no such module"


def test_every_module_named_exists():
    problems = []
    for doc in DOCS:
        _, spans, blocks = _parts(doc)
        for text in [*spans, *blocks]:
            for name in MODULE_RE.findall(text):
                if name in NOT_MODULES:
                    continue
                problem = _module_problem(name)
                if problem:
                    problems.append(f"{_where(doc)}: {problem}")
    assert not problems, "modules named in the docs that do not exist:\n" + "\n".join(problems)


# -- settings ----------------------------------------------------------------------------------------------
def test_every_upper_case_name_is_a_setting_or_allowed():
    known = settings_doc.env_names()
    assert not set(NOT_SETTINGS) & known, "a name allowed as a non-setting is a setting now"
    unknown, used = [], set()
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for name in SETTING_RE.findall(text):
            used.add(name)
            if name not in known and name not in NOT_SETTINGS:
                unknown.append(f"{_where(doc)}: {name}")
        for prefix in SETTING_PREFIX_RE.findall(text):
            if not any(k.startswith(prefix + "_") for k in known):
                unknown.append(f"{_where(doc)}: {prefix}_*")
    assert not unknown, "not a setting (writing/settings.py) nor in NOT_SETTINGS:\n" + "\n".join(unknown)
    stale = set(NOT_SETTINGS) - used
    assert not stale, f"NOT_SETTINGS entries no doc names any more, remove them: {sorted(stale)}"


# -- routes ------------------------------------------------------------------------------------------------
def _normal(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


@cache
def _app_routes() -> frozenset[tuple[str, str, str]]:
    """(method, path, role) of every HTTP route of the app, walking included routers and mounts; no lifespan."""
    from writing.api.app import create_app
    from writing.api.auth import require_admin, require_metrics
    from writing.api.middleware import OPEN_PATHS, OPEN_PREFIXES

    def needs(dependant, check) -> bool:
        return any(d.call is check or needs(d, check) for d in getattr(dependant, "dependencies", []))

    found: set[tuple[str, str, str]] = set()

    def walk(routes, prefix: str) -> None:
        for route in routes:
            if getattr(route, "original_router", None) is not None:  # an included router
                context = getattr(route, "include_context", None)
                walk(route.original_router.routes, prefix + (getattr(context, "prefix", "") or ""))
            elif getattr(route, "methods", None):
                path = re.sub(r"{(\w+):\w+}", r"{\1}", prefix + route.path)
                dependant = getattr(route, "dependant", None)
                if dependant is not None and needs(dependant, require_admin):
                    role = "admin"
                elif dependant is not None and needs(dependant, require_metrics):
                    role = "metrics"
                elif path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
                    role = "open"
                else:
                    role = "caller"
                found.update((m, path, role) for m in route.methods if m != "HEAD")
            elif getattr(route, "routes", None) is not None:  # a mount
                walk(route.routes, prefix + getattr(route, "path", ""))

    app = create_app(Settings())
    walk(app.routes, "")
    in_schema = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    assert in_schema <= {(m, p) for m, p, _ in found}, "the route walk missed some routes"
    return frozenset(found)


def _route_exists(path: str, method: str | None = None) -> bool:
    path = _normal(path.split("?")[0].rstrip(".:"))
    routes = [_normal(p) for m, p, _ in _app_routes() if method is None or m == method]
    if path.endswith("*"):
        return any(p.startswith(path[:-1]) for p in routes)
    if method is None:  # a bare path also names the routes below it (/v1, /v1/corpus)
        return any(p == path or p.startswith(path.rstrip("/") + "/") for p in routes)
    return path in routes


def test_every_route_named_exists():
    roots = {p.split("/")[1] for _, p, _ in _app_routes()}
    problems = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for method, path in ROUTE_RE.findall(text):
            if not _route_exists(path, method):
                problems.append(f"{_where(doc)}: {method} {path}")
        for path in URL_RE.findall(text):
            if not _route_exists(path):
                problems.append(f"{_where(doc)}: {path} (a URL)")
        _, spans, _ = _parts(doc)
        for span in spans:
            if re.fullmatch(r"/[\w/{}.*:-]*", span) and span.split("/")[1] in roots and not _route_exists(span):
                problems.append(f"{_where(doc)}: `{span}`")
    assert not problems, "routes named in the docs that the app does not serve:\n" + "\n".join(problems)


def test_the_api_route_table_is_the_apps():
    rows = re.findall(
        r"^\| `(GET|POST|PUT|DELETE|PATCH)` \| `([^`]+)` \| (\w+) \|",
        (ROOT / "docs" / "api.md").read_text("utf-8"),
        re.M,
    )
    documented = {(m, _normal(p), role) for m, p, role in rows}
    served = {(m, _normal(p), role) for m, p, role in _app_routes()}
    assert documented == served, (
        f"docs/api.md lacks (method, path, role): {sorted(served - documented)}; "
        f"names what the app does not serve so: {sorted(documented - served)}"
    )


# -- metrics -----------------------------------------------------------------------------------------------
def test_every_metric_named_exists():
    from writing.observability.metrics import Metrics

    names = {family.name for family in Metrics().registry.collect()}
    problems = []
    for doc in DOCS:
        _, spans, blocks = _parts(doc)
        for text in [*spans, *blocks]:
            for name in METRIC_RE.findall(text):
                base = re.sub(r"_(total|bucket|count|sum|created)$", "", name)
                if name not in NOT_METRICS and base not in names and name not in names:
                    problems.append(f"{_where(doc)}: {name}")
    assert not problems, "metrics named in the docs that writing/observability/metrics.py lacks:\n" + "\n".join(
        problems
    )


# -- docs/configuration.md ---------------------------------------------------------------------------------
def test_configuration_md_is_what_the_generator_writes():
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == settings_doc.render(), (
        "docs/configuration.md is out of date: run .venv/bin/python -m writing.devtools.settings_doc"
    )


def test_every_setting_is_described_once():
    fields = Settings.model_fields
    assert set(settings_doc.NOTES) <= set(fields), sorted(set(settings_doc.NOTES) - set(fields))
    shadowed = sorted(n for n in settings_doc.NOTES if fields[n].description)
    assert not shadowed, f"these fields have a description now: remove their NOTES in settings_doc.py: {shadowed}"
    bare = sorted(n for n, f in fields.items() if not f.description and n not in settings_doc.NOTES)
    assert not bare, f"settings without a description: {bare}"


def test_settings_doc_check_mode(tmp_path):
    out = tmp_path / "configuration.md"
    assert settings_doc.main(["--out", str(out)]) == 0
    assert settings_doc.main(["--check", "--out", str(out)]) == 0
    out.write_text("stale", encoding="utf-8")
    assert settings_doc.main(["--check", "--out", str(out)]) == 1


def test_settings_doc_imports_nothing_heavy():
    code = (
        "import sys, writing.devtools.settings_doc\n"
        "heavy = ('torch', 'transformers', 'pymilvus', 'fastapi', 'starlette', 'numpy', 'httpx', 'matplotlib')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"imported: {out.stdout.strip()}"


# -- the landing page --------------------------------------------------------------------------------------
def test_readme_stays_a_landing_page():
    size = len((ROOT / "README.md").read_bytes())
    assert size <= 12_000, f"README.md is {size} bytes: move details into docs/"
