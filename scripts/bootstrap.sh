#!/usr/bin/env bash
# Installs everything calibctl needs on Debian 12 (idempotent): C libraries and tools from apt, h5py for the Python
# that is first on PATH (used by the interoperability tests and the benchmark baselines).
# Usage: scripts/bootstrap.sh [--with-schedulers] [--with-browser] [--with-nginx]
# Exits 69 with the exact command to run when packages are missing and it cannot install them (not root).
set -euo pipefail

packages=(pkg-config libhdf5-dev hdf5-tools libsqlite3-dev sqlite3 libssl-dev)
for arg in "$@"; do
  case "$arg" in
    --with-schedulers) packages+=(slurm-wlm munge debootstrap) ;;
    --with-browser) packages+=(chromium poppler-utils) ;;
    # nginx as the caching proxy of the serve tests and the load benchmark (wrk), scripts/nginx-cache.sh
    --with-nginx) packages+=(nginx-light wrk) ;;
    *) echo "bootstrap: unknown option $arg (use --with-schedulers, --with-browser, --with-nginx)" >&2; exit 64 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=sudo; else
      echo "bootstrap: missing Debian packages: ${missing[*]}" >&2
      echo "bootstrap: run as root: apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
      exit 69
    fi
  else SUDO=""; fi
  echo "bootstrap: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >&2 || { echo "bootstrap: apt-get update failed" >&2; exit 69; }
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
    || { echo "bootstrap: apt-get install ${missing[*]} failed" >&2; exit 69; }
fi

# h5py + numpy for the Python on PATH; fall back to Debian's python3-h5py with /usr/bin/python3.
py=$(command -v python3 || true)
if [ -n "$py" ] && ! "$py" -c 'import h5py, numpy' 2>/dev/null; then
  echo "bootstrap: installing h5py for $py" >&2
  "$py" -m pip install -q h5py numpy >&2 2>/dev/null || true
fi
if [ -z "$py" ] || ! "$py" -c 'import h5py, numpy' 2>/dev/null; then
  if ! /usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null; then
    [ "$(id -u)" -eq 0 ] || { echo "bootstrap: need python3-h5py: apt-get install python3-h5py" >&2; exit 69; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-h5py python3-numpy >&2
  fi
  py=/usr/bin/python3
fi
command -v swift >/dev/null || { echo "bootstrap: swift not found on PATH: install Swift 6 (swift.org) first" >&2; exit 69; }
pkg-config --exists hdf5 || { echo "bootstrap: pkg-config cannot find hdf5: apt-get install libhdf5-dev pkg-config" >&2; exit 69; }
echo "$py"
