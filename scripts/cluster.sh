#!/usr/bin/env bash
# A local fleet in one command: the service's replicas behind nginx, Prometheus scraping each replica.
#   scripts/cluster.sh [up] [--replicas N] [--base-dir DIR] [--no-prometheus]   # foreground; Ctrl-C stops
#   scripts/cluster.sh status | down                                             # from another terminal
# As scripts/run.sh: the Gemma llama.cpp stand-in unless LLM_BASE_URL is set, the m3e-small stand-in
# embedding model unless EMBEDDING_MODEL is set, the sample corpus; keys in .fleet/keys.env unless
# API_KEYS / ADMIN_API_KEYS / METRICS_API_KEYS / FEEDBACK_SECRET are set. See writing/devtools/fleet.py.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(service)
[ -n "${LLM_BASE_URL:-}" ] || targets+=(llm)
scripts/bootstrap.sh "${targets[@]}"
scripts/install-fleet.sh

[ "$#" -gt 0 ] || set -- up
exec .venv/bin/python -m writing.devtools.cluster "$@"
