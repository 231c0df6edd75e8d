#!/usr/bin/env bash
# The test command (README command 2; CI runs it through .ci/run): installs what the tests need, starts a real
# Slurm and a real HTCondor pool on this machine (loopback only), builds, runs every test, stops the schedulers.
# Options via environment: CALIBCTL_SKIP_SCHEDULERS=1 skips starting them (their tests then report a labelled skip);
# SWIFT_TEST_ARGS adds arguments to `swift test` (e.g. "--filter CalibStoreTests").
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

start=$(date +%s)
step() { printf '[test %4ds] %s\n' "$(( $(date +%s) - start ))" "$*"; }

step "installing packages"
boot_args=(--with-browser --with-nginx)
[ "${CALIBCTL_SKIP_SCHEDULERS:-0}" = 1 ] || boot_args+=(--with-schedulers)
python=$(scripts/bootstrap.sh "${boot_args[@]}")
export CALIBCTL_PYTHON="$python"

run_dir=${CALIBCTL_TEST_RUN_DIR:-/tmp/calibctl-test-run}
mkdir -p "$run_dir"
cleanup() {
  [ -n "${slurm_prefix:-}" ] && scripts/slurm-down.sh "$slurm_prefix" >/dev/null 2>&1 || true
  [ -n "${condor_prefix:-}" ] && scripts/condor-down.sh "$condor_prefix" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# The schedulers start in the background while the package builds (HTCondor's chroot takes 10-200 s).
sched_pids=()
if [ "${CALIBCTL_SKIP_SCHEDULERS:-0}" != 1 ]; then
  step "starting Slurm and HTCondor in the background (logs in $run_dir)"
  slurm_prefix="$run_dir/slurm"; condor_prefix="$run_dir/condor"
  # Both enforce memory as farms do (Slurm kills a job over --mem; HTCondor holds a job over request_memory), so the
  # out-of-memory paths are tested for real and every test job must request the memory it needs. A prefix written
  # before this setting keeps its old configuration: remove it (scripts/*-down.sh PREFIX --purge) to rewrite it.
  SLURM_UP_ENFORCE_MEMORY=1 scripts/slurm-up.sh "$slurm_prefix" > "$run_dir/slurm-up.log" 2>&1 & sched_pids+=($!)
  CONDOR_UP_ENFORCE_MEMORY=1 scripts/condor-up.sh "$condor_prefix" > "$run_dir/condor-up.log" 2>&1 & sched_pids+=($!)
fi

step "building"
if ! swift build --build-tests > "$run_dir/build.log" 2>&1; then
  grep -E 'error|warning:' "$run_dir/build.log" | head -50; tail -20 "$run_dir/build.log"
  echo "test: build failed (full log: $run_dir/build.log)" >&2; exit 1
fi
grep -E 'warning:' "$run_dir/build.log" | grep -v 'Source files for target' | head -20 || true

# The worker-node binary (docs/runner.md, "Worker nodes"): the release build, Swift runtime linked in statically. The
# Slurm and HTCondor tests run exactly this file on their workers (CALIBCTL_TEST_WORKER); built once, here.
step "building the worker-node binary (swift build -c release --product calibctl)"
if ! swift build -c release --product calibctl > "$run_dir/build-release.log" 2>&1; then
  grep -E 'error|warning:' "$run_dir/build-release.log" | head -50; tail -20 "$run_dir/build-release.log"
  echo "test: release build failed (full log: $run_dir/build-release.log)" >&2; exit 1
fi
grep -E 'warning:' "$run_dir/build-release.log" | grep -v 'Source files for target' | head -20 || true
CALIBCTL_TEST_WORKER="$(swift build -c release --show-bin-path)/calibctl"
export CALIBCTL_TEST_WORKER

if ((${#sched_pids[@]})); then
  step "waiting for the schedulers"
  for i in 0 1; do
    log=$([ "$i" = 0 ] && echo "$run_dir/slurm-up.log" || echo "$run_dir/condor-up.log")
    if ! wait "${sched_pids[$i]}"; then
      cat "$log" >&2
      echo "test: a scheduler did not start ($log); its tests cannot run" >&2; exit 1
    fi
    tail -1 "$log"
  done
  export CALIBCTL_TEST_SLURM="$slurm_prefix" CALIBCTL_TEST_CONDOR="$condor_prefix"
fi

# The Python reader (python/, README): installed from the checkout and tested against this calibctl first, so the
# closing line stays swift test's.
step "testing the Python reader (pip install ./python, pytest)"
"$python" -m pip install -q ./python pytest >/dev/null 2>"$run_dir/pip.log" \
  || { cat "$run_dir/pip.log" >&2; echo "test: pip install ./python failed" >&2; exit 1; }
if ! CALIBCTL_BIN="$(swift build --show-bin-path)/calibctl" "$python" -m pytest -q -p no:cacheprovider python/tests \
     > "$run_dir/pytest.log" 2>&1; then
  cat "$run_dir/pytest.log"; echo "test: the Python reader's tests failed ($run_dir/pytest.log)" >&2; exit 1
fi
tail -1 "$run_dir/pytest.log"

step "running tests"
set +e
# shellcheck disable=SC2086
swift test --skip-build ${SWIFT_TEST_ARGS:-} 2>&1 | tee "$run_dir/swift-test.log" \
  | awk '!/^(✔|◇|↳) / || /Test run/ { print; fflush() }'
status=${PIPESTATUS[0]}
set -e
step "done (swift test exit $status)"
exit "$status"
