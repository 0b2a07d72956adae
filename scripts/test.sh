#!/usr/bin/env bash
# One command on a fresh machine: install everything the tests need, then run them all.
# The tests start their own real components (llama.cpp server, Milvus Lite, a Milvus server, Chromium,
# nginx and Prometheus in front of three replicas).
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not slow" for the quick subset.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test llm
scripts/install-browser.sh  # Debian's chromium and a CJK font for the console's browser tests (apt, when missing)
scripts/install-fleet.sh    # Debian's nginx and prometheus for the fleet test, tests/e2e/test_fleet.py (apt, when missing)
exec .venv/bin/python -m pytest "$@"
