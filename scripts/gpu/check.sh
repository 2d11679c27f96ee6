#!/usr/bin/env bash
# The one prepared call on a lent GPU machine (Step 9): build, test, train the
# quickstart and benchmark against PyTorch, inside one device command.
#
#   on the device, from the repository root, with .gpu/ carried (made by
#   scripts/gpu/prepare.sh here, which prints the exact call):
#       bash scripts/gpu/check.sh
#   here, as a rehearsal at tiny sizes on the CPU:
#       ATTNLAB_GPU_CHECK_CPU=1 PYTHON=/path/to/venv-with-the-device-torch/bin/python bash scripts/gpu/check.sh
#
# Phases, each under its own time limit, each writing what it found as it
# ends, so a command cut off at the device's limit still returns what
# finished:
#   env        GPU, driver, torch and nvcc versions
#   build      the carried .deb files unpacked into a private prefix, CMake
#              against this machine's LibTorch, -j$(nproc)
#   test       the [gpu] tests (ctest -L gpu; docs/gpu.md lists what they check)
#   quickstart experiments/quickstart.yaml with train=gpu (400 steps, 4
#              variants x 3 seeds), its validation loss against the CPU
#              reference band in results/reference/quickstart/
#   bench      scripts/bench_compare.py: B1-B3 beside PyTorch eager and
#              torch.compile, interleaved rounds, until the deadline
# Everything fits ATTNLAB_GPU_CHECK_SECONDS (default 540 s, under the
# device's 10-minute command limit). At most 8 files go to $OUT:
#   summary.json build.log ctest.log quickstart.log quickstart.csv bench.log bench.h5 compare.csv
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
START=$(date +%s)
CPU_MODE=${ATTNLAB_GPU_CHECK_CPU:-0}
# Every limit below is multiplied by SCALE: 1 on the device; 8 for the
# rehearsal, whose 2-core build takes several times the device's.
SCALE=${ATTNLAB_GPU_CHECK_SCALE:-$([ "$CPU_MODE" = 1 ] && echo 8 || echo 1)}
TOTAL=${ATTNLAB_GPU_CHECK_SECONDS:-$((540 * SCALE))}
DEADLINE=$((START + TOTAL))
CARRY=${ATTNLAB_GPU_CARRY:-.gpu}
BUILD=${ATTNLAB_GPU_BUILD:-build-gpu}
WORK=${ATTNLAB_GPU_WORK:-/tmp/attnlab-gpu-check}
PY=${PYTHON:-python3}
OUT=${OUT:-$WORK/out}
mkdir -p "$OUT" "$WORK"
STATE="$WORK/summary.tsv"   # phase <TAB> status <TAB> seconds <TAB> note, one line per phase
: > "$STATE"

say() { echo "[check $(($(date +%s) - START))s] $*"; }
left() { echo $((DEADLINE - $(date +%s))); }
# summary.json from the phases so far: rewritten after every phase.
write_summary() {
  "$PY" - "$STATE" "$OUT/summary.json" "$CPU_MODE" <<'PY'
import json, sys
rows = [l.rstrip("\n").split("\t", 3) for l in open(sys.argv[1]) if l.strip()]
phases = {r[0]: {"status": r[1], "seconds": float(r[2]), "note": r[3] if len(r) > 3 else ""} for r in rows}
json.dump({"cpu_rehearsal": sys.argv[3] == "1", "phases": phases}, open(sys.argv[2], "w"), indent=1)
PY
}
record() {  # phase status seconds note
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(echo "$4" | tr '\t\n' '  ')" >> "$STATE"
  write_summary
  say "$1: $2 ($3 s) $4"
}
# run_phase NAME LIMIT LOG command...: runs under `timeout`, records the outcome.
run_phase() {
  local name=$1 limit=$(($2 * SCALE)) log=$3; shift 3
  local avail; avail=$(left)
  ((limit > avail)) && limit=$avail
  if ((limit < 10)); then record "$name" skipped 0 "no time left"; return 1; fi
  say "$name (limit ${limit}s)"
  local t0 rc; t0=$(date +%s)
  if [ "$(type -t "$1")" = function ]; then  # timeout runs programs: a phase function runs in a child bash
    timeout --signal=TERM --kill-after=10 "$limit" bash -c "$(declare -f left say "$1"); $1" > "$log" 2>&1
  else
    timeout --signal=TERM --kill-after=10 "$limit" "$@" > "$log" 2>&1
  fi
  rc=$?
  local secs=$(($(date +%s) - t0))
  if ((rc == 0)); then record "$name" ok "$secs" ""
  elif ((rc == 124 || rc == 137)); then record "$name" timeout "$secs" "stopped at its ${limit}s limit; see $(basename "$log")"
  else record "$name" failed "$secs" "exit $rc: $(tail -n 3 "$log" | tr '\n' ' ' | cut -c1-300)"; fi
  return $rc
}

# --- env ------------------------------------------------------------------------
{
  echo "date: $(date -u +%FT%TZ)"; uname -a; nproc
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv
  command -v nvcc >/dev/null && nvcc --version | tail -n 2
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available() and torch.cuda.get_device_name(0))'
  cmake --version | head -n 1
} > "$WORK/env.log" 2>&1
TORCH_VERSION=$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo none)
record env ok 0 "$(grep -E '^(torch|NVIDIA|name)' "$WORK/env.log" | tr '\n' ';' | cut -c1-300)"

# --- build ----------------------------------------------------------------------
# A build carried from the development machine (prepare.sh --build DIR) is
# used when it was made from these sources, against this torch version, and
# its binary starts here; otherwise build here.
BIN="$BUILD/bin/attnlab"
DEPS="$WORK/deps/usr/lib/x86_64-linux-gnu"
TORCH_LIB=$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)
carried_ok() {
  [ -f "$CARRY/build/torch_version" ] && [ "$(cat "$CARRY/build/torch_version")" = "$TORCH_VERSION" ] || return 1
  [ "$(cat "$CARRY/build/source_sha256" 2>/dev/null)" = "$(bash scripts/gpu/source_hash.sh)" ] || return 1
  mkdir -p "$WORK/deps"
  for f in "$CARRY"/debs/*.deb; do dpkg-deb -x "$f" "$WORK/deps" 2>/dev/null \
    || (cd "$WORK/deps" && ar p "$OLDPWD/$f" "$(ar t "$OLDPWD/$f" | grep '^data.tar')" | tar -x -J 2>/dev/null); done
  export LD_LIBRARY_PATH="$DEPS:$DEPS/hdf5/serial:$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  "$CARRY/build/bin/attnlab" --version >> "$WORK/env.log" 2>&1
}
if carried_ok; then
  BUILD="$CARRY/build"; BIN="$BUILD/bin/attnlab"
  record build ok 0 "carried build for torch $TORCH_VERSION"
else
  PYTHON="$PY" ATTNLAB_DEPS_PREFIX="$WORK/deps" run_phase build 300 "$OUT/build.log" \
    bash scripts/gpu/offline-build.sh "$CARRY/debs" "$BUILD" -DATTNLAB_PYTHON="$PY" \
    || { say "build failed: nothing else can run"; exit 1; }
fi
# shellcheck disable=SC1090
[ -f "$BUILD/offline-env.sh" ] && source "$BUILD/offline-env.sh"

# --- test ------------------------------------------------------------------------
# The test binary itself, so that a carried build (whose ctest files name
# the development machine's paths) runs them the same way. On the CPU every
# [gpu] test reports a skip; the rehearsal checks they are built and run.
run_phase test 120 "$OUT/ctest.log" "$BUILD/bin/attnlab_tests" "[gpu]" --durations yes

export ROOT START DEADLINE CPU_MODE CARRY WORK PY OUT BUILD BIN SCALE LD_LIBRARY_PATH

# --- quickstart ------------------------------------------------------------------
quickstart() {
  local root="$WORK/results" experiment=experiments/quickstart.yaml extra=(train=gpu) report=()
  if [ "$CPU_MODE" = 1 ]; then  # the same path at a size two cores run in a minute
    experiment="$WORK/quickstart-cpu.yaml"
    cat > "$experiment" <<'YAML'
# @package _global_
defaults:
  - override /model: tiny
  - override /train: cpu
run: {name: quickstart}
model: {match_params: true}
train: {steps: 20, batch_size: 4, seq_len: 64, eval_every: 10, eval_batches: 2, log_every: 5}
sweep: {attention: 'mha,gqa,mqa,mla', seeds: 1}
eval: {context: [64, 128], tokens: 256}
YAML
    extra=(); report=(--report-only)
  fi
  "$BIN" sweep "$experiment" "run.root=$root" "data.dir=$CARRY/data" "${extra[@]}" --jobs 4 \
    && "$BIN" collect "$root/quickstart" \
    && cp "$root/quickstart/summary_configs.csv" "$OUT/quickstart.csv" \
    && "$PY" scripts/gpu/compare_quickstart.py "${report[@]}" "$root/quickstart/summary_configs.csv" \
         results/reference/quickstart/summary_configs.csv
}
run_phase quickstart 150 "$OUT/quickstart.log" quickstart
grep -E '^(band|within|outside)' "$OUT/quickstart.log" | head -n 8 | sed 's/^/  /'

# --- bench -----------------------------------------------------------------------
bench() {
  local budget=$(( $(left) - 20 ))
  if [ "$CPU_MODE" = 1 ]; then
    "$PY" scripts/bench_compare.py --bin "$BIN" --device cpu --smoke --out "$WORK/bench" --budget "$budget"
  else
    "$PY" scripts/bench_compare.py --bin "$BIN" --device cuda --rounds 3 --out "$WORK/bench" --budget "$budget"
  fi
  local rc=$?
  cp "$WORK/bench/compare.csv" "$OUT/compare.csv" 2>/dev/null
  for h5 in "$WORK/bench/cuda.h5" "$WORK/bench/cpu.h5"; do [ -f "$h5" ] && cp "$h5" "$OUT/bench.h5"; done
  return $rc
}
run_phase bench "$(($(left) / SCALE))" "$OUT/bench.log" bench
tail -n 40 "$OUT/bench.log"

say "done in $(($(date +%s) - START)) s; files in $OUT:"
ls -l "$OUT"
cat "$OUT/summary.json"
