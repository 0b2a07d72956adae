#!/usr/bin/env bash
# Installs what the console's browser tests (tests/e2e/test_console.py) need: Debian's chromium and
# a CJK font (fonts-noto-cjk) so that the Chinese UI renders in screenshots. Idempotent: does nothing
# (and never touches apt's lists) when both are present. Needs root (or sudo) when something is missing.
set -euo pipefail

need=()
if [ ! -x /usr/bin/chromium ]; then
    need+=(chromium)
fi
if ! dpkg-query -W -f='${Status}' fonts-noto-cjk 2>/dev/null | grep -q "install ok installed"; then
    need+=(fonts-noto-cjk)
fi

if [ "${#need[@]}" -eq 0 ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-browser.sh: need root to install: ${need[*]}" >&2
        exit 1
    fi
fi

echo "install-browser.sh: installing ${need[*]}" >&2
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
[ -x /usr/bin/chromium ] || { echo "install-browser.sh: /usr/bin/chromium is still missing" >&2; exit 1; }
