#!/usr/bin/env bash
# Apps behind Wicket, for the browser suite's `guard` projects: a small app
# (upstream.py) behind Debian's nginx (deploy/nginx-guard.conf) and behind Caddy
# (deploy/Caddyfile), Wicket at login.wicket.test through nginx
# (deploy/nginx-wicket.conf), all with one throwaway certificate for *.wicket.test.
# Only ports, names and paths are changed in the deploy files. The browser maps
# *.wicket.test to 127.0.0.1. Wicket's dirs are in $WICKET_E2E_GUARD_DIR, where the
# tests also run `wicket invite create`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tls_port="${WICKET_E2E_GUARD_PORT:?}"
caddy_port="${WICKET_E2E_CADDY_PORT:?}"
wicket_port="${WICKET_E2E_GUARD_WICKET_PORT:?}"
app_port="${WICKET_E2E_APP_PORT:?}"
dir="${WICKET_E2E_GUARD_DIR:?}"
nginx="$(command -v nginx || echo /usr/sbin/nginx)"
mkdir -p "$dir/tmp" "$dir/www" "$dir/caddy"

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=wicket.test \
  -addext "subjectAltName=DNS:wicket.test,DNS:*.wicket.test" \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null

# Fails if a substitution did not apply: a changed deploy file fails here, loudly.
template() {
  local file="$1" out="$2"; shift 2
  cp "$file" "$out"
  while [ $# -gt 0 ]; do
    grep -qF -- "$1" "$out" || { echo "serve-guard: '$1' missing from $file" >&2; exit 1; }
    python3 -c 'import sys; p, a, b = sys.argv[1:]; t = open(p).read(); open(p, "w").write(t.replace(a, b))' "$out" "$1" "$2"
    shift 2
  done
}

template "$root/deploy/nginx-wicket.conf" "$dir/login.conf" \
  "listen 443 ssl http2;" "listen 127.0.0.1:$tls_port ssl http2;" \
  "listen [::]:443 ssl http2;" "" \
  "listen 80;" "listen 127.0.0.1:0;" \
  "listen [::]:80;" "" \
  "server 127.0.0.1:5000;" "server 127.0.0.1:$wicket_port;" \
  "login.example.com;" "login.wicket.test;" \
  "/etc/letsencrypt/live/login.example.com/fullchain.pem" "$dir/cert.pem" \
  "/etc/letsencrypt/live/login.example.com/privkey.pem" "$dir/key.pem" \
  "/var/log/nginx/" "$dir/" \
  "/var/www/html" "$dir/www"
# The login site's plain-HTTP redirect server is not needed here.
python3 - "$dir/login.conf" <<'PY'
import re, sys
p = sys.argv[1]
t = open(p).read()
t = re.sub(r"# Plain HTTP only redirects.*?\n}\n", "", t, count=1, flags=re.S)
open(p, "w").write(t)
PY
template "$root/deploy/nginx-guard.conf" "$dir/guard.conf" \
  "listen 443 ssl http2;" "listen 127.0.0.1:$tls_port ssl http2;" \
  "listen [::]:443 ssl http2;" "" \
  "server 127.0.0.1:8080;" "server 127.0.0.1:$app_port;" \
  "server 127.0.0.1:5000;" "server 127.0.0.1:$wicket_port;" \
  "app.example.com;" "app.wicket.test;" \
  "/etc/letsencrypt/live/app.example.com/fullchain.pem" "$dir/cert.pem" \
  "/etc/letsencrypt/live/app.example.com/privkey.pem" "$dir/key.pem" \
  "/var/log/nginx/" "$dir/"
if grep -hv '^\s*#' "$dir/login.conf" "$dir/guard.conf" | grep -qE 'listen (80|443)|/etc/|/var/|example\.com'; then
  echo "serve-guard: a deploy file has a port, path or name this script does not template" >&2; exit 1
fi

"$root/e2e/nginx-main.sh" "$dir" "$dir/login.conf" "$dir/guard.conf" > "$dir/nginx.conf"

# Caddy: only the app's site (the login is nginx's), on its own port, with the same
# certificate, no admin endpoint and no automatic HTTPS.
{
  printf '{\n\tauto_https off\n\tadmin off\n}\n\n'
  python3 - "$root/deploy/Caddyfile" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
# The app's block, from its address to the closing brace at the start of a line.
print(re.search(r"^app\.example\.com \{.*?^\}", text, re.S | re.M).group(0))
PY
} > "$dir/Caddyfile.in"
template "$dir/Caddyfile.in" "$dir/Caddyfile" \
  "app.example.com {" "https://caddy.wicket.test:$caddy_port {
	tls $dir/cert.pem $dir/key.pem" \
  "forward_auth 127.0.0.1:5000" "forward_auth 127.0.0.1:$wicket_port" \
  "reverse_proxy 127.0.0.1:8080" "reverse_proxy 127.0.0.1:$app_port"

cat > "$dir/rules.toml" <<'RULES'
[[rule]]
host = "*.wicket.test"
path = "/open"
policy = "public"

[[rule]]
host = "*.wicket.test"
path = "/team"
groups = ["team"]

[[rule]]
host = "*.wicket.test"
path = "/strong"
policy = "two-step"

[[rule]]
host = "*.wicket.test"
policy = "members"
RULES

"${WICKET_BIN:-$root/target/release/wicket}" \
  --addr "127.0.0.1:$wicket_port" \
  --secure-cookies \
  --trusted-proxies 127.0.0.1 \
  --public-url "https://login.wicket.test:$tls_port" \
  --cookie-domain wicket.test \
  --access-rules "$dir/rules.toml" \
  --registration invite \
  --data-dir "$dir/data" \
  --sessions-dir "$dir/sessions" \
  --static-dir "$root/static" \
  --scrypt-log-n 10 \
  --throttle-login 50/15m \
  --throttle-register 1000/1h &
wicket=$!
"$nginx" -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' &
proxy=$!
HOME="$dir/caddy" XDG_DATA_HOME="$dir/caddy" XDG_CONFIG_HOME="$dir/caddy" \
  caddy run --config "$dir/Caddyfile" --adapter caddyfile >"$dir/caddy.log" 2>&1 &
caddy=$!
trap 'kill "$wicket" "$proxy" "$caddy" ${app:-} 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
# The app starts last, once Wicket, nginx and Caddy answer: the test runner waits for
# the app's own port, so by then the whole chain is up.
for url in "https://login.wicket.test:$tls_port/healthz" "https://caddy.wicket.test:$caddy_port/open"; do
  host="${url#https://}"; host="${host%%/*}"
  until curl -sk --resolve "$host:127.0.0.1" -o /dev/null "$url"; do
    kill -0 "$wicket" "$proxy" "$caddy" || exit 1
    sleep 0.1
  done
done
/usr/bin/python3 "$root/e2e/upstream.py" "$app_port" &
app=$!
# Any one stopping ends the run (and the tests waiting on it).
wait -n "$app" "$wicket" "$proxy" "$caddy"
