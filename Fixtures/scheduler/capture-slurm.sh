#!/usr/bin/env bash
# Captures real Slurm outputs for the parser tests (Fixtures/scheduler/slurm/*.txt).
# Usage: Fixtures/scheduler/capture-slurm.sh PREFIX OUTDIR
#   PREFIX: a FRESH Slurm prefix (scripts/slurm-up.sh PREFIX is run here); OUTDIR: where the .txt files go.
# Takes ~2.5 minutes (the time-limit scenario needs Slurm's 1-minute minimum limit plus its 30 s check period).
set -euo pipefail
P="$1"; OUT="$(mkdir -p "$2" && cd "$2" && pwd -P)"
HERE="$(cd "$(dirname "$0")/../.." && pwd -P)"
eval "$("$HERE/scripts/slurm-up.sh" "$P")"
unset SQUEUE_FORMAT SQUEUE_FORMAT2 SLURM_TIME_FORMAT
W="$(mktemp -d /tmp/slurm-capture.XXXXXX)"
cd "$W"
# The exact squeue format the adapter uses (SlurmOutputParser.squeueFormat).
FMT='JobArrayID:|,JobID:|,ArrayJobID:|,ArrayTaskID:|,State:|,exit_code:|,StartTime:|,EndTime:|,Name:|,Comment:|,Reason:|'
sq() { squeue -h -t all -r -O "$FMT" "$@"; }
show() { scontrol show job -o "$1"; }

sbatch --version >"$OUT/version.txt"

# --- phase 1: every quick outcome, plus a running, a cancelled, held and pending job and a time limit -------------
ok=$(sbatch --parsable --job-name=cap-success -o ok.out --comment=set-ok --wrap 'true')
echo "$ok" >"$OUT/sbatch-parsable.txt"
e3=$(sbatch --parsable --job-name=cap-exit3 -o e3.out --wrap 'exit 3')
k9=$(sbatch --parsable --job-name=cap-kill9 -o k9.out --wrap 'kill -9 $$')
lf=$(sbatch --parsable --job-name=cap-launch-failure -o /nonexistent-dir/lf.out --wrap 'true')
cat >array.sh <<'EOF'
#!/bin/sh
case "$SLURM_ARRAY_TASK_ID" in
0) exit 0 ;;
1) exit 3 ;;
2) kill -9 $$ ;;
*) sleep 300 ;;
esac
EOF
arr=$(sbatch --parsable --array=0-3 --job-name=cap-array --comment=set-array -o 'arr_%a.out' array.sh)
echo "$arr" >"$OUT/sbatch-parsable-array.txt"
to=$(sbatch --parsable --job-name=cap-timeout --time=1 -o to.out --wrap 'sleep 300')
cx=$(sbatch --parsable --job-name=cap-cancelled -o cx.out --wrap 'sleep 300')
run=$(sbatch --parsable --job-name=cap-running -o run.out --wrap 'sleep 300')
held=$(sbatch --parsable --hold --job-name=cap-held -o held.out --wrap 'true')
pend=$(sbatch --parsable --begin=now+1hour --job-name=cap-pending -o pend.out --wrap 'true')
harr=$(sbatch --parsable --hold --array=0-2 --job-name=cap-held-array -o 'harr_%a.out' --wrap 'true')
sleep 3
sq >"$OUT/squeue-live.txt"
show "$run" >"$OUT/scontrol-running.txt"
show "$held" >"$OUT/scontrol-held.txt"
show "$pend" >"$OUT/scontrol-pending.txt"
show "${arr}_3" >"$OUT/scontrol-array-task-running.txt"
scancel "$cx"
# A held array with one task released: scontrol prints the still-unsplit tasks as one record (ArrayTaskId=0,2-4).
ua=$(sbatch --parsable --hold --array=0-4 --job-name=cap-held-unsplit -o /dev/null --wrap 'true')
scontrol release "${ua}_1"
sleep 2
show "$ua" >"$OUT/scontrol-held-array-unsplit.txt"
show "$cx" >"$OUT/scontrol-cancelled.txt"
show "$ok" >"$OUT/scontrol-success.txt"
show "$e3" >"$OUT/scontrol-exit3.txt"
show "$k9" >"$OUT/scontrol-kill9.txt"
show "$lf" >"$OUT/scontrol-launch-failure.txt"
show "${arr}_1" >"$OUT/scontrol-array-task-exit3.txt"
echo "waiting for the time limit of job $to (60-100 s)" >&2
for _ in $(seq 150); do
    [[ "$(squeue -h -t all -j "$to" -o %T)" == TIMEOUT ]] && break
    sleep 1
done
show "$to" >"$OUT/scontrol-timeout.txt"
scancel "$run" "${arr}_3"
sleep 2

# --- phase 2: node failure (the node is set DOWN under a running job that may not be requeued) --------------------
nf=$(sbatch --parsable --no-requeue --job-name=cap-node-fail -o nf.out --wrap 'sleep 300')
sleep 2
scontrol update NodeName=localhost State=DOWN Reason=capture-node-failure
sleep 2
show "$nf" >"$OUT/scontrol-node-fail.txt"
# ReturnToService=2 usually brings the node back by itself when slurmd re-registers; RESUME in case it did not.
scontrol update NodeName=localhost State=RESUME 2>/dev/null || true
for _ in $(seq 100); do [[ "$(sinfo -h -N -n localhost -o %T)" == idle* ]] && break; sleep 0.2; done
sq >"$OUT/squeue-final.txt"
sq -n cap-array >"$OUT/squeue-by-name.txt"
cp "$P/log/jobcomp.log" "$OUT/jobcomp.txt"

# --- phase 3: after the controller forgot every job ----------------------------------------------------------------
"$HERE/scripts/slurm-restart-controller.sh" "$P" --forget-jobs
sq >"$OUT/squeue-after-forget.txt"
{ scontrol show job -o "$ok" 2>&1 || echo "rc=$?"; } >"$OUT/scontrol-invalid-id.txt"
{ scancel 99999 2>&1; echo "rc=$?"; } >"$OUT/scancel-unknown.txt"
{ sbatch --parsable --wrap true --mem=99999999 2>&1 || echo "rc=$?"; } >"$OUT/sbatch-refused.txt"
cp "$P/log/jobcomp.log" "$OUT/jobcomp.txt"
rm -rf "$W"
echo "captured into $OUT" >&2
