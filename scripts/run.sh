#!/usr/bin/env bash
# Installs what is missing, builds, and runs the quickstart experiment on the
# CPU (a few minutes on 2 cores), then plots it. Extra arguments are passed to
# `attnlab train` as overrides.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PRESET=${ATTNLAB_PRESET:-release}
"$ROOT/scripts/setup.sh"
cd "$ROOT"
source "build/$PRESET/setup.env"
BIN="build/$PRESET/bin/attnlab"

"$BIN" data prepare kjv
"$BIN" train +experiment=quickstart "$@"
"$PLOT_PY" scripts/plot.py results/quickstart
echo
echo "run file:  $ROOT/results/quickstart/run.h5"
echo "plot:      $ROOT/results/quickstart/loss.png"
