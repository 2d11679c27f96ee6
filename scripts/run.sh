#!/usr/bin/env bash
# Installs what is missing, builds, and runs the quickstart experiment on the
# CPU: MHA, GQA, MQA and MLA at equal parameter count on the King James Bible,
# three seeds each (12 runs, about 5 minutes on 2 cores with two workers),
# each evaluated at up to 8x its training length; then collects the sweep into
# one table and plots quality against KV-cache bytes with seed error bars.
# Re-running it skips what is done and resumes what was interrupted.
# Extra arguments are passed to `attnlab sweep` (overrides, --jobs N).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PRESET=${ATTNLAB_PRESET:-release}
"$ROOT/scripts/setup.sh"
cd "$ROOT"
source "build/$PRESET/setup.env"
BIN="build/$PRESET/bin/attnlab"

"$BIN" data prepare kjv
"$BIN" sweep experiments/quickstart.yaml --jobs 2 "$@"
"$BIN" collect results/quickstart
"$PLOT_PY" scripts/plot.py results/quickstart
echo
echo "run files: $ROOT/results/quickstart/*/run.h5 (one per attention variant and seed)"
echo "tables:    $ROOT/results/quickstart/summary.csv, summary_configs.csv, summary.h5"
echo "plots:     $ROOT/results/quickstart/loss.png"
echo "           $ROOT/results/quickstart/quality_vs_memory.png"
