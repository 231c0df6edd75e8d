#!/usr/bin/env bash
# Captures real HTCondor outputs for the parser tests (Fixtures/scheduler/htcondor/*.txt).
# Usage: Fixtures/scheduler/capture-htcondor.sh PREFIX OUTDIR     (as root)
#   PREFIX: an HTCondor prefix (scripts/condor-up.sh PREFIX is run here); OUTDIR: where the .txt files go.
# Takes ~1 minute.
set -euo pipefail
P="$1"; OUT="$(mkdir -p "$2" && cd "$2" && pwd -P)"
HERE="$(cd "$(dirname "$0")/../.." && pwd -P)"
eval "$("$HERE/scripts/condor-up.sh" "$P")"
W="$CALIBCTL_CONDOR_SHARED/capture-$$"
rm -rf "$W"; mkdir -p "$W"
chown "$CALIBCTL_CONDOR_USER:" "$W"
cd "$W"
as_user() { chroot --userspec="$(id -u "$CALIBCTL_CONDOR_USER"):$(id -g "$CALIBCTL_CONDOR_USER")" / "$@"; }
# The exact attribute list the adapter asks for (HTCondorOutputParser.attributes), tab-separated, free text last.
ATTRS=(ClusterId ProcId CalibShard JobStatus ExitCode ExitBySignal ExitSignal HoldReasonCode HoldReasonSubCode
       LastHoldReasonCode JobCurrentStartDate CompletionDate EnteredCurrentStatus RemoteUserCpu RemoteSysCpu MemoryUsage
       HoldReason RemoveReason)

condor_q -version >"$OUT/version.txt"

cat >shard.sh <<'EOF'
#!/bin/sh
case "$1" in
0) exit 0 ;;
1) exit 3 ;;
2) kill -9 $$ ;;
3) sleep 300 ;;
4) sleep 300 ;;
*) sleep 300 ;;
esac
EOF
chmod 755 shard.sh
chown "$CALIBCTL_CONDOR_USER:" shard.sh
# One cluster: shards 0..4 (success, exit 3, kill -9, running then cancelled, time limit), shard 5 stays idle.
cat >cluster.sub <<EOF
universe = vanilla
executable = $W/shard.sh
arguments = \$(Shard)
output = $W/shard-\$(Shard).out
error = $W/shard-\$(Shard).err
log = $W/cluster.log
request_memory = \$(Mem)
allowed_job_duration = \$(Secs)
requirements = \$(Req)
should_transfer_files = NO
getenv = false
JobBatchName = cap-cluster
+CalibJobSet = "set-capture"
+CalibShard = \$(Shard)
queue Shard, Mem, Secs, Req from (
0, 64, 3600, True
1, 64, 3600, True
2, 64, 3600, True
3, 64, 3600, True
4, 64, 5, True
5, 64, 3600, False
)
EOF
condor_submit -terse cluster.sub >"$OUT/condor_submit-terse.txt"
cluster="$(cut -d. -f1 "$OUT/condor_submit-terse.txt")"

# Missing executable: the job goes on hold.
cat >missing.sub <<EOF
executable = $W/no-such-program
output = $W/missing.out
error = $W/missing.err
log = $W/missing.log
should_transfer_files = NO
JobBatchName = cap-missing
+CalibJobSet = "set-missing"
+CalibShard = 0
queue
EOF
{ condor_submit -terse missing.sub 2>&1 || echo "rc=$?"; } >"$OUT/condor_submit-missing-executable.txt"

# Missing executable that condor_submit does not check (transfer_executable = false): held when it should start.
cat >missing-run.sub <<EOF
executable = $W/deleted-program
transfer_executable = false
output = $W/missing-run.out
error = $W/missing-run.err
log = $W/missing-run.log
should_transfer_files = NO
JobBatchName = cap-missing-run
+CalibJobSet = "set-missing-run"
+CalibShard = 0
queue
EOF
condor_submit -terse missing-run.sub >"$OUT/condor_submit-missing-run.txt"

# Unopenable output file: held when it should start.
cat >badout.sub <<EOF
executable = /bin/true
output = /nonexistent-dir/badout.out
error = $W/badout.err
log = $W/badout.log
should_transfer_files = NO
JobBatchName = cap-badout
+CalibJobSet = "set-badout"
+CalibShard = 0
queue
EOF
condor_submit -terse badout.sub >"$OUT/condor_submit-badout.txt"

# A running job put on hold by condor_hold.
cat >hold.sub <<EOF
executable = /bin/sleep
arguments = 300
output = $W/hold.out
error = $W/hold.err
log = $W/hold.log
should_transfer_files = NO
JobBatchName = cap-hold
+CalibJobSet = "set-hold"
+CalibShard = 0
queue
EOF
hold="$(condor_submit -terse hold.sub | cut -d. -f1)"

sleep 8
condor_q -constraint 'CalibJobSet == "set-capture"' -af:jt "${ATTRS[@]}" >"$OUT/condor_q-live.txt"
condor_hold "$hold" >"$OUT/condor_hold.txt" 2>&1
condor_rm "$cluster.3" >"$OUT/condor_rm.txt" 2>&1
echo "waiting for the allowed_job_duration hold of $cluster.4" >&2
for _ in $(seq 60); do
    [[ "$(condor_q "$cluster.4" -af JobStatus)" == 5 ]] && break
    sleep 1
done
sleep 3
condor_q -af:jt "${ATTRS[@]}" >"$OUT/condor_q-all.txt"
condor_q -af:jt "${ATTRS[@]}" -constraint 'CalibJobSet == "set-missing-run" || CalibJobSet == "set-badout"' >"$OUT/condor_q-held-at-start.txt"
condor_q -constraint 'CalibJobSet == "set-capture"' -af:jt "${ATTRS[@]}" >"$OUT/condor_q-cluster.txt"
condor_q -constraint 'CalibJobSet == "no-such-set"' -af:jt "${ATTRS[@]}" >"$OUT/condor_q-empty.txt"
condor_q -constraint 'JobBatchName == "cap-cluster"' -af:jt ClusterId ProcId CalibShard >"$OUT/condor_q-by-batch-name.txt"
condor_history -constraint 'CalibJobSet == "set-capture"' -af:jt "${ATTRS[@]}" >"$OUT/condor_history-cluster.txt"
# Remove what is left; -forcex then drops the removed jobs from the queue at once.
condor_rm -constraint 'CalibJobSet =!= undefined' >/dev/null 2>&1 || true
sleep 2
condor_q -constraint 'CalibJobSet == "set-capture"' -af:jt "${ATTRS[@]}" >"$OUT/condor_q-after-rm.txt"
condor_rm -forcex -constraint 'CalibJobSet =!= undefined' >/dev/null 2>&1 || true
sleep 2
condor_history -constraint 'CalibJobSet == "set-capture" || CalibJobSet == "set-hold" || CalibJobSet == "set-missing-run" || CalibJobSet == "set-badout"' \
    -af:jt "${ATTRS[@]}" >"$OUT/condor_history-final.txt"
{ condor_q 99999.0 -af:jt "${ATTRS[@]}" 2>&1 && echo "rc=0" || echo "rc=$?"; } >"$OUT/condor_q-unknown.txt"
{ condor_history 99999.0 -af:jt "${ATTRS[@]}" 2>&1 && echo "rc=0" || echo "rc=$?"; } >"$OUT/condor_history-unknown.txt"
{ condor_rm 99999.0 2>&1 && echo "rc=0" || echo "rc=$?"; } >"$OUT/condor_rm-unknown.txt"
cp cluster.log "$OUT/cluster-event-log.txt"
cp hold.log "$OUT/hold-event-log.txt"
cp missing-run.log "$OUT/missing-run-event-log.txt"
cp badout.log "$OUT/badout-event-log.txt"
cp cluster.sub "$OUT/cluster-submit-file.txt"
cd /; rm -rf "$W"
echo "captured into $OUT" >&2
