#!/usr/bin/env bash
# Starts Debian's nginx as a caching reverse proxy on loopback in front of `calibctl serve` (docs/serve.md, "Behind a
# cache"), in the foreground; stop it with: nginx -p PREFIX -c PREFIX/nginx.conf -s stop
# Usage: scripts/nginx-cache.sh PREFIX LISTEN_PORT UPSTREAM_PORT [WORKERS]
# Used by ServeNginxTests and scripts/bench-serve.sh. Install nginx with scripts/bootstrap.sh --with-nginx.
set -euo pipefail
prefix=$1; port=$2; upstream=$3; workers=${4:-1}
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || { echo "nginx-cache: nginx not found: scripts/bootstrap.sh --with-nginx installs it" >&2; exit 69; }
mkdir -p "$prefix/cache" "$prefix/tmp" "$prefix/logs"
user_line=""; [ "$(id -u)" = 0 ] && user_line="user root;"
cat > "$prefix/nginx.conf" <<CONF
$user_line
worker_processes $workers;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $prefix/tmp/body; proxy_temp_path $prefix/tmp/proxy; fastcgi_temp_path $prefix/tmp/fastcgi;
  uwsgi_temp_path $prefix/tmp/uwsgi; scgi_temp_path $prefix/tmp/scgi;
  proxy_cache_path $prefix/cache levels=1:2 keys_zone=calib:16m max_size=2g inactive=7d use_temp_path=off;
  upstream calibctl { server 127.0.0.1:$upstream; keepalive 32; }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://calibctl;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache calib;
      # One request per missing answer goes upstream, however many jobs ask at once; expired answers are
      # revalidated with If-None-Match (304) and served stale while the service is down.
      proxy_cache_lock on;
      proxy_cache_revalidate on;
      proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;
      proxy_cache_background_update on;
      add_header X-Cache-Status \$upstream_cache_status always;
    }
  }
}
CONF
exec "$nginx" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log" -g "daemon off;"
