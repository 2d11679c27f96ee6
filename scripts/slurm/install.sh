#!/usr/bin/env bash
# Installs the Debian packages the local Slurm test cluster needs (slurm-wlm:
# slurmctld + slurmd + slurm-client, and munge), only when they are missing.
# Idempotent: exits 0 at once when everything is already installed.
#
# Needs root (apt-get). Services are NOT started by the install: cluster.sh
# runs its own private daemons under a state directory.
set -euo pipefail

PACKAGES=(slurm-wlm slurmctld slurmd slurm-client munge)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install.sh: already installed: ${PACKAGES[*]}"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: missing packages (${missing[*]}) and not root; run as root" >&2
    exit 1
fi

echo "install.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive

# Do not let the packages' maintainer scripts start the system munge/slurm
# services: cluster.sh runs private daemons. If the machine has no
# policy-rc.d, put a temporary one in place that denies service starts.
tmp_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    tmp_policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$tmp_policy"
    chmod 755 "$tmp_policy"
fi
cleanup() { if [ -n "$tmp_policy" ]; then rm -f "$tmp_policy"; fi; }
trap cleanup EXIT

apt_install() {
    apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" >/dev/null
}

# An old or empty package list makes the first try fail: update once, retry.
if ! apt_install 2>/dev/null; then
    apt-get update -qq >/dev/null
    apt_install
fi

for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || {
        echo "install.sh: $p did not install" >&2
        exit 1
    }
done
echo "install.sh: installed: $(dpkg-query -W -f='${Version}' slurmctld) (slurm), $(dpkg-query -W -f='${Version}' munge) (munge)"
