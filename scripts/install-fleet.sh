#!/usr/bin/env bash
# Installs what the local fleet (scripts/cluster.sh, writing/devtools/fleet.py) needs: Debian's nginx
# (the edge proxy in front of the replicas) and prometheus (scrapes each replica's /metrics). Idempotent:
# does nothing (and never touches apt's lists) when both are present. Needs root (or sudo) when something
# is missing. The fleet runs its own nginx and Prometheus on free loopback ports, with their configuration
# and state in its base folder; the system services the packages may start are not used.
set -euo pipefail

has() {  # has PROGRAM: on PATH, or in /usr/sbin (not on a user's PATH everywhere)
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]
}

need=()
has nginx || need+=(nginx)
has prometheus || need+=(prometheus)

if [ "${#need[@]}" -eq 0 ]; then
    exit 0
fi

"$(dirname "$0")/apt-install.sh" install-fleet.sh "${need[@]}"
for program in nginx prometheus; do
    has "$program" || { echo "install-fleet.sh: $program is still missing" >&2; exit 1; }
done
