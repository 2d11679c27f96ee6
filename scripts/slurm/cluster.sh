#!/usr/bin/env bash
# A one-node Slurm cluster on localhost for tests, entirely under STATE_DIR:
# its own munged (own key and socket), slurmctld and slurmd, its own
# slurm.conf, state, spool, logs and pid files. Nothing under /etc is used.
#
#   cluster.sh start  STATE_DIR   start (or find running) and wait for the node
#                                 to be idle; prints `export SLURM_CONF=...`
#                                 lines for eval. Exit 0 started, 3 the
#                                 daemons cannot run on this machine (reason
#                                 printed from their logs), 2 usage / not
#                                 installed / other setup error.
#   cluster.sh stop   STATE_DIR   cancel jobs, stop slurmd, slurmctld, munged;
#                                 idempotent, exit 0.
#   cluster.sh status STATE_DIR   sinfo + squeue.
#
# Environment knobs (all optional):
#   SLURM_CLUSTER_TIMEOUT   seconds to wait for the node to be idle (60)
#   SLURM_CRED_EXPIRE       AuthInfo cred_expire; a requeued job is not
#                           started again before this many seconds (10, min 5)
#   SLURM_CLUSTER_DEBUG     slurmctld/slurmd log level (info)
#   SLURM_REQUEUE_EXIT      exit status that requeues a batch job (75)
#
# Needs root: SlurmUser=root, slurmd runs jobs as the submitting user.
set -uo pipefail

usage() {
    echo "usage: $0 {start|stop|status} STATE_DIR" >&2
    exit 2
}
[ $# -eq 2 ] || usage
cmd=$1
case "$cmd" in start | stop | status) ;; *) usage ;; esac

log() { echo "cluster.sh: $*" >&2; }

if [ "$cmd" = start ] && [ "$(id -u)" -ne 0 ]; then
    log "CANNOT START: must run as root (SlurmUser=root; slurmd runs jobs as their users)"
    exit 3
fi
if [ "$cmd" = start ]; then
    mkdir -p "$2" || exit 2
elif [ ! -d "$2" ]; then
    log "no state dir $2: not running"
    [ "$cmd" = stop ] && exit 0
    exit 1
fi
STATE=$(cd "$2" && pwd -P) || exit 2
CONF=$STATE/slurm.conf
MUNGE_DIR=$STATE/munge
MUNGE_SOCKET=$MUNGE_DIR/munge.socket
LOG_DIR=$STATE/log
export SLURM_CONF=$CONF

# pid from a pid file, only if that process is alive and has the given name.
live_pid() { # pidfile comm
    local pid
    [ -s "$1" ] || return 1
    pid=$(tr -dc '0-9' <"$1")
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
    echo "$pid"
}

# Processes of this cluster's jobs: slurmstepd (inherits SLURM_CONF from
# slurmd and outlives it) and job processes (SLURM_CONF and SLURM_JOB_ID in
# their environment, from sbatch) that escaped the process tracking, e.g.
# children left running by a batch script that exited.
job_pids() {
    local p env
    for p in /proc/[0-9]*; do
        [ "${p#/proc/}" = $$ ] && continue
        env=$({ tr '\0' '\n' <"$p/environ"; } 2>/dev/null) || continue
        printf '%s\n' "$env" | grep -qxF "SLURM_CONF=$CONF" || continue
        if [ "$(cat "$p/comm" 2>/dev/null)" = slurmstepd ] ||
            printf '%s\n' "$env" | grep -q '^SLURM_JOB_ID='; then
            echo "${p#/proc/}"
        fi
    done
}

wait_gone() { # seconds pid...
    local t=$(($1 * 10)) p alive
    shift
    while [ $t -gt 0 ]; do
        alive=0
        for p in "$@"; do [ -d "/proc/$p" ] && alive=1; done
        [ $alive -eq 0 ] && return 0
        sleep 0.1
        t=$((t - 1))
    done
    return 1
}

kill_pids() { # pid... : TERM, wait 5 s, KILL
    [ $# -gt 0 ] || return 0
    kill -TERM "$@" 2>/dev/null
    wait_gone 5 "$@" && return 0
    kill -KILL "$@" 2>/dev/null
    wait_gone 5 "$@"
}

# A TCP port nobody listens on (from /proc/net/tcp*: state 0A = LISTEN).
port_free() {
    local hex
    hex=$(printf ':%04X' "$1")
    ! awk -v h="$hex" '$4 == "0A" && substr($2, length($2) - 4) == h { f = 1 } END { exit !f }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

pick_port() { # start exclude
    local p=$1
    while [ "$p" -lt 65000 ]; do
        if [ "$p" != "${2:-}" ] && port_free "$p"; then
            echo "$p"
            return 0
        fi
        p=$((p + 1))
    done
    return 1
}

print_exports() {
    echo "export SLURM_CONF=$CONF"
    echo "export SLURM_CLUSTER_STATE=$STATE"
}

# Lines from the daemons' logs that say why they did not come up.
report_logs() {
    local f lines
    for f in "$MUNGE_DIR/munged.log" "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" \
        "$LOG_DIR/slurmctld.out" "$LOG_DIR/slurmd.out"; do
        [ -s "$f" ] || continue
        # Leave out what every healthy start logs too (no PMIx library,
        # no saved state in a new state dir).
        lines=$(grep -iE 'error|fatal|fail|denied|invalid|cannot|unable' "$f" |
            grep -viE 'pmix|MPI: Cannot create context|state file|Trying backup state save' | tail -n 15)
        [ -n "$lines" ] || lines=$(tail -n 5 "$f")
        echo "---- $f ----" >&2
        echo "$lines" >&2
    done
}

cannot_start() {
    log "CANNOT START: $*"
    report_logs
    do_stop >/dev/null 2>&1
    exit 3
}

node_state() { sinfo -h -n "$NODE" -o '%T' 2>/dev/null | head -n 1; }

write_conf() {
    local cpus mem_kb mem_mb ctld_port d_port host
    cpus=$(nproc)
    mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    mem_mb=$((mem_kb / 1024))
    # A bit below the real memory, so slurmd never reports less than configured.
    mem_mb=$((mem_mb * 95 / 100))
    [ "$mem_mb" -ge 1 ] || mem_mb=1
    ctld_port=$(pick_port 6817) || return 1
    d_port=$(pick_port $((ctld_port + 1)) "$ctld_port") || return 1
    host=$NODE
    cat >"$CONF" <<EOF
# Generated by scripts/slurm/cluster.sh for a one-node test cluster.
ClusterName=attnlab
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root

# Private munged (socket under the state dir). cred_expire is also how long a
# requeued job waits before it may start again (default 120 s, minimum 5 s).
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=${SLURM_CRED_EXPIRE:-10}

StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=${SLURM_CLUSTER_DEBUG:-info}
SlurmdDebug=${SLURM_CLUSTER_DEBUG:-info}
TmpFS=$STATE/tmp

# No cgroups. proctrack/pgid kills a job's whole process group at its end,
# also children the batch shell left behind (proctrack/linuxproc follows the
# parent chain and loses them once the shell has exited). No task binding.
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG_DIR/jobcomp.log
MpiDefault=none
SwitchType=switch/none
PropagateResourceLimits=NONE
MailProg=/bin/true

SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides

# Batch jobs are requeueable by default; a batch script that exits with
# status ${SLURM_REQUEUE_EXIT:-75} is requeued automatically (SLURM_RESTART_COUNT goes up).
JobRequeue=1
RequeueExit=${SLURM_REQUEUE_EXIT:-75}
ReturnToService=2
MaxArraySize=10001

# Short timeouts for fast tests.
KillWait=2
MessageTimeout=5
SlurmctldTimeout=10
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=600
Waittime=0
UnkillableStepTimeout=30
BatchStartTimeout=10
EpilogMsgTime=100
TCPTimeout=2

NodeName=$host NodeAddr=127.0.0.1 NodeHostname=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
}

start_munged() {
    if live_pid "$MUNGE_DIR/munged.pid" munged >/dev/null; then
        return 0
    fi
    mkdir -p "$MUNGE_DIR" || return 1
    # munged wants the socket directory (and its parents) searchable by all.
    chmod 755 "$MUNGE_DIR" "$STATE"
    if [ ! -s "$MUNGE_DIR/munge.key" ]; then
        (umask 077 && dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1024 count=1 status=none) || return 1
    fi
    chmod 400 "$MUNGE_DIR/munge.key"
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
    # --force: the state dir may sit under a 0700 directory (mktemp), which
    # munged otherwise refuses because non-root clients could not reach it.
    munged --force \
        --key-file="$MUNGE_DIR/munge.key" \
        --socket="$MUNGE_SOCKET" \
        --pid-file="$MUNGE_DIR/munged.pid" \
        --log-file="$MUNGE_DIR/munged.log" \
        --seed-file="$MUNGE_DIR/munged.seed" >"$MUNGE_DIR/munged.out" 2>&1 || return 1
    local t=50
    while [ $t -gt 0 ]; do
        munge -S "$MUNGE_SOCKET" -n 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1 && return 0
        sleep 0.1
        t=$((t - 1))
    done
    return 1
}

do_start() {
    local b
    for b in munged munge unmunge slurmctld slurmd sinfo squeue scontrol sbatch scancel flock; do
        command -v "$b" >/dev/null 2>&1 || {
            log "$b not found: run scripts/slurm/install.sh (as root)"
            exit 2
        }
    done

    mkdir -p "$STATE/ctld" "$STATE/spool" "$STATE/run" "$STATE/tmp" "$LOG_DIR" || exit 2

    # Already running: check it answers and print the exports.
    if live_pid "$STATE/run/slurmctld.pid" slurmctld >/dev/null &&
        live_pid "$STATE/run/slurmd.pid" slurmd >/dev/null &&
        [ -s "$CONF" ]; then
        NODE=$(sed -n 's/^NodeName=\([^ ]*\) .*/\1/p' "$CONF")
        case "$(node_state)" in
        idle* | mixed* | allocated* | completing*)
            log "already running"
            print_exports
            exit 0
            ;;
        esac
    fi
    do_stop >/dev/null 2>&1

    # One start at a time on this machine: the free ports are picked and
    # bound under a lock (two parallel starts would otherwise pick the same).
    # The daemons must not inherit the lock's descriptor (9>&-).
    exec 9>"${TMPDIR:-/tmp}/attnlab-slurm-cluster.lock"
    flock -w 180 9 || log "waited 180 s for the start lock; going on without it"

    start_munged 9>&- || cannot_start "munged did not start"

    local attempt=1 t p st=""
    while :; do
        write_conf || cannot_start "no free TCP port for slurmctld/slurmd"
        # slurmctld and slurmd daemonize; -f names the conf, SLURM_CONF too.
        slurmctld -f "$CONF" >"$LOG_DIR/slurmctld.out" 2>&1 9>&- ||
            cannot_start "slurmctld exited with status $?"
        t=$((${SLURM_CLUSTER_TIMEOUT:-60} * 5))
        while ! scontrol ping 2>/dev/null | grep -q 'is UP'; do
            if ! live_pid "$STATE/run/slurmctld.pid" slurmctld >/dev/null; then
                sleep 0.5
                live_pid "$STATE/run/slurmctld.pid" slurmctld >/dev/null && continue
                # A port taken since it was picked: pick again.
                if [ $attempt -lt 3 ] && grep -q 'Address already in use' "$LOG_DIR/slurmctld.log" 2>/dev/null; then
                    break
                fi
                cannot_start "slurmctld died"
            fi
            t=$((t - 1))
            [ $t -gt 0 ] || cannot_start "slurmctld does not answer"
            sleep 0.2
        done
        if ! live_pid "$STATE/run/slurmctld.pid" slurmctld >/dev/null; then
            log "slurmctld port in use; trying other ports"
            mv "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmctld.log.$attempt"
            attempt=$((attempt + 1))
            continue
        fi

        slurmd -f "$CONF" -N "$NODE" >"$LOG_DIR/slurmd.out" 2>&1 9>&- ||
            cannot_start "slurmd exited with status $?"
        while :; do
            st=$(node_state)
            case "$st" in idle*) break 2 ;; esac
            # A node left DOWN/DRAIN by an earlier run of this state dir.
            case "$st" in down* | drain*) scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 ;; esac
            if ! live_pid "$STATE/run/slurmd.pid" slurmd >/dev/null; then
                sleep 0.5
                live_pid "$STATE/run/slurmd.pid" slurmd >/dev/null && continue
                if [ $attempt -lt 3 ] && grep -q 'Address already in use' "$LOG_DIR/slurmd.log" 2>/dev/null; then
                    log "slurmd port in use; trying other ports"
                    scontrol shutdown >/dev/null 2>&1
                    p=$(live_pid "$STATE/run/slurmctld.pid" slurmctld) && wait_gone 10 "$p"
                    mv "$LOG_DIR/slurmd.log" "$LOG_DIR/slurmd.log.$attempt"
                    attempt=$((attempt + 1))
                    continue 2
                fi
                cannot_start "slurmd died (node state '$st')"
            fi
            t=$((t - 1))
            [ $t -gt 0 ] || cannot_start "node not idle after ${SLURM_CLUSTER_TIMEOUT:-60} s (state '$st')"
            sleep 0.2
        done
    done
    flock -u 9
    exec 9>&-
    log "node $NODE idle ($(nproc) CPUs); conf $CONF"
    print_exports
    exit 0
}

do_stop() {
    local pids p ctld d
    ctld=$(live_pid "$STATE/run/slurmctld.pid" slurmctld)
    if [ -n "$ctld" ] && [ -s "$CONF" ]; then
        # Cancel every job so no slurmstepd is left behind, then wait a bit
        # for them to finish (KillWait is 2 s).
        pids=$(squeue -h -o '%A' 2>/dev/null | sort -u)
        if [ -n "$pids" ]; then
            # shellcheck disable=SC2086
            scancel $pids 2>/dev/null
            local t=100
            while [ $t -gt 0 ] && [ -n "$(squeue -h -o '%A' 2>/dev/null)" ]; do
                sleep 0.1
                t=$((t - 1))
            done
        fi
        scontrol shutdown >/dev/null 2>&1
    fi
    ctld=$(live_pid "$STATE/run/slurmctld.pid" slurmctld)
    d=$(live_pid "$STATE/run/slurmd.pid" slurmd)
    # shellcheck disable=SC2086
    wait_gone 10 $ctld $d || kill_pids $ctld $d
    pids=$(job_pids)
    if [ -n "$pids" ]; then
        log "killing leftover job processes: ${pids//$'\n'/ }"
        # shellcheck disable=SC2086
        kill_pids $pids
    fi
    p=$(live_pid "$MUNGE_DIR/munged.pid" munged)
    if [ -n "$p" ]; then
        munged -s -S "$MUNGE_SOCKET" >/dev/null 2>&1
        wait_gone 5 "$p" || kill_pids "$p"
    fi
    rm -f "$STATE/run/slurmctld.pid" "$STATE/run/slurmd.pid"
    log "stopped ($STATE)"
    return 0
}

do_status() {
    if ! live_pid "$STATE/run/slurmctld.pid" slurmctld >/dev/null; then
        echo "slurmctld not running ($STATE)"
        exit 1
    fi
    sinfo
    squeue -a -o '%.18i %.9P %.12j %.8u %.10T %.10M %.6C %R'
}

NODE=$(hostname -s 2>/dev/null || true)
[ -n "$NODE" ] || NODE=localhost

case "$cmd" in
start) do_start ;;
stop) do_stop ;;
status) do_status ;;
esac
