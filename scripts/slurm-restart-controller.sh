#!/usr/bin/env bash
# Restarts slurmctld of the private Slurm under PREFIX (started by scripts/slurm-up.sh).
#
# Usage: scripts/slurm-restart-controller.sh PREFIX [--forget-jobs]
#
# Without options: a warm restart (job records kept), as after a controller crash.
# --forget-jobs: a cold start (`slurmctld -c`) that drops every job record the controller holds, so squeue and
#   `scontrol show job` no longer know them; only jobs that had finished are still in the jobcomp file. This is how the
#   tests make a job vanish for real (as a site purging its controller state would). Job ids stay unique: FirstJobId is
#   set past every id seen so far, so a new job never reuses an id that the jobcomp file already records.
# Exit 0 ok, 1 failure, 64 usage.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -ge 1 && -n "$1" && "$1" != -* ]] || { echo "usage: $0 PREFIX [--forget-jobs]" >&2; exit 64; }
forget=0
case "${2:-}" in "") ;; --forget-jobs) forget=1 ;; *) echo "usage: $0 PREFIX [--forget-jobs]" >&2; exit 64 ;; esac
P="$(cd "$1" && pwd -P)" || die "no prefix $1"
CONF="$P/etc/slurm.conf"
[[ -f "$CONF" ]] || die "no $CONF: start Slurm with scripts/slurm-up.sh $1 first"
export SLURM_CONF="$CONF"
unset SQUEUE_FORMAT SQUEUE_FORMAT2 SLURM_TIME_FORMAT
pidf="$P/run/slurmctld.pid"

if ((forget)); then
    max=0
    for id in $(timeout 10 squeue -h -t all -r -o %A 2>/dev/null) \
        $(sed -n 's/.*JobId=\([0-9]*\).*/\1/p' "$P/log/jobcomp.log" 2>/dev/null); do
        ((id > max)) && max=$id
    done
    sed -i '/^FirstJobId=/d' "$CONF"
    echo "FirstJobId=$((max + 1))" >>"$CONF"
fi

# True when PID runs (a zombie waiting to be reaped counts as stopped).
alive() { kill -0 "$1" 2>/dev/null && [[ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]]; }
if [[ -s "$pidf" ]] && alive "$(cat "$pidf")"; then
    pid="$(cat "$pidf")"
    kill "$pid"
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && { kill -9 "$pid"; sleep 0.2; }
fi
cold=()
((forget)) && cold=(-c)
run_daemon slurmctld "${cold[@]}" -f "$CONF" || die "slurmctld did not start (see $P/log/slurmctld.log)"
for _ in $(seq 150); do
    state="$(timeout 10 sinfo -h -N -n localhost -o %T 2>/dev/null | head -1 || true)"
    if [[ "$state" == idle* || "$state" == mixed* || "$state" == allocated* ]]; then
        log "slurmctld restarted ($([[ $forget -eq 1 ]] && echo "job records dropped" || echo "job records kept"); node $state)"
        exit 0
    fi
    sleep 0.2
done
die "slurmctld restarted but node localhost is not idle (see $P/log/slurmctld.log)"
