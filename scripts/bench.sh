#!/usr/bin/env bash
# Benchmarks attnlab against the PyTorch reference of the same model, eager
# and torch.compile, on the same device in the same run, and prints the
# ratios (scripts/bench_compare.py says which cases). Builds first.
#   scripts/bench.sh                 # every case for this machine (CUDA if present, else CPU)
#   scripts/bench.sh --smoke         # B4 and a few B5 steps: what CI runs
#   scripts/bench.sh --device cpu --no-compile --out /tmp/bench
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PRESET=${ATTNLAB_PRESET:-release}
[ "${ATTNLAB_SKIP_SETUP:-0}" = 1 ] || "$ROOT/scripts/setup.sh"
cd "$ROOT"
source "build/$PRESET/setup.env"
DEVICE=cpu
"$PLOT_PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null && DEVICE=cuda
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
exec "$PLOT_PY" scripts/bench_compare.py --bin "build/$PRESET/bin/attnlab" --device "$DEVICE" "${args[@]}"
