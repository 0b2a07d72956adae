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

"$(dirname "$0")/apt-install.sh" install-browser.sh "${need[@]}"
[ -x /usr/bin/chromium ] || { echo "install-browser.sh: /usr/bin/chromium is still missing" >&2; exit 1; }
