#!/usr/bin/env bash
# MHA -> MLA conversion experiment (experiments/mha2mla.yaml): builds what is
# missing, trains the source (the quickstart's MHA, seed 0) into
# results/mha2mla-source unless it is complete there, sweeps the conversions
# (10 runs: five ranks, each before and after a 200-step fine-tune), then
# collects and plots them. Extra arguments go to `attnlab sweep`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PRESET=${ATTNLAB_PRESET:-release}
"$ROOT/scripts/setup.sh"
cd "$ROOT"
source "build/$PRESET/setup.env"
BIN="build/$PRESET/bin/attnlab"

"$BIN" data prepare kjv
"$BIN" train +experiment=quickstart attention=mha seed=0 run.root=results run.name=mha2mla-source
"$BIN" sweep experiments/mha2mla.yaml --jobs 2 "$@"
"$BIN" collect results/mha2mla
"$PLOT_PY" scripts/plot.py results/mha2mla
echo
echo "source:  $ROOT/results/mha2mla-source/run.h5"
echo "tables:  $ROOT/results/mha2mla/summary.csv, summary_configs.csv"
echo "plot:    $ROOT/results/mha2mla/quality_vs_memory.png"
