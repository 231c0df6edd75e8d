#!/usr/bin/env bash
# The main job (README command 1): installs what calibctl needs, builds it (release), and runs an end-to-end pixel
# gain calibration on the embedded defaults (local scheduler, a store in a local directory) in ./demo-workspace:
# simulate a gain scan of 3 CMS FEDs of real size -> VCal tag in the store -> create -> submit -> status --watch ->
# merge -> summary (HTML) -> sign-off -> payload (offline + HLT tags) -> get it back; then an LCLS dark calibration
# (Jungfrau, 3 gain modes) that runs from `calibctl tick` alone, as cron would, up to the sign-off it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
t0=$(date +%s)
say() { printf '\n[demo %4ds] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }

say "installing packages (scripts/bootstrap.sh)"
scripts/bootstrap.sh >/dev/null
say "building calibctl (release; the first build takes a few minutes)"
swift build -c release 2>&1 | grep -E 'error|warning:|Compiling|Build complete' | grep -v '^\[' || true
bin="$(swift build -c release --show-bin-path)/calibctl"
[ -x "$bin" ] || { echo "demo: build failed" >&2; exit 1; }
calibctl() { "$bin" "$@"; }

work=${CALIBCTL_DEMO_DIR:-$root/demo-workspace}
if [ -d "$work" ]; then rm -rf "$work.previous"; mv "$work" "$work.previous"; fi
mkdir -p "$work"
export CALIBCTL_HOME="$work/home" CALIBCTL_STORE="$work/store"
run=5000
feds=${CALIBCTL_DEMO_FEDS:-1200,1201,1296}

say "simulating the gain scan of run $run: FEDs $feds at CMS size (15/15/24 modules of 160 x 416 pixels, 29 VCal points x 5 injections)"
calibctl simulate gain -o "$work/scans/$run" --feds "$feds" --run $run --seed 2026

say "preparing the store: detector sipixel and the VCal tag"
calibctl store init
calibctl store detector add sipixel --kind sipixel --comment "CMS Phase-1 pixel detector"
calibctl vcal put VCal_2026_v1 --runs 1- --correction 1.08

say "create, submit, and follow the per-FED fit jobs on the local scheduler"
calibctl create $run -t VCal_2026_v1 -i "$work/scans/$run"
calibctl submit $run
calibctl status $run --watch --interval 1

say "merge the per-FED outputs (verified) and write the summary report"
calibctl merge $run
calibctl summary $run

say "the campaign: every step with its state (validation waits for a person's sign-off)"
calibctl checklist show --campaign pixelgain-$run

say "sign-off by the calibration contact, then the offline and HLT payloads into the store"
calibctl step approve pixelgain-$run validation --note "demo: summary plots reviewed"
calibctl payload $run 2026 1 --comment "calibctl demo"

say "reading the offline payload back from the store for run $((run + 1))"
calibctl get sipixel gain_offline --run $((run + 1)) --tag SiPixelGainCalibration_2026_v1_offline -o "$work/offline-$((run + 1)).h5" >/dev/null
h5dump -H "$work/offline-$((run + 1)).h5" | grep -E 'DATASET|DATASPACE  SIMPLE' | head -4
calibctl report --campaign pixelgain-$run

say "LCLS dark calibration from cron: a shipped checklist, driven by nothing but tick (and one sign-off)"
calibctl simulate dark -o "$work/darks/dark.h5" --shape 8x512x1024 --frames 300 --gain-modes 3 --seed 5
calibctl store detector add jungfrau --kind jungfrau --comment "Jungfrau 4M"
calibctl campaign create dark-100 --checklist lcls-dark --runs 100-110 --param input="$work/darks"
tick_until() {   # tick (as cron would) until the step reaches the state
  for _ in $(seq 1 300); do
    calibctl tick | grep -v '^tick:' || true
    calibctl checklist show --campaign dark-100 | awk -v s="$1" '$1 == s' | grep -qw -- "$2" && return 0
    sleep 1
  done
  echo "demo: $1 did not reach $2" >&2; return 1
}
tick_until dark-runs awaiting-validation
calibctl step approve dark-100 dark-runs --note "demo: dark runs logged"
tick_until lcls-export done
calibctl checklist show --campaign dark-100
calibctl report --campaign dark-100
calibctl get jungfrau pedestals --run 105 -o "$work/pedestals-105.h5"

say "done in $(( $(date +%s) - t0 )) s"
echo "summary report: $CALIBCTL_HOME/campaigns/pixelgain-$run/validation/i1/summary.html"
echo "merged fit:     $CALIBCTL_HOME/runs/$run/output/gain_run$run.h5"
echo "store:          $CALIBCTL_STORE (calibctl store list iovs)"
echo "dark constants: $work/pedestals-105.h5; LCLS calib tree under $CALIBCTL_HOME/campaigns/dark-100/lcls-export/i1/calib"
