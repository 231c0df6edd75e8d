#!/usr/bin/env bash
# Load benchmark of `calibctl serve`, directly and behind a caching nginx (scripts/nginx-cache.sh), from loopback
# with wrk (Debian's; scripts/bootstrap.sh --with-nginx installs both). Bounded: each run lasts --duration seconds.
# Reports requests/s, p50/p99 latency, errors, the nginx cache hit ratio and the CPU time calibctl serve used.
# Figures: docs/benchmarks-store.md. Not a test: nothing here asserts a time.
# Usage: scripts/bench-serve.sh [--duration S] [--connections N] [--detectors N] [--runs N]
#        (CALIBCTL_BIN selects the binary; default: the debug build of this checkout)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=10; conns=64; detectors=10; nruns=1000
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;; --connections) conns=$2; shift 2 ;;
    --detectors) detectors=$2; shift 2 ;; --runs) nruns=$2; shift 2 ;;
    *) echo "bench-serve: unknown option $1" >&2; exit 64 ;;
  esac
done
bin=${CALIBCTL_BIN:-$(swift build --show-bin-path)/calibctl}
command -v wrk >/dev/null || { echo "bench-serve: wrk not found: scripts/bootstrap.sh --with-nginx" >&2; exit 69; }
py=${CALIBCTL_PYTHON:-python3}
tmp=$(mktemp -d /tmp/calibctl-bench-serve.XXXXXX)
serve_pid=""; nginx_pid=""
cleanup() {
  [ -n "$nginx_pid" ] && { nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -s stop 2>/dev/null || kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; }
  [ -n "$serve_pid" ] && { kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; }
  rm -rf "$tmp"
}
trap cleanup EXIT
export CALIBCTL_STORE=$tmp/store

echo "bench-serve: building a store ($detectors detectors, 5 pedestal payloads each, global tag GT) with $bin" >&2
"$bin" store init >/dev/null
"$py" -c "import numpy as np, sys; [np.save(f'{sys.argv[1]}/p{i}.npy', np.full((16, 16), i, np.float32)) for i in range(5)]" "$tmp"
entries=()
for d in $(seq 1 "$detectors"); do
  "$bin" store detector add "det$d" --kind jungfrau >/dev/null
  for i in 0 1 2 3 4; do
    "$bin" put "det$d" pedestals "$tmp/p$i.npy" --runs "$((i * nruns / 5))-" >/dev/null
  done
  entries+=(--entry "det$d/pedestals=default")
done
"$bin" store global-tag create GT "${entries[@]}" >/dev/null
# The request mix: global-tag lookups of every run of every detector (90%), their payloads (10%).
"$py" - "$tmp" "$detectors" "$nruns" "$CALIBCTL_STORE" <<'PY'
import random, sys, sqlite3
tmp, dets, runs, store = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
urls = [f"/v1/lookup?detector=det{d}&type=pedestals&run={r}&global-tag=GT" for d in range(1, dets + 1) for r in range(runs)]
shas = [r[0] for r in sqlite3.connect(f"file:{store}/index.db?mode=ro", uri=True).execute("SELECT sha256 FROM payloads")]
urls += [f"/payloads/{s}" for s in shas] * max(1, len(urls) // (9 * max(1, len(shas))))
random.Random(1).shuffle(urls)
open(f"{tmp}/urls.txt", "w").write("\n".join(urls) + "\n")
PY
cat > "$tmp/mix.lua" <<'LUA'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  urls = {}
  for line in io.lines(args[1]) do urls[#urls + 1] = line end
  i = math.random(#urls); hits = 0; misses = 0; other = 0
end
function request() i = i % #urls + 1; return wrk.format("GET", urls[i]) end
function response(status, headers, body)
  local s = headers["X-Cache-Status"]
  if s == "HIT" then hits = hits + 1 elseif s == nil then other = other + 1 else misses = misses + 1 end
end
function done(summary, latency, requests)
  local h, m = 0, 0
  for _, t in ipairs(threads) do h = h + t:get("hits"); m = m + t:get("misses") end
  local e = summary.errors
  io.write(string.format("RESULT requests=%d seconds=%.2f rps=%.0f p50_us=%d p99_us=%d errors=%d non2xx3xx=%d hits=%d misses=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6), latency:percentile(50),
    latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status, h, m))
end
LUA

cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
tick=$(getconf CLK_TCK)
"$bin" serve --listen 127.0.0.1:0 --port-file "$tmp/port" > "$tmp/serve.log" 2>&1 & serve_pid=$!
for _ in $(seq 300); do [ -s "$tmp/port" ] && break; sleep 0.1; done
up=$(cat "$tmp/port")
nport=$("$py" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
scripts/nginx-cache.sh "$tmp/nginx" "$nport" "$up" 1 > "$tmp/nginx.log" 2>&1 & nginx_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$nport/health" >/dev/null 2>&1 && break; sleep 0.1; done

run() { # name url
  local before after
  before=$(cpu "$serve_pid")
  out=$(wrk -t2 -c"$conns" -d"${duration}s" --timeout 10s -s "$tmp/mix.lua" "$2" -- "$tmp/urls.txt")
  after=$(cpu "$serve_pid")
  line=$(grep '^RESULT' <<<"$out")
  eval "$(sed 's/^RESULT //' <<<"$line")"
  local served=$(( requests ))
  local ratio="-"; [ $((hits + misses)) -gt 0 ] && ratio=$(awk -v h="$hits" -v m="$misses" 'BEGIN { printf "%.3f", h / (h + m) }')
  printf '%-28s %9s req/s  p50 %6.2f ms  p99 %7.2f ms  errors %d (non-2xx/3xx %d)  cache hit ratio %s  calibctl serve CPU %.1f s in %s s (%.0f%% of a core)\n' \
    "$1" "$rps" "$(awk -v x="$p50_us" 'BEGIN{print x/1000}')" "$(awk -v x="$p99_us" 'BEGIN{print x/1000}')" "$errors" "$non2xx3xx" "$ratio" \
    "$(awk -v a="$after" -v b="$before" -v t="$tick" 'BEGIN{print (a-b)/t}')" "$seconds" \
    "$(awk -v a="$after" -v b="$before" -v t="$tick" -v s="$seconds" 'BEGIN{print 100*(a-b)/t/s}')"
}
echo "bench-serve: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); wrk -t2 -c$conns -d${duration}s; $(sort -u "$tmp/urls.txt" | wc -l) distinct URLs; binary $bin" >&2
run "direct (no cache)" "http://127.0.0.1:$up"
run "nginx cache, cold" "http://127.0.0.1:$nport"
run "nginx cache, warm" "http://127.0.0.1:$nport"
