"""Write docs/configuration.md from the settings model (``writing.settings.Settings``).

    .venv/bin/python -m writing.devtools.settings_doc           # rewrite docs/configuration.md
    .venv/bin/python -m writing.devtools.settings_doc --check   # exit 1 when the file is out of date

One row per field: its environment variable, type, default, bounds and description, grouped under the
``# --- group ---`` comments of writing/settings.py, in the file's order. The checks the validators make
(``raise ValueError("...")`` in a ``field_validator`` or the ``model_validator``) are listed with their
fields. The few fields that have no ``description`` yet take theirs from ``NOTES`` below; a test
(tests/unit/test_docs.py) fails when a note shadows a description of the model, or when
docs/configuration.md differs from what this module writes now.

Imports only the standard library and writing.settings (pydantic): no model, no web framework.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from writing.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / "docs" / "configuration.md"

# Descriptions for the fields that declare none in writing/settings.py (move them there, then drop them here).
NOTES: dict[str, str] = {
    "embedding_max_batch_size": "Dynamic batching: the most prompts embedded as one batch (raise it on a GPU).",
    "embedding_batch_wait_ms": "Milliseconds a batch waits for company, only while others are queued; renewed "
    "while requests keep arriving, at most 4 waits in all.",
    "embedding_queue_size": "Prompts waiting for the model at most; past it, 503 + Retry-After.",
    "milvus_token": "Milvus server credentials (user:password or an API token).",
    "milvus_db": "Milvus server database (created if missing); empty = the server's default.",
    "milvus_collection": "The curated collection. Beside it: `<collection>_answers_v3` (stored answers), `_audit`, "
    "`_feedback`, `_labels` (relabelled pairs) and `_settings` (run-time thresholds).",
    "similarity_threshold": "Curated tier: the cosine similarity a passage must reach to answer "
    "(calibrate it: docs/calibration.md).",
    "answer_cache": "Store generated answers (finished with stop, non-empty, 2xx) and serve them as the "
    "answer tier (docs/decision.md).",
    "answer_cache_threshold": "Answer tier: the prompt-to-prompt cosine similarity a stored answer's prompt "
    "must reach.",
    "llm_base_url": "OpenAI-compatible LLM server: vLLM in production, the llama.cpp stand-in of scripts/run.sh.",
    "llm_api_key": "Key sent to the LLM server.",
    "llm_max_tokens": "max_tokens when a request gives none.",
    "llm_temperature": "temperature when a request gives none.",
    "llm_top_p": "top_p when a request gives none.",
    "host": "Address `python app.py` listens on.",
    "port": "Port `python app.py` listens on.",
    "log_level": "Level of the service's loggers (prompt and answer text only at DEBUG).",
}

GROUP_RE = re.compile(r"^\s*#\s*-{2,}\s*(?P<name>.+?)\s*-+\s*$")


@dataclass
class Row:
    name: str
    env: str
    type: str
    default: str
    bounds: list[str] = field(default_factory=list)
    description: str = ""


def env_name(name: str) -> str:
    return f"{Settings.model_config.get('env_prefix', '')}{name}".upper()


def env_names() -> set[str]:
    """Every environment variable the settings model reads."""
    return {env_name(n) for n in Settings.model_fields}


def _source() -> tuple[str, ast.ClassDef]:
    path = inspect.getsourcefile(Settings)
    assert path is not None
    text = Path(path).read_text(encoding="utf-8")
    cls = next(n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.ClassDef) and n.name == Settings.__name__)
    return text, cls


def groups() -> dict[str, str]:
    """field name -> the group comment above it in writing/settings.py ("general" before the first)."""
    text, cls = _source()
    headers = [(i, m["name"]) for i, line in enumerate(text.splitlines(), 1) if (m := GROUP_RE.match(line))]
    out: dict[str, str] = {}
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            above = [name for line, name in headers if line < node.lineno]
            out[node.target.id] = above[-1] if above else "general"
    return out


def _messages(fn: ast.FunctionDef) -> list[str]:
    out = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
            arg = node.exc.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                out.append(arg.value)
    return out


def checks() -> tuple[dict[str, list[str]], list[str]]:
    """The validators' messages: per field (field validators), and across fields (model validators)."""
    _, cls = _source()
    per_field: dict[str, list[str]] = {}
    across: list[str] = []
    for fn in cls.body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        for deco in fn.decorator_list:
            if not (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Name)):
                continue
            if deco.func.id == "field_validator":
                for arg in deco.args:
                    if isinstance(arg, ast.Constant):
                        per_field.setdefault(arg.value, []).extend(_messages(fn))
            elif deco.func.id == "model_validator":
                across.extend(_messages(fn))
    return per_field, across


def _type(annotation: object) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(f"`{v}`" for v in typing.get_args(annotation))
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        return f"JSON list of {getattr(item, '__name__', item)}"
    if annotation is SecretStr:
        return "secret (str)"
    return getattr(annotation, "__name__", str(annotation))


def _value(value: object) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float):
        return f"`{_number(value)}`"
    if isinstance(value, list):
        return f"`{json.dumps(value, ensure_ascii=False)}`"
    if value == "":
        return "empty"
    return f"`{value}`"


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _bounds(metadata: list) -> list[str]:
    out = []
    for m in metadata:
        for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="), ("min_length", "length >=")):
            if getattr(m, attr, None) is not None:
                out.append(f"{sign} {_number(getattr(m, attr))}")
        if getattr(m, "pattern", None):
            out.append(f"matches `{m.pattern}`")
    return out


def rows() -> list[Row]:
    per_field, _ = checks()
    out = []
    for name, info in Settings.model_fields.items():
        default = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
        description = info.description or NOTES.get(name, "")
        out.append(
            Row(
                name=name,
                env=env_name(name),
                type=_type(info.annotation),
                default=_value(default),
                bounds=_bounds(info.metadata) + per_field.get(name, []),
                description=description,
            )
        )
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    by_group: dict[str, list[Row]] = {}
    where = groups()
    for row in rows():
        by_group.setdefault(where.get(row.name, "general"), []).append(row)
    _, across = checks()
    lines = [
        "# Configuration",
        "",
        "<!-- Generated by `python -m writing.devtools.settings_doc` from `writing/settings.py`; do not edit. -->",
        "",
        "Every setting is an environment variable, read once at start-up by `writing.settings.Settings`.",
        "An invalid value stops start-up with a message naming the variable. Lists are JSON",
        "(`ALLOWED_SYSTEM_PROMPTS='[\"你是写作助手\"]'`); booleans take `true`/`false`; secrets are never logged.",
        "What the settings do together: [decision.md](decision.md) (thresholds, tiers, the second check),",
        "[operations.md](operations.md) (keys, limits, readiness, deployment),",
        "[benchmarks/](benchmarks/README.md) (the measurements behind the embedding defaults).",
        "",
    ]
    for group, members in by_group.items():
        lines += [f"## {group[:1].upper()}{group[1:]}", ""]
        lines += ["| variable | type | default | bounds and checks | description |", "|---|---|---|---|---|"]
        for r in members:
            bounds = "; ".join(r.bounds) if r.bounds else ""
            lines.append(
                f"| `{r.env}` | {_cell(r.type)} | {_cell(r.default)} | {_cell(bounds)} | {_cell(r.description)} |"
            )
        lines.append("")
    if across:
        lines += ["## Checks across settings", ""]
        lines += [f"- {_cell(m)}" for m in across]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the file differs from what it would write")
    parser.add_argument("--out", type=Path, default=TARGET)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run python -m writing.devtools.settings_doc", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
