#!/usr/bin/env bash
# Wicket behind Debian's nginx with a throwaway self-signed certificate, exactly as
# deploy/ describes it (deploy/nginx-wicket.conf with only its ports and paths
# changed): the browser suite's `tls` project runs through it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tls_port="${WICKET_E2E_TLS_PORT:?}"
http_port="${WICKET_E2E_HTTP_PORT:?}"
upstream_port="${WICKET_E2E_UPSTREAM_PORT:?}"
nginx="$(command -v nginx || echo /usr/sbin/nginx)"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null

site="$root/deploy/nginx-wicket.conf"
sed -e "s|listen 80;|listen 127.0.0.1:$http_port;|" \
    -e "s|listen 443 ssl http2;|listen 127.0.0.1:$tls_port ssl http2;|" \
    -e '/listen \[::\]:/d' \
    -e "s|return 301 https://\$host\$request_uri;|return 301 https://\$host:$tls_port\$request_uri;|" \
    -e "s|server 127.0.0.1:5000;|server 127.0.0.1:$upstream_port;|" \
    -e "s|/etc/letsencrypt/live/login.example.com/fullchain.pem|$dir/cert.pem|" \
    -e "s|/etc/letsencrypt/live/login.example.com/privkey.pem|$dir/key.pem|" \
    -e "s|/var/log/nginx/|$dir/|" \
    -e "s|/var/www/html|$dir/www|" \
    "$site" > "$dir/site.conf"
# Each change must have applied: a changed deploy file fails here, not silently.
for expected in "listen 127.0.0.1:$http_port;" "listen 127.0.0.1:$tls_port ssl http2;" \
    "https://\$host:$tls_port\$request_uri" "server 127.0.0.1:$upstream_port;" \
    "$dir/cert.pem" "$dir/key.pem" "$dir/wicket.access.log" "root $dir/www;"; do
  grep -qF -- "$expected" "$dir/site.conf" || { echo "serve-tls: '$expected' missing from the templated $site" >&2; exit 1; }
done
if grep -v '^\s*#' "$dir/site.conf" | grep -qE 'listen (80|443)|/etc/|/var/'; then
  echo "serve-tls: $site has a port or path this script does not template" >&2; exit 1
fi

"$root/e2e/nginx-main.sh" "$dir" "$dir/site.conf" > "$dir/nginx.conf"

"${WICKET_BIN:-$root/target/release/wicket}" \
  --addr "127.0.0.1:$upstream_port" \
  --secure-cookies \
  --trusted-proxies 127.0.0.1 \
  --public-url "https://127.0.0.1:$tls_port" \
  --data-dir "$dir/data" \
  --sessions-dir "$dir/sessions" \
  --static-dir "$root/static" \
  --scrypt-log-n 10 \
  --throttle-register 3/1h &
wicket=$!
"$nginx" -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' &
proxy=$!
trap 'kill "$wicket" "$proxy" 2>/dev/null; wait "$wicket" "$proxy" 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
# Either one stopping ends the run (and the test waiting on it).
wait -n "$wicket" "$proxy"
