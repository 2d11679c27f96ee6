#!/usr/bin/env bash
# Installs what is missing, builds, and runs the test suite (ctest).
# Extra arguments go to ctest, e.g. `scripts/test.sh -R causality` or `-L slow`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PRESET=${ATTNLAB_PRESET:-release}
"$ROOT/scripts/setup.sh"
# Slurm and munge for the Slurm sweep test (it skips, visibly, without them).
if [ "${ATTNLAB_SKIP_APT:-0}" != 1 ]; then
  "$ROOT/scripts/slurm/install.sh" || echo "test.sh: could not install Slurm; the Slurm sweep test will be skipped" >&2
fi
cd "$ROOT"
ctest --test-dir "build/$PRESET" --output-on-failure -j "$(nproc)" "$@"
[ "${ATTNLAB_SKIP_FUZZ:-0}" = 1 ] || "$ROOT/scripts/fuzz.sh"
