"""The deployment files under deploy/ pass scripts/check-deploy.sh: hadolint, the Compose schema,
``nginx -t``, the Kubernetes schemas, ``promtool check rules``, ``promtool test rules`` and
``promtool check config`` (docs/deploy.md). No container or cluster is started: seconds, once the tools
are installed (the script installs what is missing)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_deployment_files_pass_their_checks():
    out = subprocess.run(
        [str(ROOT / "scripts" / "check-deploy.sh")], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "check-deploy: all passed" in out.stdout, out.stdout
