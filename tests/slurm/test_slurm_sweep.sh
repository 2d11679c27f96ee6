#!/usr/bin/env bash
# A sweep on a real Slurm (a one-node cluster on localhost, scripts/slurm/):
# a 4-run sweep is submitted as a job array, one running task is preempted
# with `scancel --signal=TERM --batch`, checkpoints, requeues itself and
# resumes; the collected results must equal a local `--jobs 1` sweep of the
# same experiment. Where the daemons cannot start, it says so and skips.
#
# usage: test_slurm_sweep.sh ATTNLAB_BINARY SOURCE_DIR
set -uo pipefail
BIN=$1
SRC=$2
skip() { echo "ATTNLAB_SKIP: $*"; exit 0; }
fail() { echo "FAIL: $*"; exit 1; }
say() { echo "test_slurm_sweep: $*"; }

command -v sbatch >/dev/null 2>&1 || skip "Slurm is not installed (scripts/slurm/install.sh installs it)"
T=$(mktemp -d /tmp/attnlab-slurm-XXXXXX)
STATE=$T/cluster
cleanup() {
  "$SRC/scripts/slurm/cluster.sh" stop "$STATE" >/dev/null 2>&1
  [ "${KEEP:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT
exports=$("$SRC/scripts/slurm/cluster.sh" start "$STATE" 2>"$T/cluster.err")
rc=$?
[ $rc -eq 3 ] && skip "the Slurm daemons cannot start on this machine: $(tail -3 "$T/cluster.err" | tr '\n' ' ')"
[ $rc -ne 0 ] && fail "cluster.sh start exited $rc: $(cat "$T/cluster.err")"
eval "$exports"

# The corpus and one experiment, written twice: the same file name (so the
# same run ids) under two roots, one for Slurm and one for the local sweep.
for i in $(seq 0 1999); do echo "In the beginning God created the heaven and the earth $i."; done >"$T/corpus.txt"
for where in slurm local; do
  mkdir -p "$T/$where"
  cat >"$T/$where/exp.yaml" <<YAML
# @package _global_
defaults:
  - override /model: tiny
  - override /train: cpu
run:
  root: $T/$where/results
data:
  kind: text
  path: $T/corpus.txt
  dir: $T/data
model:
  max_seq_len: 64
train:
  steps: 300
  seq_len: 64
  batch_size: 8
  threads: 1
  eval_every: 100
  checkpoint_every: 20
  eval_batches: 2
  log_every: 10
sweep:
  attention: mha,mqa
  seeds: 2
eval:
  context: [64]
YAML
done
# The Slurm copy also says how to launch it; a launcher block changes no run
# (the ids, and the collected tables below, stay those of the local copy).
printf 'launcher:\n  signal_seconds: 30\n  sbatch: [--comment=attnlab-test]\n' >>"$T/slurm/exp.yaml"
cd "$SRC" || fail "no source dir"
"$BIN" data prepare data=text data.path="$T/corpus.txt" data.dir="$T/data" >/dev/null 2>&1

say "submitting"
"$BIN" sweep "$T/slurm/exp.yaml" launcher=slurm launcher.max_parallel=2 >"$T/submit.log" 2>&1 ||
  fail "sweep launcher=slurm failed: $(cat "$T/submit.log")"
script="$T/slurm/results/exp/slurm/sweep.sbatch"
for line in "#SBATCH --array=0-3%2" "#SBATCH --signal=B:TERM@30" "#SBATCH --comment=attnlab-test"; do
  grep -qxF -- "$line" "$script" || fail "the launcher config did not reach the batch script: no '$line' in $(cat "$script")"
done
JOB=$(sed -n 's/^submitted job array \([0-9]*\).*/\1/p' "$T/submit.log")
[ -n "$JOB" ] || fail "no job id in: $(cat "$T/submit.log")"
say "job array $JOB"

# Preempt task 1 once it has written a checkpoint: its run.h5 says running past step 20.
run1=$(sed -n '/index: 1$/,/dir:/s/^ *dir: //p' "$T/slurm/results/exp/sweep.yaml")
[ -n "$run1" ] || fail "no row 1 in the manifest"
for _ in $(seq 1 600); do
  ls "$run1"/checkpoints/step-*.pt >/dev/null 2>&1 && break
  sleep 0.1
done
ls "$run1"/checkpoints/step-*.pt >/dev/null 2>&1 || fail "task 1 wrote no checkpoint in 60 s: $(squeue -h -j "$JOB" 2>&1)"
scancel --signal=TERM --batch "${JOB}_1" || fail "scancel failed"
say "preempted task 1 (${JOB}_1)"

for _ in $(seq 1 1800); do
  [ -z "$(squeue -h -j "$JOB" 2>/dev/null)" ] && break
  sleep 0.1
done
[ -z "$(squeue -h -j "$JOB" 2>/dev/null)" ] || fail "the array did not finish in 180 s: $(squeue -j "$JOB")"

log1="$T/slurm/results/exp/slurm/task-1.log"
grep -q "requeueing" "$log1" || fail "task 1 was not requeued; its log: $(cat "$log1")"
grep -q "restart 1" "$log1" || fail "task 1 did not run again after its requeue; its log: $(cat "$log1")"
grep -q "resumed\|resume" "$run1/train.log" 2>/dev/null || true
status=$("$BIN" sweep "$T/slurm/exp.yaml" --status 2>&1)
echo "$status"
echo "$status" | grep -q "^4 run(s): 4 complete$" || fail "not every run completed"

say "the same sweep locally, --jobs 1"
"$BIN" sweep "$T/local/exp.yaml" --jobs 1 >"$T/local.log" 2>&1 || fail "local sweep failed: $(cat "$T/local.log")"
for where in slurm local; do
  "$BIN" collect "$T/$where/results/exp" >/dev/null || fail "collect $where failed"
done
# Equal but for the measured step time.
drop_timing() { awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i!="ms_per_step" && $i!="ms_per_step_mean" && $i!="ms_per_step_std") keep[i]=1}
  {out=""; for(i=1;i<=NF;i++) if(keep[i]) out=out (out==""?"":",") $i; print out}' "$1"; }
for f in summary.csv summary_configs.csv; do
  if ! diff <(drop_timing "$T/slurm/results/exp/$f") <(drop_timing "$T/local/results/exp/$f") >"$T/diff"; then
    fail "$f differs between Slurm and local: $(cat "$T/diff")"
  fi
done
say "task 1 preempted, requeued and resumed; Slurm and local results are equal"
echo "PASS"
