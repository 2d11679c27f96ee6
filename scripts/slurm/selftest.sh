#!/usr/bin/env bash
# shellcheck disable=SC2317  # functions are called through wait_for and traps
# Self-test of the local Slurm cluster (cluster.sh): a 4-task job array
# (--array=0-3%2, 1 CPU each, --requeue, --open-mode=append) where three
# tasks are preempted on their first run with
#     scancel --signal=TERM --batch JOBID_TASK
# (signals only the batch shell, which traps TERM) and come back requeued,
# each by one way of requeueing:
#   task 1: the job requeues itself: `scontrol requeue $SLURM_JOB_ID` in its
#           TERM trap, then exits;
#   task 2: the TERM trap exits 0 (job COMPLETED) and the test requeues it
#           from outside: `scontrol requeue JOBID_2`;
#   task 3: the TERM trap exits 75 = the cluster's RequeueExit (automatic).
# Task 0 just runs. On a restart (SLURM_RESTART_COUNT > 0) tasks finish at
# once. Checks markers, logs and `scontrol show job`, stops the cluster and
# checks that no daemon of it is left.
#
# Usage: selftest.sh [KEEP_DIR]   (a temp dir is used and removed otherwise)
# Exit: 0 PASS, 1 FAIL, 3 SKIP (the daemons cannot run on this machine).
# Needs root and the packages of install.sh. Takes about 30-40 s.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T0=$(date +%s.%N)
DEADLINE_S=${SELFTEST_DEADLINE:-100}

if [ $# -ge 1 ]; then
    DIR=$1
    mkdir -p "$DIR"
    KEEP=1
else
    DIR=$(mktemp -d /tmp/attnlab-slurm-selftest.XXXXXX)
    KEEP=0
fi
DIR=$(cd "$DIR" && pwd -P)
STATE=$DIR/cluster
WORK=$DIR/work
MARK=$WORK/markers
mkdir -p "$WORK" "$MARK"

passed=0
failed=0
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "[$(elapsed)s] $*"; }
pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

cleanup() {
    "$HERE/cluster.sh" stop "$STATE" >/dev/null 2>&1
    if [ "$KEEP" = 0 ]; then rm -rf "$DIR"; fi
}

finish() {
    local rc=$1
    trap - EXIT
    if [ "$rc" != 3 ]; then
        # Stop and check that nothing of this cluster is left running.
        local t1 left
        t1=$(date +%s.%N)
        "$HERE/cluster.sh" stop "$STATE" >/dev/null 2>&1
        unset SLURM_CONF   # so that the processes of this check do not match
        left=$(pgrep -a -f "$STATE" || true)
        # slurmstepd and job processes carry SLURM_CONF in their environment.
        for p in /proc/[0-9]*; do
            { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qxF "SLURM_CONF=$STATE/slurm.conf" || continue
            [ "${p#/proc/}" = $$ ] && continue
            left="$left
${p#/proc/} $({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null)"
        done
        left=$(echo "$left" | sed '/^$/d')
        if [ -z "$left" ]; then
            pass "cluster.sh stop left no slurmctld/slurmd/slurmstepd/munged/job process of this cluster ($(awk -v a="$t1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s)"
        else
            fail "processes left after cluster.sh stop:"
            echo "$left"
        fi
        [ $failed -eq 0 ] || rc=1
    fi
    if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then
        echo "---- squeue / scontrol / logs ----"
        [ -d "$WORK" ] && tail -n 20 "$WORK"/task-*.log 2>/dev/null
        (cd "$MARK" 2>/dev/null && echo *)
        echo
        grep -hiE 'error|fatal' "$STATE"/log/*.log 2>/dev/null | grep -v pmix | tail -n 20
    fi
    if [ "$KEEP" = 0 ]; then rm -rf "$DIR"; fi
    case "$rc" in
    0) echo "selftest: PASS ($(elapsed) s)" ;;
    3) echo "selftest: SKIP ($(elapsed) s)" ;;
    *) echo "selftest: FAIL ($(elapsed) s)" ;;
    esac
    echo "$passed passed, $failed failed"
    exit "$rc"
}
trap 'cleanup; echo "selftest: FAIL (interrupted)"; exit 1' INT TERM
trap 'cleanup' EXIT

# ---- start the cluster -----------------------------------------------------
out=$("$HERE/cluster.sh" start "$STATE" 2>"$DIR/start.err")
rc=$?
if [ $rc -eq 3 ]; then
    cat "$DIR/start.err"
    echo "SKIP: the Slurm daemons cannot run on this machine (cluster.sh exit 3)"
    finish 3
elif [ $rc -ne 0 ]; then
    cat "$DIR/start.err"
    fail "cluster.sh start exited $rc"
    finish 1
fi
eval "$out"
pass "cluster started: $(sinfo -h -o '%P %a %D %T %N' | head -n 1), slurm $(sinfo -V | awk '{print $2}') ($(elapsed) s)"

deadline_hit() { awk -v a="$T0" -v b="$(date +%s.%N)" -v d="$DEADLINE_S" 'BEGIN { exit !(b - a > d) }'; }

# wait_for DESC CMD...: poll CMD every 0.25 s until it succeeds or the deadline.
wait_for() {
    local desc=$1
    shift
    until "$@"; do
        if deadline_hit; then
            fail "timed out (${DEADLINE_S} s) waiting for: $desc"
            squeue -a -o '%.12i %.10T %.20r' 2>/dev/null
            finish 1
        fi
        sleep 0.25
    done
}

# ---- the job ---------------------------------------------------------------
cat >"$WORK/task.sh" <<'EOF'
#!/bin/bash
# One array task. Markers: $MARK/{start,term,requeue,done}-TASK-RESTARTS.
id=$SLURM_ARRAY_TASK_ID
n=${SLURM_RESTART_COUNT:-0}
tag=$id-$n
now() { date +%s.%N; }
echo "start task=$id restarts=$n job=$SLURM_JOB_ID array_job=$SLURM_ARRAY_JOB_ID restart_count=${SLURM_RESTART_COUNT-unset} pid=$$"
env | grep '^SLURM_' | sort >"$MARK/env-$tag"
now >"$MARK/start-$tag"

child=""
on_term() {
    trap '' TERM   # a requeue sends TERM again (then KILL after KillWait)
    now >"$MARK/term-$tag"
    # End our own children first: a child that outlives the batch shell is
    # only reaped by Slurm's process tracking at the end of the job.
    if [ -n "$child" ]; then kill "$child" 2>/dev/null; wait "$child" 2>/dev/null; fi
    echo "task=$id got SIGTERM (restarts=$n)"
    # A real job would write its checkpoint here, before asking for requeue.
    case "$id" in
    1)  # (a) the job requeues itself
        scontrol requeue "$SLURM_JOB_ID" >"$MARK/requeue-$tag" 2>&1
        echo "rc=$?" >>"$MARK/requeue-$tag"
        exit 0 ;;
    2)  # (b) exit; the test requeues the finished task from outside
        exit 0 ;;
    3)  # (c) exit status RequeueExit=75: requeued by slurmctld
        exit 75 ;;
    esac
    exit 0
}
trap on_term TERM

if [ "$n" = 0 ] && [ "$id" != 0 ]; then
    # First run of a preempted task: run until signalled. The sleep runs in
    # the background and the shell waits on it, so the trap runs at once
    # (bash runs traps only between foreground commands).
    sleep 600 &
    child=$!
    wait "$child"
    echo "not reached: the TERM trap exits"
fi
now >"$MARK/done-$tag"
echo "done task=$id restarts=$n"
EOF
chmod +x "$WORK/task.sh"

export MARK
t_submit=$(date +%s.%N)
JOB=$(sbatch --parsable --job-name=selftest --array=0-3%2 --ntasks=1 --cpus-per-task=1 \
    --requeue --open-mode=append --output="$WORK/task-%a.log" \
    --time=10 --signal=B:TERM@30 --chdir="$WORK" "$WORK/task.sh" 2>&1)
if ! [[ "$JOB" =~ ^[0-9]+$ ]]; then
    fail "sbatch: $JOB"
    finish 1
fi
pass "submitted job array $JOB (--array=0-3%2 --requeue --open-mode=append --signal=B:TERM@30)"

task_state() { squeue -h -j "${JOB}_$1" -o '%T' 2>/dev/null | head -n 1; }
job_field() { scontrol -o show job "${JOB}_$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
running() { [ "$(task_state "$1")" = RUNNING ] && [ -e "$MARK/start-$1-0" ]; }
marker() { [ -e "$MARK/$1" ]; }
both_running() { running 1 && running 2; }

# ---- preempt tasks 1 and 2 -------------------------------------------------
wait_for "tasks 1 and 2 running" both_running
say "tasks 1 and 2 running ($(awk -v a="$t_submit" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s after sbatch)"
max_running=$(squeue -h -j "$JOB" -t R -o '%i' | wc -l)
if [ "$max_running" -le 2 ]; then
    pass "array throttle %2: $max_running tasks running"
else
    fail "array throttle %2: $max_running tasks running"
fi

declare -A t_sig
for t in 1 2; do
    t_sig[$t]=$(date +%s.%N)
    if scancel --signal=TERM --batch "${JOB}_$t"; then :; else fail "scancel --signal=TERM --batch ${JOB}_$t"; fi
done
wait_for "task 1 TERM trap" marker term-1-0
wait_for "task 2 TERM trap" marker term-2-0
pass "scancel --signal=TERM --batch reached the batch shells' TERM traps (tasks 1, 2)"

# (b): task 2 exits 0 on TERM; once it is finished, requeue it from outside.
t2done() { [ "$(job_field 2 JobState)" = COMPLETED ]; }
wait_for "task 2 COMPLETED after TERM" t2done
if out=$(scontrol requeue "${JOB}_2" 2>&1); then
    pass "(b) scontrol requeue ${JOB}_2 from outside on the COMPLETED task: accepted"
else
    fail "(b) scontrol requeue ${JOB}_2 from outside: $out"
fi

# (c): task 3 starts once a slot is free; preempt it, it exits 75.
wait_for "task 3 running" running 3
t_sig[3]=$(date +%s.%N)
scancel --signal=TERM --batch "${JOB}_3" || fail "scancel --signal=TERM --batch ${JOB}_3"
wait_for "task 3 TERM trap" marker term-3-0

# ---- wait for all tasks to complete ----------------------------------------
all_done() { [ -z "$(squeue -h -j "$JOB" -o '%i' 2>/dev/null)" ]; }
wait_for "all 4 tasks finished" all_done
say "all tasks finished ($(awk -v a="$t_submit" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s after sbatch)"

# ---- checks ----------------------------------------------------------------
if grep -q '^rc=0' "$MARK/requeue-1-0" 2>/dev/null; then
    pass "(a) scontrol requeue \$SLURM_JOB_ID from the task's own TERM trap: accepted"
else
    fail "(a) scontrol requeue from inside the job: $(tr '\n' ' ' <"$MARK/requeue-1-0" 2>/dev/null)"
fi

how=("" "; requeued by (a) scontrol requeue in its own trap" "; requeued by (b) scontrol requeue from outside"
    "; requeued by (c) exit 75 = RequeueExit")
for t in 0 1 2 3; do
    if [ "$t" = 0 ]; then want=0; else want=1; fi
    st=$(job_field "$t" JobState)
    rs=$(job_field "$t" Restarts)
    ec=$(job_field "$t" ExitCode)
    done_markers=$(cd "$MARK" && compgen -G "done-$t-*" | tr '\n' ' ')
    dones=$(echo "$done_markers" | wc -w)
    if [ "$st" = COMPLETED ] && [ "$rs" = "$want" ] && [ "$ec" = 0:0 ] &&
        [ "$dones" = 1 ] && [ -e "$MARK/done-$t-$want" ]; then
        pass "task $t: COMPLETED, Restarts=$rs, ExitCode=$ec, finished once (on run $((want + 1)))${how[$t]}"
    else
        fail "task $t: JobState=$st Restarts=$rs ExitCode=$ec done-markers=$done_markers"
    fi
done

for t in 1 2 3; do
    starts=$(grep -c '^start ' "$WORK/task-$t.log" 2>/dev/null)
    if [ "$starts" = 2 ] && grep -q 'restart_count=unset' "$WORK/task-$t.log" &&
        grep -q 'restart_count=1 ' "$WORK/task-$t.log" &&
        grep -qx 'SLURM_RESTART_COUNT=1' "$MARK/env-$t-1" && ! grep -q '^SLURM_RESTART_COUNT=' "$MARK/env-$t-0"; then
        pass "task $t: log appended over both runs; SLURM_RESTART_COUNT unset on run 1, =1 on run 2"
    else
        fail "task $t: log/env: $starts start lines; $(grep '^start ' "$WORK/task-$t.log" 2>/dev/null | tr '\n' '|')"
    fi
    # Same job id across the requeue; array ids in the environment.
    if [ "$(sed -n 's/^SLURM_JOB_ID=//p' "$MARK/env-$t-0")" = "$(sed -n 's/^SLURM_JOB_ID=//p' "$MARK/env-$t-1")" ] &&
        grep -qx "SLURM_ARRAY_JOB_ID=$JOB" "$MARK/env-$t-1" && grep -qx "SLURM_ARRAY_TASK_ID=$t" "$MARK/env-$t-1"; then
        :
    else
        fail "task $t: SLURM_JOB_ID/SLURM_ARRAY_* differ across the requeue"
    fi
done
if [ ! -e "$MARK/term-0-0" ] && [ "$(grep -c '^start ' "$WORK/task-0.log")" = 1 ]; then
    pass "task 0: not signalled, ran once"
else
    fail "task 0 was signalled or ran more than once"
fi

# Timings: signal -> trap, signal -> second start.
for t in 1 2 3; do
    ts=${t_sig[$t]}
    tt=$(cat "$MARK/term-$t-0" 2>/dev/null)
    tr2=$(cat "$MARK/start-$t-1" 2>/dev/null)
    [ -n "$tt" ] && [ -n "$tr2" ] &&
        say "task $t: TERM trap $(awk -v a="$ts" -v b="$tt" 'BEGIN { printf "%.2f", b - a }') s after scancel, restarted $(awk -v a="$ts" -v b="$tr2" 'BEGIN { printf "%.1f", b - a }') s after scancel"
done

finish 0
