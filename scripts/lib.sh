# Shell helpers shared by scripts/*.sh. Source it right after `set -euo pipefail`:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Messages are prefixed with the calling script's name (slurm-up, condor-up, ...).

SCRIPT_NAME="$(basename "$0" .sh)"

log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }
die() { printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2; exit 1; }

# Starts a daemon with only stdin/stdout/stderr open (to /dev/null): inherited descriptors (a caller's pipes, the
# process-exit socket of Foundation's Process) would otherwise stay open in the daemon and make the caller wait forever.
run_daemon() {
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            if ((fd > 2)); then eval "exec ${fd}>&-" 2>/dev/null || true; fi
        done
        exec "$@" </dev/null >/dev/null 2>&1
    )
}
