#!/usr/bin/env bash
# Installs what is missing, builds, and runs the quickstart experiment on the
# CPU: MHA, GQA, MQA and MLA at equal parameter count on the King James Bible
# (about 2-3 minutes on 2 cores), then plots loss curves and quality against
# KV-cache bytes, and evaluates each run at up to 8x its training length.
# Extra arguments are passed to `attnlab train` as overrides.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PRESET=${ATTNLAB_PRESET:-release}
"$ROOT/scripts/setup.sh"
cd "$ROOT"
source "build/$PRESET/setup.env"
BIN="build/$PRESET/bin/attnlab"

"$BIN" data prepare kjv
"$BIN" train -m +experiment=quickstart "$@"
# Perplexity at 1, 2, 4 and 8x the training length, into each run.h5 (/eval/context).
for run in results/quickstart/*/; do "$BIN" eval "$run" --tokens 4096 > /dev/null; done
"$PLOT_PY" scripts/plot.py results/quickstart
echo
echo "run files: $ROOT/results/quickstart/*/run.h5 (one per attention variant)"
echo "plots:     $ROOT/results/quickstart/loss.png"
echo "           $ROOT/results/quickstart/quality_vs_memory.png"
