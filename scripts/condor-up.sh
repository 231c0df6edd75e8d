#!/usr/bin/env bash
# Starts a private, loopback-only HTCondor personal pool (Debian trixie `minicondor`, HTCondor 23.x) in a chroot under
# PREFIX. Debian 12 does not package HTCondor, so the pool lives in a `debootstrap --variant=minbase trixie` chroot,
# which also gets Debian 12's HDF5 runtime package so that calibctl's worker-node binary runs there as on a Debian 12
# worker node (below, "the execute side").
#
# Usage: scripts/condor-up.sh PREFIX            (as root)
#
# Layout:  PREFIX/root    the chroot (reused when present: a restart takes ~3 s)
#          PREFIX/shared  the shared work directory, bind-mounted at the SAME path inside the chroot and owned by the
#                         test user: submit files, executables, logs and outputs must live under it
#          PREFIX/bin     client wrappers condor_submit, condor_q, condor_history, condor_rm, condor_status,
#                         condor_hold, condor_release, condor_wait: each runs the real tool inside the chroot as the
#                         test user, in the caller's current directory
#          PREFIX/env.sh  exports PATH (wrappers first), CALIBCTL_CONDOR_BIN, CALIBCTL_CONDOR_SHARED, CALIBCTL_CONDOR_USER
# HTCondor refuses jobs owned by root, so the pool's jobs run as an ordinary user (default `calibtest`) that has the same
# uid/gid on the host and in the chroot (created when missing).
# Environment: CONDOR_TEST_USER (default calibtest), CONDOR_DEBIAN_MIRROR (default: the Debian mirror apt already uses),
#              CONDOR_UP_TIMEOUT (seconds to wait for an Unclaimed slot, default 60),
#              CONDOR_UP_PORT (first collector port to try, default 9618),
#              CONDOR_UP_ENFORCE_MEMORY (1: the farm's memory policy `use POLICY : HOLD_IF_MEMORY_EXCEEDED`, memory
#              measured every 2 s, so a job using more than request_memory is held, code 21 subcode 102),
#              CONDOR_CHROOT_CACHE (a tar of the finished chroot, written after the first build and unpacked instead of
#              debootstrap + apt on later builds; default /var/cache/calibctl/condor-trixie-minicondor.tar; empty: off).
# Stop with scripts/condor-down.sh PREFIX. Diagnostics go to stderr; exit 0 ok, 1 failure, 64 usage, 77 not root.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
elapsed() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}'; }

[[ $# -eq 1 && -n "$1" && "$1" != -* ]] || { echo "usage: $0 PREFIX" >&2; exit 64; }
[[ $(id -u) -eq 0 ]] || { printf 'condor-up: error: must run as root (debootstrap, chroot and mounts need it)\n' >&2; exit 77; }
mkdir -p "$1" || die "cannot create prefix directory $1"
P="$(cd "$1" && pwd -P)"
ROOT="$P/root"
SHARED="$P/shared"
TUSER="${CONDOR_TEST_USER:-calibtest}"
TIMEOUT="${CONDOR_UP_TIMEOUT:-60}"
CACHE="${CONDOR_CHROOT_CACHE-/var/cache/calibctl/condor-trixie-minicondor.tar}"
start_time=$(date +%s.%N)
export LC_ALL=C

in_chroot() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C "$@"; }
master_pid_file="$ROOT/run/condor/condor_master.pid"
# True when PID runs (a zombie waiting to be reaped counts as stopped).
alive() { kill -0 "$1" 2>/dev/null && [[ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]]; }
master_alive() { [[ -s "$master_pid_file" ]] && alive "$(cat "$master_pid_file")"; }
slot_state() { timeout 10 chroot "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin condor_status -af State 2>/dev/null | head -1 || true; }
is_mounted() { awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts; }

finish() {
    cat >"$P/env.sh" <<EOF
export PATH=$(printf '%q' "$P/bin"):\$PATH
export CALIBCTL_CONDOR_BIN=$(printf '%q' "$P/bin")
export CALIBCTL_CONDOR_SHARED=$(printf '%q' "$SHARED")
export CALIBCTL_CONDOR_USER=$(printf '%q' "$TUSER")
EOF
    cat "$P/env.sh"
    log "ready in $(elapsed "$start_time") s (slot $1; source $P/env.sh)"
    exit 0
}

# ---- already running? -------------------------------------------------------------------------------------------
# (A pool started before the chroot had calibctl's OS libraries goes on below, which installs them.)
if [[ -x "$ROOT/usr/sbin/condor_master" ]] && master_alive && is_mounted "$ROOT$SHARED" \
    && [[ -e "$ROOT/usr/lib/x86_64-linux-gnu/libhdf5_serial.so.103" ]]; then
    state="$(slot_state)"
    if [[ "$state" == Unclaimed || "$state" == Claimed ]]; then
        log "already running under $P"
        finish "$state"
    fi
fi

# ---- host tools ---------------------------------------------------------------------------------------------------
if ! command -v debootstrap >/dev/null 2>&1 && [[ ! -x "$ROOT/usr/sbin/condor_master" ]]; then
    command -v apt-get >/dev/null || die "debootstrap is missing and there is no apt-get to install it"
    t0=$(date +%s)
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends debootstrap </dev/null >"$P/apt-install.log" 2>&1; then
        apt-get update -q </dev/null >>"$P/apt-install.log" 2>&1 || die "apt-get update failed (see $P/apt-install.log)"
        apt-get install -y -q --no-install-recommends debootstrap </dev/null >>"$P/apt-install.log" 2>&1 \
            || die "apt-get install debootstrap failed (see $P/apt-install.log)"
    fi
    log "installed debootstrap in $(($(date +%s) - t0)) s"
fi

# ---- the chroot ---------------------------------------------------------------------------------------------------
debian_mirror() {
    if [[ -n "${CONDOR_DEBIAN_MIRROR:-}" ]]; then echo "$CONDOR_DEBIAN_MIRROR"; return; fi
    local f uri
    # deb822 .sources files: the first URIs line whose entry is not the security archive.
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        uri="$(awk 'tolower($1) == "uris:" && $2 !~ /security/ && $2 ~ /debian\/?$/ { print $2; exit }' "$f")"
        [[ -n "$uri" ]] && { echo "${uri%/}"; return; }
    done
    # one-line format.
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f "$f" ]] || continue
        uri="$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/ && $i ~ /:\/\//) { if ($i !~ /security/ && $i ~ /debian\/?$/) { print $i; exit } break } }' "$f")"
        [[ -n "$uri" ]] && { echo "${uri%/}"; return; }
    done
    return 1
}

if [[ ! -x "$ROOT/usr/sbin/condor_master" ]]; then
    mirror="$(debian_mirror)" || die "found no Debian mirror in /etc/apt/sources.list{,.d/*}; set CONDOR_DEBIAN_MIRROR=http://.../debian"
    # A half-built chroot from an interrupted run: unmount anything inside it and start over.
    if [[ -e "$ROOT" ]]; then
        log "removing incomplete chroot $ROOT"
        awk -v r="$ROOT/" 'index($2, r) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" || true; done
        rm -rf --one-file-system "$ROOT"
    fi
    t0=$(date +%s.%N)
    if [[ -n "$CACHE" && -s "$CACHE" ]]; then
        log "unpacking the cached chroot $CACHE"
        rm -rf "$ROOT.tmp"; mkdir -p "$ROOT.tmp"
        if tar -C "$ROOT.tmp" -xf "$CACHE" && [[ -x "$ROOT.tmp/usr/sbin/condor_master" ]]; then
            mv "$ROOT.tmp" "$ROOT"
            log "unpacked in $(elapsed "$t0") s"
        else
            log "the cache $CACHE is unusable; removing it and building from scratch"
            rm -rf "$ROOT.tmp" "$CACHE"
        fi
    fi
fi
if [[ ! -x "$ROOT/usr/sbin/condor_master" && ! -d "$ROOT" ]]; then
    t0=$(date +%s.%N)
    log "debootstrap --variant=minbase trixie from $mirror (~20-50 s)"
    awk -v r="$ROOT.tmp/" 'index($2, r) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" || true; done
    rm -rf --one-file-system "$ROOT.tmp"
    debootstrap --variant=minbase trixie "$ROOT.tmp" "$mirror" </dev/null >"$P/debootstrap.log" 2>&1 \
        || { tail -n 20 "$P/debootstrap.log" >&2; die "debootstrap failed (full log: $P/debootstrap.log)"; }
    printf '#!/bin/sh\nexit 101\n' >"$ROOT.tmp/usr/sbin/policy-rc.d"
    chmod 755 "$ROOT.tmp/usr/sbin/policy-rc.d"
    mv "$ROOT.tmp" "$ROOT"
    log "debootstrap took $(elapsed "$t0") s"
fi

cp /etc/hosts "$ROOT/etc/hosts"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
is_mounted "$ROOT/proc" || mount -t proc proc "$ROOT/proc" || die "cannot mount proc at $ROOT/proc"

if [[ ! -x "$ROOT/usr/sbin/condor_master" ]]; then
    t0=$(date +%s.%N)
    log "installing minicondor in the chroot (~15 s)"
    { in_chroot apt-get update -q && DEBIAN_FRONTEND=noninteractive in_chroot apt-get install -y -q --no-install-recommends minicondor; } \
        </dev/null >"$P/minicondor-install.log" 2>&1 \
        || { tail -n 20 "$P/minicondor-install.log" >&2; die "installing minicondor in the chroot failed (full log: $P/minicondor-install.log)"; }
    in_chroot apt-get clean >/dev/null 2>&1 || true
    rm -rf "$ROOT"/var/lib/apt/lists/*
    log "minicondor installed in $(elapsed "$t0") s"
    chroot_changed=1
fi

# ---- the execute side: a node with calibctl's OS libraries (no Swift) ---------------------------------------------
# Jobs run inside this chroot. calibctl's worker-node binary (the release build: Swift runtime linked in statically,
# docs/runner.md "Worker nodes") takes HDF5, SQLite, libcrypto, libstdc++ and glibc from the OS it was built for,
# Debian 12. Debian 13 has all of them under the same sonames, newer and compatible, except HDF5 (1.14, another
# soname), so the chroot gets Debian 12's HDF5 runtime package, as a site installs calibctl's OS packages on its
# nodes; its dependencies (libsz2, libaec0, ...) come from Debian 13. Nothing of Swift is installed or copied here.
HDF5_PACKAGE=libhdf5-103-1
if ! in_chroot dpkg-query -W -f '${Status}' "$HDF5_PACKAGE" 2>/dev/null | grep -q 'ok installed'; then
    t0=$(date +%s.%N)
    debs="$(mktemp -d "$ROOT/tmp/calibctl-debs.XXXXXX")"
    chmod 755 "$debs"
    # The host's own package (Debian 12): apt downloads it from the host's mirror.
    if ! (cd "$debs" && apt-get download -q "$HDF5_PACKAGE") </dev/null >"$P/hdf5-install.log" 2>&1; then
        apt-get update -q </dev/null >>"$P/hdf5-install.log" 2>&1 || die "apt-get update failed (see $P/hdf5-install.log)"
        (cd "$debs" && apt-get download -q "$HDF5_PACKAGE") </dev/null >>"$P/hdf5-install.log" 2>&1 \
            || die "apt-get download $HDF5_PACKAGE failed on this host (see $P/hdf5-install.log)"
    fi
    deb="$(cd "$debs" && ls "$HDF5_PACKAGE"_*.deb | head -1)"
    { in_chroot apt-get update -q && DEBIAN_FRONTEND=noninteractive in_chroot apt-get install -y -q \
        --no-install-recommends "/tmp/${debs##*/}/$deb"; } </dev/null >>"$P/hdf5-install.log" 2>&1 \
        || { tail -n 20 "$P/hdf5-install.log" >&2; die "installing $deb in the chroot failed (full log: $P/hdf5-install.log)"; }
    in_chroot apt-get clean >/dev/null 2>&1 || true
    rm -rf "$ROOT"/var/lib/apt/lists/* "$debs"
    log "installed Debian 12's $HDF5_PACKAGE in the chroot in $(elapsed "$t0") s"
    chroot_changed=1
fi

if [[ "${chroot_changed:-0}" == 1 && -n "$CACHE" ]]; then
    t0=$(date +%s.%N)
    if mkdir -p "$(dirname "$CACHE")" && tar -C "$ROOT" --one-file-system -cf "$CACHE.tmp.$$" . && mv "$CACHE.tmp.$$" "$CACHE"; then
        log "saved the chroot to $CACHE in $(elapsed "$t0") s (delete it to rebuild from the mirror)"
    else
        rm -f "$CACHE.tmp.$$"; log "warning: could not save the chroot cache $CACHE (continuing)"
    fi
fi

# ---- the test user: same uid/gid on the host and in the chroot ---------------------------------------------------
if ! id -u "$TUSER" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/sh --user-group "$TUSER" || die "cannot create host user $TUSER"
    log "created host user $TUSER"
fi
uid="$(id -u "$TUSER")"
gid="$(id -g "$TUSER")"
cuid="$(in_chroot id -u "$TUSER" 2>/dev/null || true)"
if [[ -z "$cuid" ]]; then
    in_chroot getent group "$gid" >/dev/null || in_chroot groupadd -g "$gid" "$TUSER" \
        || die "cannot create group $TUSER (gid $gid) in the chroot"
    in_chroot useradd --uid "$uid" --gid "$gid" --create-home --shell /bin/sh "$TUSER" \
        || die "cannot create user $TUSER (uid $uid) in the chroot: is uid $uid taken there?"
elif [[ "$cuid" != "$uid" ]]; then
    die "user $TUSER has uid $uid on the host but $cuid in $ROOT; remove $P (scripts/condor-down.sh $P --purge) and rerun"
fi

# ---- the shared work directory ------------------------------------------------------------------------------------
mkdir -p "$SHARED" "$ROOT$SHARED"
chown "$uid:$gid" "$SHARED"
chmod 755 "$P"
is_mounted "$ROOT$SHARED" || mount --bind "$SHARED" "$ROOT$SHARED" || die "cannot bind-mount $SHARED at $ROOT$SHARED"

# ---- configuration ------------------------------------------------------------------------------------------------
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
cfg="$ROOT/etc/condor/config.d/99-calibctl-test.config"
port=""
[[ -f "$cfg" ]] && port="$(sed -n 's/^SHARED_PORT_PORT = //p' "$cfg")"
if [[ -z "$port" ]] || ! port_free "$port"; then
    port="${CONDOR_UP_PORT:-9618}"
    while ! port_free "$port"; do
        port=$((port + 1))
        ((port < 65000)) || die "no free TCP port on 127.0.0.1 from ${CONDOR_UP_PORT:-9618} up"
    done
fi
cat >"$cfg" <<EOF
# Generated by scripts/condor-up.sh: a private loopback-only personal pool under $P.
ENABLE_IPV6 = False
MOUNT_UNDER_SCRATCH =
BASE_CGROUP =
USE_PID_NAMESPACES = False
NUM_CPUS = 8
SCHEDD_INTERVAL = 2
NEGOTIATOR_INTERVAL = 1
NEGOTIATOR_CYCLE_DELAY = 1
NEGOTIATOR_MIN_INTERVAL = 1
SHARED_PORT_PORT = $port
COLLECTOR_HOST = \$(CONDOR_HOST):$port
EOF
if [[ "${CONDOR_UP_ENFORCE_MEMORY:-0}" == 1 ]]; then
    cat >>"$cfg" <<EOF
# CONDOR_UP_ENFORCE_MEMORY=1: hold jobs that use more memory than they requested (as farms do).
use POLICY : HOLD_IF_MEMORY_EXCEEDED
STARTER_UPDATE_INTERVAL = 2
POLLING_INTERVAL = 2
EOF
fi

for d in /run/condor /run/lock/condor /var/spool/condor /var/lib/condor/execute /var/log/condor; do
    mkdir -p "$ROOT$d"
    in_chroot chown condor:condor "$d"
done

# ---- client wrappers ----------------------------------------------------------------------------------------------
mkdir -p "$P/bin"
for tool in condor_submit condor_q condor_history condor_rm condor_status condor_hold condor_release condor_wait \
    condor_qedit condor_config_val; do
    cat >"$P/bin/$tool.tmp" <<EOF
#!/bin/sh
# Generated by scripts/condor-up.sh: runs the real $tool inside the HTCondor chroot $ROOT as $TUSER ($uid:$gid),
# in the caller's current directory (which must be under $SHARED to be visible there).
exec chroot --userspec=$uid:$gid $(printf '%q' "$ROOT") /usr/bin/env -i PATH=/usr/bin:/bin LC_ALL=C.UTF-8 \\
    HOME=/home/$TUSER USER=$TUSER LOGNAME=$TUSER \\
    /bin/sh -c 'cd "\$0" 2>/dev/null || cd /; exec $tool "\$@"' "\$PWD" "\$@"
EOF
    chmod 755 "$P/bin/$tool.tmp"
    mv "$P/bin/$tool.tmp" "$P/bin/$tool"
done

# ---- start --------------------------------------------------------------------------------------------------------
if ! master_alive; then
    rm -f "$master_pid_file"
    run_daemon chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C \
        /usr/sbin/condor_master -pidfile /run/condor/condor_master.pid \
        || die "condor_master did not start (see $ROOT/var/log/condor/MasterLog)"
fi

deadline=$(($(date +%s) + TIMEOUT))
state=""
while (($(date +%s) < deadline)); do
    state="$(slot_state)"
    [[ "$state" == Unclaimed || "$state" == Claimed ]] && finish "$state"
    sleep 0.3
done
log "no Unclaimed slot after ${TIMEOUT} s (state '${state:-none}'). Last log lines:"
tail -n 10 "$ROOT/var/log/condor/MasterLog" "$ROOT/var/log/condor/StartLog" "$ROOT/var/log/condor/CollectorLog" >&2 2>/dev/null || true
die "HTCondor under $P did not become ready; stop it with scripts/condor-down.sh $P"
