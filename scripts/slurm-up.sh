#!/usr/bin/env bash
# Starts a private, loopback-only Slurm (slurmctld + slurmd + munged) under PREFIX.
#
# Usage: scripts/slurm-up.sh PREFIX
#
# - Installs `slurm-wlm munge` with apt-get when missing (root only; `apt-get update` first when needed).
# - Builds PREFIX/{etc,state,spool,log,run,munge,munge-key}, a fresh munge key and PREFIX/etc/slurm.conf
#   (CPUs = nproc, RealMemory from `slurmd -C`, free TCP ports picked on 127.0.0.1).
# - Starts munged, slurmctld and slurmd and waits until the node `localhost` is idle.
# - Writes PREFIX/env.sh (`export SLURM_CONF=...`) and prints the same export line on stdout.
# Idempotent: when the daemons of PREFIX already run and the node is idle it only prints the export line; when PREFIX
# exists but the daemons are gone it restarts them, keeping the controller state (job ids go on increasing).
# Environment: SLURM_UP_TIMEOUT (seconds to wait for an idle node, default 60),
#              SLURM_UP_PORT (first controller port to try, default 6817),
#              SLURM_UP_MAX_ARRAY_SIZE (MaxArraySize, default 100001; `default` leaves Slurm's own 1001),
#              SLURM_UP_MIN_JOB_AGE (MinJobAge in seconds, default 3600; a farm-like short value makes Slurm forget
#              finished jobs soon), SLURM_UP_JOBCOMP (filetxt, default, or none: no jobcomp file, as on sites that
#              rely on slurmdbd), SLURM_UP_ENFORCE_MEMORY (1: jobs are killed when they use more memory than
#              --mem, as on a farm: jobacct_gather/linux with OverMemoryKill, sampled every second, and
#              CR_Core_Memory), SLURM_UP_MAX_JOB_COUNT (MaxJobCount, default 100000; every array task counts, so
#              `calibctl bench jobs --shards 100000 --scheduler slurm` needs 200001). They are recorded in slurm.conf; a PREFIX written with other knobs is rewritten
#              (and its daemons restarted) when started with new ones.
# Stop with scripts/slurm-down.sh PREFIX. Diagnostics go to stderr; exit 0 ok, 1 failure, 64 usage.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -eq 1 && -n "$1" && "$1" != -* ]] || { echo "usage: $0 PREFIX" >&2; exit 64; }
mkdir -p "$1" || die "cannot create prefix directory $1"
P="$(cd "$1" && pwd -P)"
CONF="$P/etc/slurm.conf"
TIMEOUT="${SLURM_UP_TIMEOUT:-60}"
start_time=$(date +%s.%N)
unset SQUEUE_FORMAT SQUEUE_FORMAT2 SINFO_FORMAT SLURM_TIME_FORMAT
export SLURM_CONF="$CONF"

# True when PID runs (a zombie waiting to be reaped counts as stopped).
alive() { kill -0 "$1" 2>/dev/null && [[ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]]; }
pid_alive() { [[ -s "$1" ]] && alive "$(cat "$1")"; }

node_state() { timeout 10 sinfo -h -N -n localhost -o %T 2>/dev/null | head -1 || true; }

finish() {
    printf 'export SLURM_CONF=%q\n' "$CONF" >"$P/env.sh"
    printf 'export SLURM_CONF=%q\n' "$CONF"
    log "ready in $(awk -v s="$start_time" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}') s (node localhost idle; source $P/env.sh)"
    exit 0
}

# The knobs below, as written into slurm.conf: a PREFIX whose slurm.conf was written with other knobs is rewritten.
knobs="# knobs: enforce_memory=${SLURM_UP_ENFORCE_MEMORY:-0} max_array_size=${SLURM_UP_MAX_ARRAY_SIZE:-100001} min_job_age=${SLURM_UP_MIN_JOB_AGE:-3600} jobcomp=${SLURM_UP_JOBCOMP:-filetxt} max_job_count=${SLURM_UP_MAX_JOB_COUNT:-100000}"
same_knobs() { [[ -f "$CONF" ]] && grep -qxF "$knobs" "$CONF"; }

# ---- already running? -------------------------------------------------------------------------------------------
if [[ -f "$CONF" ]] && same_knobs && pid_alive "$P/run/munged.pid" && pid_alive "$P/run/slurmctld.pid" \
    && pid_alive "$P/run/slurmd-localhost.pid"; then
    state="$(node_state)"
    if [[ "$state" == idle* || "$state" == mixed* || "$state" == allocated* ]]; then
        log "already running under $P (node $state)"
        finish
    fi
fi

# ---- packages -----------------------------------------------------------------------------------------------------
need_install=()
command -v slurmctld >/dev/null 2>&1 || need_install+=(slurm-wlm)
command -v slurmd >/dev/null 2>&1 || need_install+=(slurm-wlm)
command -v munged >/dev/null 2>&1 || need_install+=(munge)
if ((${#need_install[@]})); then
    [[ $(id -u) -eq 0 ]] || die "slurm-wlm/munge are not installed and installing needs root: run 'sudo apt-get install -y --no-install-recommends slurm-wlm munge' once, then rerun"
    command -v apt-get >/dev/null || die "slurm-wlm/munge are not installed and there is no apt-get; install Slurm 22.05+ and MUNGE by hand"
    t0=$(date +%s)
    export DEBIAN_FRONTEND=noninteractive
    # Keep the packages from starting system-wide munge/slurm services: we run private daemons only.
    created_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && created_policy=1
    fi
    trap '[[ $created_policy -eq 1 ]] && rm -f /usr/sbin/policy-rc.d' EXIT
    if ! apt-get install -y -q --no-install-recommends slurm-wlm munge </dev/null >"$P/apt-install.log" 2>&1; then
        log "apt-get install failed without a fresh package list; running apt-get update"
        apt-get update -q </dev/null >>"$P/apt-install.log" 2>&1 || die "apt-get update failed (see $P/apt-install.log)"
        apt-get install -y -q --no-install-recommends slurm-wlm munge </dev/null >>"$P/apt-install.log" 2>&1 \
            || die "apt-get install slurm-wlm munge failed (see $P/apt-install.log)"
    fi
    [[ $created_policy -eq 1 ]] && rm -f /usr/sbin/policy-rc.d
    trap - EXIT
    log "installed slurm-wlm munge in $(($(date +%s) - t0)) s"
fi

# ---- stop leftovers of an earlier run of this prefix ------------------------------------------------------------
for f in slurmd-localhost slurmctld munged; do
    if pid_alive "$P/run/$f.pid"; then kill "$(cat "$P/run/$f.pid")" 2>/dev/null || true; fi
done
for _ in $(seq 50); do
    pid_alive "$P/run/slurmd-localhost.pid" || pid_alive "$P/run/slurmctld.pid" || pid_alive "$P/run/munged.pid" || break
    sleep 0.1
done

# ---- prefix -------------------------------------------------------------------------------------------------------
mkdir -p "$P"/{etc,state,spool,log,run,munge,munge-key}
chmod 755 "$P" "$P/munge"
chmod 700 "$P/munge-key"
if [[ ! -s "$P/munge-key/munge.key" ]]; then
    head -c 1024 /dev/urandom >"$P/munge-key/munge.key"
fi
chmod 400 "$P/munge-key/munge.key"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A restart keeps the configuration unless another program took its ports meanwhile or the knobs changed.
if [[ -f "$CONF" ]] && ! same_knobs; then
    log "$CONF was written with other knobs than ($knobs); rewriting it"
    rm -f "$CONF"
fi
if [[ -f "$CONF" ]]; then
    old_port="$(sed -n 's/^SlurmctldPort=//p' "$CONF")"
    if [[ -z "$old_port" ]] || ! port_free "$old_port" || ! port_free $((old_port + 1)); then
        log "ports ${old_port:-?}/$((${old_port:-0} + 1)) of $CONF are taken now; choosing new ones"
        rm -f "$CONF"
    fi
fi
if [[ ! -f "$CONF" ]]; then
    port="${SLURM_UP_PORT:-6817}"
    while ! { port_free "$port" && port_free $((port + 1)); }; do
        port=$((port + 2))
        ((port < 65000)) || die "no free pair of TCP ports on 127.0.0.1 from ${SLURM_UP_PORT:-6817} up"
    done
    cpus="$(nproc)"
    mem="$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -1)"
    [[ -n "$mem" ]] || die "'slurmd -C' did not report RealMemory; is slurmd installed correctly?"
    user="$(id -un)"
    case "${SLURM_UP_MAX_ARRAY_SIZE:-100001}" in
        default) maxarray="# MaxArraySize: Slurm's default (1001)" ;;
        *[!0-9]*) die "SLURM_UP_MAX_ARRAY_SIZE must be a number or 'default'" ;;
        *) maxarray="MaxArraySize=${SLURM_UP_MAX_ARRAY_SIZE:-100001}" ;;
    esac
    case "${SLURM_UP_JOBCOMP:-filetxt}" in
        filetxt) jobcomp="JobCompType=jobcomp/filetxt
JobCompLoc=$P/log/jobcomp.log" ;;
        none) jobcomp="JobCompType=jobcomp/none" ;;
        *) die "SLURM_UP_JOBCOMP must be filetxt or none" ;;
    esac
    if [[ "${SLURM_UP_ENFORCE_MEMORY:-0}" == 1 ]]; then
        acct="JobAcctGatherType=jobacct_gather/linux
JobAcctGatherParams=OverMemoryKill
JobAcctGatherFrequency=task=1"
        crtype=CR_Core_Memory
    else
        acct="JobAcctGatherType=jobacct_gather/none"
        crtype=CR_Core
    fi
    cat >"$CONF.tmp" <<EOF
# Generated by scripts/slurm-up.sh for a private loopback-only test cluster under $P.
$knobs
ClusterName=localtest
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=$user
SlurmdUser=$user
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$P/munge/munge.socket
StateSaveLocation=$P/state
SlurmdSpoolDir=$P/spool
SlurmctldPidFile=$P/run/slurmctld.pid
SlurmdPidFile=$P/run/slurmd-%n.pid
SlurmctldLogFile=$P/log/slurmctld.log
SlurmdLogFile=$P/log/slurmd-%n.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
$acct
MpiDefault=none
SwitchType=switch/none
AccountingStorageType=accounting_storage/none
$jobcomp
MinJobAge=${SLURM_UP_MIN_JOB_AGE:-3600}
MaxJobCount=${SLURM_UP_MAX_JOB_COUNT:-100000}
$maxarray
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=$crtype
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
Waittime=0
NodeName=localhost NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8
EOF
    mv "$CONF.tmp" "$CONF"
    log "wrote $CONF (ports $port/$((port + 1)), CPUs=$cpus, RealMemory=$mem)"
fi

# ---- daemons ------------------------------------------------------------------------------------------------------
force=()
[[ $(id -u) -eq 0 ]] && force=(--force)
rm -f "$P/munge/munge.socket" "$P/munge/munge.socket.lock"
run_daemon munged "${force[@]}" --socket="$P/munge/munge.socket" --key-file="$P/munge-key/munge.key" \
    --pid-file="$P/run/munged.pid" --log-file="$P/log/munged.log" --seed-file="$P/munge/munge.seed" \
    || die "munged did not start (see $P/log/munged.log)"

cold=()
[[ -e "$P/state/job_state" ]] || cold=(-c)
run_daemon slurmctld "${cold[@]}" -f "$CONF" || die "slurmctld did not start (see $P/log/slurmctld.log)"
run_daemon slurmd -N localhost -f "$CONF" || die "slurmd did not start (see $P/log/slurmd-localhost.log)"

deadline=$(($(date +%s) + TIMEOUT))
state=""
while (($(date +%s) < deadline)); do
    state="$(node_state)"
    [[ "$state" == idle* ]] && finish
    [[ "$state" == mixed* || "$state" == allocated* ]] && finish
    sleep 0.2
done
log "node localhost is '${state:-unknown}' after ${TIMEOUT} s, not idle. Last log lines:"
tail -n 15 "$P/log/slurmctld.log" "$P/log/slurmd-localhost.log" >&2 2>/dev/null || true
die "Slurm under $P did not become ready; stop it with scripts/slurm-down.sh $P"
