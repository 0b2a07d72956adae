"""What scripts/run.sh gives the Chinese stand-in model (m3e-small) when EMBEDDING_MODEL is unset, and
the calibration report its thresholds come from."""

from __future__ import annotations

import json
import re

from tests.support.corpus import ROOT

RUN_SCRIPT = ROOT / "scripts" / "run.sh"
M3E_REPORT = ROOT / "docs" / "calibration" / "m3e-small" / "calibration.json"
DEMO_HIT = ("广州有什么好玩的", "city-guangzhou")  # the README's first request, a HIT
DEMO_MISS = "用Python写一个快速排序"  # the README's second, a MISS


def run_script_default(name: str) -> str:
    """The value scripts/run.sh exports for NAME when the caller has not set it (``NAME="${NAME:-v}"``)."""
    found = re.search(rf'\b{name}="\$\{{{name}:-([^}}"]+)\}}"', RUN_SCRIPT.read_text(encoding="utf-8"))
    assert found, f"scripts/run.sh sets no default {name}"
    return found.group(1)


def m3e_report() -> dict:
    return json.loads(M3E_REPORT.read_text(encoding="utf-8"))
