#!/usr/bin/env bash
# Stops the HTCondor personal pool started by scripts/condor-up.sh PREFIX: removes every job still queued, sends
# SIGTERM to condor_master (it stops its daemons and their jobs), waits, then unmounts the shared directory and proc.
#
# Usage: scripts/condor-down.sh PREFIX [--purge | --keep-jobs]
#   --purge      also deletes PREFIX, chroot included
#   --keep-jobs  leaves queued jobs in the schedd's queue (as a crash would); a later condor-up.sh runs them again
# Idempotent: nothing running is not an error. Exit 0 ok, 1 something would not stop or unmount, 64 usage, 77 not root.
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -ge 1 && $# -le 2 && -n "$1" && "$1" != -* ]] || { echo "usage: $0 PREFIX [--purge | --keep-jobs]" >&2; exit 64; }
[[ $(id -u) -eq 0 ]] || { log "error: must run as root (unmounting needs it)"; exit 77; }
P="$1"
purge=0 keep=0
case "${2:-}" in
"") ;; --purge) purge=1 ;; --keep-jobs) keep=1 ;;
*) echo "usage: $0 PREFIX [--purge | --keep-jobs]" >&2; exit 64 ;;
esac
if [[ ! -d "$P" ]]; then log "no prefix $P: nothing to stop"; exit 0; fi
P="$(cd "$P" && pwd -P)"
ROOT="$P/root"
pidf="$ROOT/run/condor/condor_master.pid"
rc=0

# True when PID runs (a zombie waiting to be reaped counts as stopped).
alive() { kill -0 "$1" 2>/dev/null && [[ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]]; }
if [[ -s "$pidf" ]] && alive "$(cat "$pidf")"; then
    pid="$(cat "$pidf")"
    # Remove leftover jobs so a restart of this pool does not run them again.
    ((keep)) || timeout 10 chroot "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin condor_rm -all -forcex >/dev/null 2>&1 || true
    ((keep)) || timeout 10 chroot "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin condor_rm -all >/dev/null 2>&1 || true
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 150); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
        log "condor_master (pid $pid) still running after 15 s; sending SIGQUIT then SIGKILL"
        kill -QUIT "$pid" 2>/dev/null; sleep 2
        kill -KILL "$pid" 2>/dev/null; sleep 0.5
        alive "$pid" && { log "condor_master (pid $pid) would not stop"; rc=1; }
    fi
    rm -f "$pidf"
fi

# Daemons the master left behind (their /proc/PID/root is the chroot): stop them too, by pid.
if [[ -d "$ROOT" ]]; then
    for d in /proc/[0-9]*; do
        [[ "$(readlink "$d/root" 2>/dev/null)" == "$ROOT" ]] || continue
        p="${d#/proc/}"
        log "stopping leftover process $p ($(tr '\0' ' ' <"$d/cmdline" 2>/dev/null | cut -c1-60))"
        kill -KILL "$p" 2>/dev/null || true
    done
fi

# Unmount everything under the chroot, deepest first.
awk -v r="$ROOT/" 'index($2, r) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || { log "cannot unmount $m"; exit 1; }
done || rc=1

if ((purge)) && ((rc == 0)); then
    if awk -v r="$ROOT/" 'index($2, r) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
        log "something is still mounted under $ROOT: not deleting $P"; rc=1
    else
        rm -rf --one-file-system "$P" && log "stopped and removed $P"
    fi
else
    ((rc == 0)) && log "stopped HTCondor under $P"
fi
exit $rc
