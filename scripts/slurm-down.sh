#!/usr/bin/env bash
# Stops the private Slurm started by scripts/slurm-up.sh PREFIX: cancels every live job first (a killed slurmd would
# leave slurmstepd and the job running), then stops slurmd, slurmctld and munged by their pid files.
#
# Usage: scripts/slurm-down.sh PREFIX [--purge]     (--purge also deletes PREFIX)
# Idempotent: nothing running is not an error. Exit 0 ok, 1 a daemon would not stop, 64 usage.
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -ge 1 && -n "$1" && "$1" != -* ]] || { echo "usage: $0 PREFIX [--purge]" >&2; exit 64; }
P="$1"
purge=0
[[ "${2:-}" == "--purge" ]] && purge=1
if [[ ! -d "$P" ]]; then log "no prefix $P: nothing to stop"; exit 0; fi
P="$(cd "$P" && pwd -P)"
export SLURM_CONF="$P/etc/slurm.conf"
unset SQUEUE_FORMAT SQUEUE_FORMAT2 SLURM_TIME_FORMAT

# True when PID runs (a zombie waiting to be reaped counts as stopped).
alive() { kill -0 "$1" 2>/dev/null && [[ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]]; }
pid_alive() { [[ -s "$1" ]] && alive "$(cat "$1")"; }

if [[ -f "$SLURM_CONF" ]] && pid_alive "$P/run/slurmctld.pid"; then
    ids="$(timeout 10 squeue -h -t PENDING,RUNNING,SUSPENDED,CONFIGURING,COMPLETING -o %A 2>/dev/null | sort -u | tr '\n' ' ')"
    if [[ -n "${ids// /}" ]]; then
        log "cancelling live jobs: $ids"
        # shellcheck disable=SC2086
        timeout 10 scancel $ids 2>/dev/null || true
        for _ in $(seq 50); do
            left="$(timeout 10 squeue -h -t RUNNING,COMPLETING,CONFIGURING -o %A 2>/dev/null)"
            [[ -z "$left" ]] && break
            sleep 0.2
        done
    fi
fi

rc=0
for name in slurmd-localhost slurmctld munged; do
    f="$P/run/$name.pid"
    if pid_alive "$f"; then
        pid="$(cat "$f")"
        kill "$pid" 2>/dev/null
        for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
        if alive "$pid"; then
            log "$name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
            kill -9 "$pid" 2>/dev/null
            sleep 0.2
            alive "$pid" && { log "$name (pid $pid) would not stop"; rc=1; }
        fi
    fi
    rm -f "$f"
done
if ((purge)) && ((rc == 0)); then rm -rf "$P"; log "stopped and removed $P"; else log "stopped Slurm under $P"; fi
exit $rc
