#!/usr/bin/env bash
# Installs Debian packages for the install-*.sh scripts: apt-get as root, or through sudo.
#   scripts/apt-install.sh WHO PACKAGE...   (WHO names the calling script in messages)
set -euo pipefail
who=$1
shift
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "$who: need root to install: $*" >&2
        exit 1
    fi
fi
echo "$who: installing $*" >&2
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
