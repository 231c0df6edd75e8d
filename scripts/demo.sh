#!/usr/bin/env bash
# The main job (README command 1): installs what calibctl needs, builds it (release), and runs an end-to-end
# calibration on the embedded defaults (local scheduler, a store in a local directory) in ./demo-workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
t0=$(date +%s)
say() { printf '[demo %4ds] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }

say "installing packages (scripts/bootstrap.sh)"
scripts/bootstrap.sh >/dev/null
say "building calibctl (release)"
swift build -c release 2>&1 | grep -E 'error|warning|Compiling calibctl|Build complete' || true
bin="$(swift build -c release --show-bin-path)/calibctl"
[ -x "$bin" ] || { echo "demo: build failed" >&2; exit 1; }

work=${CALIBCTL_DEMO_DIR:-$root/demo-workspace}
rm -rf "$work.previous"; [ -d "$work" ] && mv "$work" "$work.previous"
mkdir -p "$work"
export CALIBCTL_HOME="$work/home" CALIBCTL_STORE="$work/store"

say "writing a float32 module-sized array (160 x 416) with attributes to HDF5, indexed in SQLite"
"$bin" array write "$work/module.h5" --shape 160x416 --attr run=5000 --attr detector=sipixel --index "$work/arrays.db"
"$bin" array read "$work/module.h5" --index "$work/arrays.db"
h5dump -H "$work/module.h5" | head -20
say "done: $work/module.h5 (h5dump -H shows it)"
