#!/usr/bin/env bash
# Wicket's benchmark: builds the release binary, starts it on throwaway dirs, seeds
# users and sessions, drives it with wrk and prints one markdown table.
#
#   bench/run.sh                 full run (about 15 minutes, ~5 GB of scratch files)
#   BENCH_SECONDS=5 bench/run.sh shorter wrk phases
#   BENCH_MAX_SESSIONS=100000    stop the scale phases earlier
#   BENCH_ONLY=guard bench/run.sh  only the forward-auth phases (about two minutes)
#   BENCH_ONLY=oidc bench/run.sh   only the OpenID Connect phases, against oidc-provider
#
# Everything runs on this machine against 127.0.0.1; the scratch dir is deleted at exit.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_PHASE=${BENCH_SECONDS:-10}
MAX_SESSIONS=${BENCH_MAX_SESSIONS:-1000000}
PORT=${BENCH_PORT:-5077}
BASE="http://127.0.0.1:$PORT"
CONNECTIONS=64

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v wrk >/dev/null || ! command -v curl >/dev/null || ! python3 -m venv -h >/dev/null 2>&1 \
    || ! command -v nginx >/dev/null; then
  as_root apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends \
    wrk curl python3-venv nginx >/dev/null
fi

# The byte counts drive Debian's Chromium through Playwright (e2e/).
[ -d e2e/node_modules ] || (cd e2e && npm ci --no-audit --no-fund)
cargo build --release --quiet --bin wicket --example seed
BIN=target/release/wicket
SEED=target/release/examples/seed

WORK=$(mktemp -d "${TMPDIR:-/tmp}/wicket-bench.XXXXXX")
DATA=$WORK/data
SESSIONS=$WORK/sessions
LOG=$WORK/server.log
PID=
ANCHOR_PID=
NGINX_PID=
cleanup() {
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null
  [ -n "$ANCHOR_PID" ] && kill "$ANCHOR_PID" 2>/dev/null
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "bench: $*" >&2; }
now_ms() { date +%s%3N; }
mib() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }
proc_kb() { awk -v key="$1:" '$1 == key { print $2 }' "/proc/$PID/status"; }
reset_peak() { echo 5 >"/proc/$PID/clear_refs"; } # VmHWM := VmRSS (Linux >= 4.0)

# start_server FLAGS...: starts Wicket, waits for the first 200, sets PID and STARTUP_MS.
# wrk is one client address: the per-client connection cap is lifted for it.
start_server() {
  local started
  started=$(now_ms)
  RUST_LOG=${RUST_LOG:-warn,wicket=info,wicket::request=warn} "$BIN" --addr "127.0.0.1:$PORT" \
    --data-dir "$DATA" --sessions-dir "$SESSIONS" --static-dir static \
    --throttle-login off --throttle-register off --max-connections-per-client 100000 \
    "$@" >>"$LOG" 2>&1 &
  PID=$!
  until curl -fs -o /dev/null "$BASE/"; do
    kill -0 "$PID" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
    sleep 0.005
  done
  STARTUP_MS=$(($(now_ms) - started))
}

stop_server() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }

# wrk_run URL SECONDS CONNECTIONS: a 3 s run that counts every answer's status (sets
# STATUSES and BAD, the answers other than $WANT), then a timed run of SECONDS that
# counts nothing (sets RPS P50 P99). See bench/stats.lua for why they are separate.
wrk_run() {
  local counted timed
  counted=$(WRK_COUNT=1 wrk -t2 -c"$3" -d3s --timeout 30s -s bench/stats.lua "$1")
  STATUSES=$(awk '$1 == "STATUS" { printf "%s%s×%s", sep, $2, $3; sep=" " }' <<<"$counted")
  BAD=$(awk -v want="${WANT:-200}" '$1 == "STATUS" && $2 != want { n += $3 } $1 == "ERRORS" { n += $2 } END { print n + 0 }' <<<"$counted")
  timed=$(wrk -t2 -c"$3" -d"$2"s --timeout 30s -s bench/stats.lua "$1")
  RPS=$(awk '$1 == "RPS" { print $2 }' <<<"$timed")
  P50=$(awk '$1 == "P50" { print $2 }' <<<"$timed")
  P99=$(awk '$1 == "P99" { print $2 }' <<<"$timed")
  BAD=$((BAD + $(awk '$1 == "ERRORS" { print $2 }' <<<"$timed")))
}

ROWS=()
P99S=()
row() { ROWS+=("| $* |"); }

# --- Set-up: 1,000 sessions and 100 users on disk; a real member's cookie -----------
log "seeding 1,000 sessions and 100 users"
"$SEED" "$SESSIONS" "$DATA" 1000 100 3600
# Access rules for the forward-auth phase: members may reach app.test.
printf '[[rule]]\nhost = "app.test"\npolicy = "members"\n' >"$WORK/rules.toml"
# A client for the OpenID Connect phase, its secret made as the README says.
CLIENT_MADE=$("$BIN" oidc client-secret)
CLIENT_SECRET=$(sed -n 's/^client secret.*: //p' <<<"$CLIENT_MADE")
cat >"$WORK/clients.toml" <<TOML
[[client]]
id = "bench"
name = "Bench"
redirect_uris = ["http://127.0.0.1:9/cb"]
$(grep -o 'secret_hash = .*' <<<"$CLIENT_MADE")
trusted = true
TOML
start_server --sweep-interval 1h --access-rules "$WORK/rules.toml" --trusted-proxies 127.0.0.1 \
  --oidc-clients "$WORK/clients.toml"
log "started in ${STARTUP_MS} ms"
IDLE_KB=$(proc_kb VmRSS)

csrf_pair() { # prints "COOKIE TOKEN" for a fresh browser
  local jar=$WORK/jar.$RANDOM page token cookie
  page=$(curl -fs -c "$jar" "$BASE/")
  token=$(grep -o 'name="csrf" value="[0-9a-f]*"' <<<"$page" | sed 's/.*value="//; s/"$//')
  cookie=$(awk '$6 == "wicket_csrf" { print $6 "=" $7 }' "$jar")
  echo "$cookie $token"
}
read -r CSRF_COOKIE CSRF_TOKEN < <(csrf_pair)
MEMBER_PASSWORD="bench member password"
MEMBER_COOKIE=$(curl -fs -o /dev/null -D - -b "$CSRF_COOKIE" \
  --data-urlencode "username=member" --data-urlencode "password=$MEMBER_PASSWORD" \
  --data-urlencode "confirm=$MEMBER_PASSWORD" --data-urlencode "csrf=$CSRF_TOKEN" \
  "$BASE/register/" | awk -F'[ ;]' 'tolower($1) == "set-cookie:" && $2 ~ /^wicket_session=/ { print $2 }')
[ -n "$MEMBER_COOKIE" ] || { log "could not register the member"; exit 1; }
read -r CSRF_COOKIE CSRF_TOKEN < <(csrf_pair)
# What a logged-in browser sends: its session cookie and its CSRF cookie.
BROWSER_COOKIE="$MEMBER_COOKIE; $CSRF_COOKIE"

# --- Phase: forward-auth --------------------------------------------------------------
# /auth/request with a member's cookie against the static floor, interleaved; then an
# upstream page (nginx answering itself) through nginx with and without auth_request.
GUARD_ROWS=()
guard_phase() {
  log "forward-auth: /auth/request against static, five rounds; nginx with and without auth_request"
  local ratios=() p99s=() round static_rps check_rps
  for round in 1 2 3 4 5; do
    wrk_run "$BASE/static/favicon.svg" "$SECONDS_PER_PHASE" "$CONNECTIONS"
    static_rps=$RPS
    [ "$round" = 5 ] && GUARD_ROWS+=("| \`GET /static/favicon.svg\` | $CONNECTIONS | $RPS | $P50 | $P99 | $BAD |")
    WRK_COOKIE=$MEMBER_COOKIE WRK_HEADER="X-Original-URL: https://app.test/wiki" \
      wrk_run "$BASE/auth/request" "$SECONDS_PER_PHASE" "$CONNECTIONS"
    check_rps=$RPS
    [ "$round" = 5 ] && GUARD_ROWS+=("| \`GET /auth/request\` (a member, one rule) | $CONNECTIONS | $RPS | $P50 | $P99 | $BAD |")
    ratios+=("$(awk -v a="$check_rps" -v b="$static_rps" 'BEGIN { printf "%.2f", a / b }')")
    p99s+=("$P99")
  done
  GUARD_RATIO=$(printf '%s\n' "${ratios[@]}" | sort -n | sed -n 3p)
  GUARD_ROUNDS="$(IFS=/; echo "${ratios[*]}")"
  GUARD_P99S="$(IFS=/; echo "${p99s[*]}")"

  local nginx_port=$((PORT + 2)) upstream_port=$((PORT + 3)) dir=$WORK/nginx
  mkdir -p "$dir/tmp"
  cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
error_log $dir/error.log;
pid $dir/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body; proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi; uwsgi_temp_path $dir/tmp/uwsgi; scgi_temp_path $dir/tmp/scgi;
    upstream app { server 127.0.0.1:$upstream_port; keepalive 64; }
    upstream wicket { server 127.0.0.1:$PORT; keepalive 64; }
    server { listen 127.0.0.1:$upstream_port; location / { return 200 "the app's page\n"; } }
    server {
        listen 127.0.0.1:$nginx_port;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        location /plain/ { proxy_pass http://app; }
        location /guarded/ {
            auth_request /_check;
            auth_request_set \$user \$upstream_http_remote_user;
            proxy_set_header Remote-User \$user;
            proxy_pass http://app;
        }
        location = /_check {
            internal;
            proxy_pass http://wicket/auth/request;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URL https://app.test\$request_uri;
            proxy_set_header X-Original-Method \$request_method;
        }
    }
}
CONF
  nginx -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' &
  NGINX_PID=$!
  until curl -fs -o /dev/null "http://127.0.0.1:$nginx_port/plain/"; do
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$dir/error.log" >&2; exit 1; }
    sleep 0.05
  done
  wrk_run "http://127.0.0.1:$nginx_port/plain/x" "$SECONDS_PER_PHASE" "$CONNECTIONS"
  local plain_rps=$RPS
  GUARD_ROWS+=("| nginx → the app's page, no auth_request | $CONNECTIONS | $RPS | $P50 | $P99 | $BAD |")
  WRK_COOKIE=$MEMBER_COOKIE wrk_run "http://127.0.0.1:$nginx_port/guarded/x" "$SECONDS_PER_PHASE" "$CONNECTIONS"
  GUARD_ROWS+=("| nginx → the app's page with auth_request to Wicket | $CONNECTIONS | $RPS | $P50 | $P99 | $BAD |")
  NGINX_RATIO=$(awk -v a="$RPS" -v b="$plain_rps" 'BEGIN { printf "%.2f", a / b }')
  kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=
}
guard_table() {
  cat <<TABLE

Forward-auth (nginx with 1 worker; Wicket, nginx and wrk share the $(nproc) cores):

| phase | connections | req/s | p50 ms | p99 ms | unexpected answers (3 s count) |
|---|---|---|---|---|---|
$(printf '%s\n' "${GUARD_ROWS[@]}")

- \`/auth/request\` / static throughput, median of five interleaved rounds: **$GUARD_RATIO** (rounds $GUARD_ROUNDS; target ≥ 0.85); p99 **$GUARD_P99S ms** at $CONNECTIONS connections (target < 3 ms).
- The app's page through nginx with auth_request / without: **$NGINX_RATIO** of the requests per second.
TABLE
}
# --- Phase: the OpenID Connect provider, against oidc-provider ------------------------
# The refresh-token grant (each request spends the token the previous answer gave),
# userinfo and the JWKS, on Wicket and then on oidc-provider (npm, a certified
# provider, in one Node process with its in-memory adapter; bench/anchors/), each idle
# while the other is measured. Tokens are minted for 2 × $CONNECTIONS families each first:
# Wicket's through its own authorize and code flow, the anchor's by its own models.
OIDC_ROWS=()
oidc_run() { # NAME URL: sets RPS P50 P99 STATUSES BAD from one counted run
  local out
  out=$(WRK_TOKENS=$WORK/$1.tokens WRK_AUTH=$2 WRK_THREADS=2 \
    wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_PHASE}s" --timeout 30s -s bench/refresh.lua "$3")
  RPS=$(awk '$1 == "RPS" { print $2 }' <<<"$out")
  P50=$(awk '$1 == "P50" { print $2 }' <<<"$out")
  P99=$(awk '$1 == "P99" { print $2 }' <<<"$out")
  STATUSES=$(awk '$1 == "STATUS" { printf "%s%s×%s", sep, $2, $3; sep=" " }' <<<"$out")
  BAD=$(awk '$1 == "STATUS" && $2 != 200 { n += $3 } $1 == "ERRORS" { n += $2 } END { print n + 0 }' <<<"$out")
}
oidc_phase() {
  log "OpenID Connect: refresh grant, userinfo and JWKS on Wicket and on oidc-provider"
  local redirect="http%3A%2F%2F127.0.0.1%3A9%2Fcb" i location code tokens access=""
  : >"$WORK/wicket.tokens"
  # Two tokens per connection: see bench/refresh.lua.
  for i in $(seq 0 $((2 * CONNECTIONS))); do
    location=$(curl -fs -o /dev/null -D - -b "$BROWSER_COOKIE" \
      "$BASE/oidc/authorize?response_type=code&client_id=bench&redirect_uri=$redirect&scope=openid%20profile" |
      awk 'tolower($1) == "location:" { print $2 }' | tr -d '\r')
    code=$(sed -n 's/.*[?&]code=\([0-9a-f]*\).*/\1/p' <<<"$location")
    tokens=$(curl -fs -u "bench:$CLIENT_SECRET" -d grant_type=authorization_code -d "code=$code" \
      -d "redirect_uri=http://127.0.0.1:9/cb" "$BASE/oidc/token")
    if [ "$i" = 0 ]; then # one family only for userinfo: a refresh replaces its access token
      access=$(sed 's/.*"access_token":"\([^"]*\)".*/\1/' <<<"$tokens")
    else
      sed 's/.*"refresh_token":"\([^"]*\)".*/\1/' <<<"$tokens" >>"$WORK/wicket.tokens"
    fi
  done
  local basic
  basic="Basic $(printf 'bench:%s' "$CLIENT_SECRET" | base64 -w0)"
  oidc_run wicket "$basic" "$BASE/oidc/token"
  OIDC_ROWS+=("| refresh-token grant | Wicket | $CONNECTIONS | $RPS | $P50 | $P99 | $BAD |")
  local w_refresh=$RPS w_refresh_p99=$P99
  WRK_HEADER="Authorization: Bearer $access" wrk_run "$BASE/oidc/userinfo" "$SECONDS_PER_PHASE" "$CONNECTIONS"
  OIDC_ROWS+=("| \`GET /oidc/userinfo\` | Wicket | $CONNECTIONS | $RPS | $P50 | $P99 | $BAD |")
  local w_info=$RPS w_info_p99=$P99
  wrk_run "$BASE/oidc/jwks" "$SECONDS_PER_PHASE" "$CONNECTIONS"
  OIDC_ROWS+=("| \`GET /oidc/jwks\` | Wicket | $CONNECTIONS | $RPS | $P50 | $P99 | $BAD |")
  local w_jwks=$RPS w_jwks_p99=$P99

  local modules=target/oidc-anchor
  [ -d "$modules/node_modules/oidc-provider" ] ||
    npm install --prefix "$modules" --no-audit --no-fund --silent oidc-provider@9.13.3
  local anchor_port=$((PORT + 2)) anchor_file=$WORK/anchor.json
  OIDC_ANCHOR_MODULES="$PWD/$modules/" node bench/anchors/oidc_provider.mjs \
    "$anchor_port" $((2 * CONNECTIONS)) "$anchor_file" >>"$WORK/anchor.log" 2>&1 &
  ANCHOR_PID=$!
  until [ -s "$anchor_file" ]; do
    kill -0 "$ANCHOR_PID" 2>/dev/null || { cat "$WORK/anchor.log" >&2; exit 1; }
    sleep 0.1
  done
  python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["refresh"]))' "$anchor_file" >"$WORK/anchor.tokens"
  access=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["access"])' "$anchor_file")
  basic="Basic $(printf 'bench:%s' 'bench-secret-bench-secret-bench-secret' | base64 -w0)"
  local version
  version=$(node -p "require('./$modules/node_modules/oidc-provider/package.json').version")
  WRK_HEADER="Authorization: Bearer $access" wrk_run "http://127.0.0.1:$anchor_port/me" "$SECONDS_PER_PHASE" "$CONNECTIONS"
  OIDC_ROWS+=("| userinfo (\`/me\`) | oidc-provider $version (anchor) | $CONNECTIONS | $RPS | $P50 | $P99 | $BAD |")
  local a_info=$RPS a_info_p99=$P99
  wrk_run "http://127.0.0.1:$anchor_port/jwks" "$SECONDS_PER_PHASE" "$CONNECTIONS"
  OIDC_ROWS+=("| JWKS (\`/jwks\`) | oidc-provider $version (anchor) | $CONNECTIONS | $RPS | $P50 | $P99 | $BAD |")
  local a_jwks=$RPS a_jwks_p99=$P99
  # Last, as on Wicket.
  oidc_run anchor "$basic" "http://127.0.0.1:$anchor_port/token"
  OIDC_ROWS+=("| refresh-token grant | oidc-provider $version (anchor) | $CONNECTIONS | $RPS | $P50 | $P99 | $BAD |")
  local a_refresh=$RPS a_refresh_p99=$P99
  kill "$ANCHOR_PID"; wait "$ANCHOR_PID" 2>/dev/null || true; ANCHOR_PID=
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
  OIDC_SUMMARY="Wicket / oidc-provider, req/s: refresh grant **$(ratio "$w_refresh" "$a_refresh")×** (p99 $w_refresh_p99 vs $a_refresh_p99 ms), userinfo **$(ratio "$w_info" "$a_info")×** (p99 $w_info_p99 vs $a_info_p99 ms), JWKS **$(ratio "$w_jwks" "$a_jwks")×** (p99 $w_jwks_p99 vs $a_jwks_p99 ms); target: ahead on each."
}
oidc_table() {
  cat <<TABLE

OpenID Connect provider (Wicket on the file store, $(nproc) cores shared with wrk; the anchor is one Node process):

| flow | server | connections | req/s | p50 ms | p99 ms | non-200 |
|---|---|---|---|---|---|---|
$(printf '%s\n' "${OIDC_ROWS[@]}")

- $OIDC_SUMMARY
TABLE
}
if [ "${BENCH_ONLY:-}" = oidc ]; then
  oidc_phase
  oidc_table
  exit 0
fi

if [ "${BENCH_ONLY:-}" = guard ]; then
  guard_phase
  guard_table
  exit 0
fi

# --- Phase: the fast paths, default scrypt cost ------------------------------------
log "static and cabinet at $CONNECTIONS connections, interleaved, three rounds"
RATIOS=()
for round in 1 2 3; do
  reset_peak; wrk_run "$BASE/static/favicon.svg" "$SECONDS_PER_PHASE" "$CONNECTIONS"
  STATIC_RPS=$RPS
  [ "$round" = 3 ] && row "\`GET /static/favicon.svg\` | $CONNECTIONS | $RPS | $P50 | $P99 | $BAD | $(mib "$(proc_kb VmHWM)")"
  reset_peak; WRK_COOKIE=$BROWSER_COOKIE wrk_run "$BASE/cabinet" "$SECONDS_PER_PHASE" "$CONNECTIONS"
  CABINET_RPS=$RPS; CABINET_P99=$P99
  [ "$round" = 3 ] && row "\`GET /cabinet\` (1k sessions, 100 users) | $CONNECTIONS | $RPS | $P50 | $P99 | $BAD | $(mib "$(proc_kb VmHWM)")"
  RATIOS+=("$(awk -v a="$CABINET_RPS" -v b="$STATIC_RPS" 'BEGIN { printf "%.0f", 100 * a / b }')")
  P99S+=("$CABINET_P99")
done
RATIO="$(printf '%s\n' "${RATIOS[@]}" | sort -n | sed -n 2p)%"
ROUNDS="$(IFS=/; echo "${RATIOS[*]}")"
guard_phase

reset_peak; wrk_run "$BASE/" "$SECONDS_PER_PHASE" "$CONNECTIONS"
row "\`GET /\` anonymous | $CONNECTIONS | $RPS | $P50 | $P99 | $BAD | $(mib "$(proc_kb VmHWM)")"

# --- Phase: the anchor, the same members page on Django + gunicorn -----------------
# From PyPI (bench/anchors/requirements.txt) into a venv under target/; file sessions,
# the stock middleware, 2 workers x 8 threads. Measured while Wicket idles.
log "the Django anchor"
VENV=target/anchors-venv
if [ ! -x "$VENV/bin/gunicorn" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r bench/anchors/requirements.txt
fi
oidc_phase

ANCHOR=$WORK/django
mkdir -p "$ANCHOR"
ANCHOR_COOKIE=$(DJANGO_ANCHOR_DIR=$ANCHOR "$VENV/bin/python" bench/anchors/django_anchor.py seed)
DJANGO_ANCHOR_DIR=$ANCHOR "$VENV/bin/gunicorn" --chdir bench/anchors -w 2 --threads 8 -k gthread \
  -b "127.0.0.1:$((PORT + 1))" django_anchor:application >>"$WORK/django.log" 2>&1 &
ANCHOR_PID=$!
until curl -fs -o /dev/null -b "$ANCHOR_COOKIE" "http://127.0.0.1:$((PORT + 1))/cabinet"; do
  kill -0 "$ANCHOR_PID" 2>/dev/null || { cat "$WORK/django.log" >&2; exit 1; }
  sleep 0.1
done
WRK_COOKIE=$ANCHOR_COOKIE wrk_run "http://127.0.0.1:$((PORT + 1))/cabinet" "$SECONDS_PER_PHASE" "$CONNECTIONS"
ANCHOR_KB=$(for pid in "$ANCHOR_PID" $(pgrep -P "$ANCHOR_PID"); do
  awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status"; done | awk '{ n += $1 } END { print n }')
kill "$ANCHOR_PID"; wait "$ANCHOR_PID" 2>/dev/null || true; ANCHOR_PID=
row "\`GET /cabinet\` on Django $("$VENV/bin/python" -c 'import django; print(django.get_version())') + gunicorn 2×8, file sessions (anchor) | $CONNECTIONS | $RPS | $P50 | $P99 | $BAD | $(mib "$ANCHOR_KB") (all processes)"
ANCHOR_RPS=$RPS

log "the login page on the wire (Chromium)"
BYTES=$(node e2e/bytes.mjs "$BASE")
FIRST_BYTES=$(awk '$1 == "first" { print $2 }' <<<"$BYTES"); FIRST_REQS=$(awk '$1 == "first" { print $3 }' <<<"$BYTES")
REPEAT_BYTES=$(awk '$1 == "repeat" { print $2 }' <<<"$BYTES"); REPEAT_REQS=$(awk '$1 == "repeat" { print $3 }' <<<"$BYTES")

# --- Phase: logins at the default cost (ln=17) -------------------------------------
LOGIN_BODY="username=member&password=$(sed 's/ /+/g' <<<"$MEMBER_PASSWORD")&csrf=$CSRF_TOKEN"
log "logins at the default scrypt cost"
reset_peak
WANT=303 WRK_METHOD=POST WRK_BODY=$LOGIN_BODY WRK_COOKIE=$CSRF_COOKIE \
  wrk_run "$BASE/login" "$SECONDS_PER_PHASE" 4
row "\`POST /login\`, scrypt ln=17 | 4 | $RPS | $P50 | $P99 | $BAD | $(mib "$(proc_kb VmHWM)")"

# --- Phase: a flood of 200 concurrent logins, cabinet measured meanwhile ------------
PERMITS=$(nproc)
LIMIT_MIB=$((PERMITS * 128 + 64))
log "login flood: 200 connections for $((SECONDS_PER_PHASE * 2)) s, cabinet alongside"
reset_peak
FLOOD_OUT=$WORK/flood.txt
( WRK_COUNT=1 WRK_METHOD=POST WRK_BODY=$LOGIN_BODY WRK_COOKIE=$CSRF_COOKIE \
    wrk -t1 -c200 -d$((SECONDS_PER_PHASE * 2))s --timeout 60s -s bench/stats.lua "$BASE/login" >"$FLOOD_OUT" ) &
FLOOD=$!
sleep 1 # let the flood fill the queue before measuring the cabinet under it
WRK_COOKIE=$BROWSER_COOKIE wrk_run "$BASE/cabinet" "$SECONDS_PER_PHASE" 16
wait "$FLOOD"
FLOOD_HWM=$(mib "$(proc_kb VmHWM)")
FLOOD_STATUSES=$(awk '$1 == "STATUS" { printf "%s%s×%s", sep, $2, $3; sep=" " }' "$FLOOD_OUT")
FLOOD_BAD=$(awk '$1 == "STATUS" && $2 != 303 && $2 != 429 && $2 != 503 { n += $3 } $1 == "ERRORS" { n += $2 } END { print n + 0 }' "$FLOOD_OUT")
row "\`GET /cabinet\` during the flood | 16 | $RPS | $P50 | $P99 | $BAD | $FLOOD_HWM"
stop_server

# --- Phases: cabinet and registration as the data grows (scrypt ln=1) ---------------
# A cheap scrypt makes a registration's cost the store's work plus HTTP.
scale_phase() { # SESSIONS USERS
  reset_peak
  WRK_COOKIE=$BROWSER_COOKIE wrk_run "$BASE/cabinet" "$SECONDS_PER_PHASE" "$CONNECTIONS"
  local cab_rps=$RPS cab_p50=$P50 cab_p99=$P99 cab_bad=$BAD
  WRK_COOKIE=$READER_COOKIE wrk_run "$BASE/account" "$SECONDS_PER_PHASE" "$CONNECTIONS"
  local acct_rps=$RPS acct_p99=$P99 acct_bad=$BAD
  read -r CSRF_COOKIE CSRF_TOKEN < <(csrf_pair)
  WANT=303 WRK_REGISTER=1 WRK_RUN="u$1x" WRK_CSRF=$CSRF_TOKEN WRK_COOKIE=$CSRF_COOKIE \
    wrk_run "$BASE/register/" 3 4
  SCALE_ROWS+=("| $(printf "%'d" "$1") | $(printf "%'d" "$2") | $cab_rps | $cab_p50 | $cab_p99 | $cab_bad | $acct_rps | $acct_p99 | $acct_bad | $RPS | $P50 | $BAD | $(mib "$(proc_kb VmHWM)") |")
  [ "$1" = 1000 ] && BASE_CABINET_RPS=$cab_rps && BASE_ACCOUNT_RPS=$acct_rps
  LAST_CABINET_RPS=$cab_rps
  LAST_ACCOUNT_RPS=$acct_rps
  LAST_CABINET_P99=$cab_p99
}
SCALE_ROWS=()
start_server --scrypt-log-n 1 --sweep-interval 1h
# A reader logged in on ten browsers, as a seeded user at the largest size is (1M
# sessions / 100k users): the account page lists all ten.
read -r CSRF_COOKIE CSRF_TOKEN < <(csrf_pair)
login_as_reader() {
  curl -fs -o /dev/null -D - -b "$CSRF_COOKIE" --data-urlencode "username=reader" \
    --data-urlencode "password=$MEMBER_PASSWORD" --data-urlencode "confirm=$MEMBER_PASSWORD" \
    --data-urlencode "csrf=$CSRF_TOKEN" "$BASE$1" |
    awk -F'[ ;]' 'tolower($1) == "set-cookie:" && $2 ~ /^wicket_session=/ { print $2 }'
}
READER_COOKIE="$(login_as_reader /register/); $CSRF_COOKIE"
for _ in $(seq 9); do login_as_reader /login >/dev/null; done
scale_phase 1000 100
for step in "100000 10000" "1000000 100000"; do
  read -r want_sessions want_users <<<"$step"
  [ "$want_sessions" -le "$MAX_SESSIONS" ] || break
  have=$(find "$SESSIONS" -maxdepth 1 -name '*.json' | wc -l)
  log "seeding up to $want_sessions sessions and $want_users users"
  "$SEED" "$SESSIONS" "$DATA" $((want_sessions - have)) "$want_users" 3600
  sync # measure the steady state, not the writeback of a million fresh files
  scale_phase "$want_sessions" "$want_users"
done
TOTAL_SESSIONS=$(find "$SESSIONS" -maxdepth 1 -name '*.json' | wc -l)
TOTAL_USERS=$(find "$DATA/users" -maxdepth 1 -name '*.json' | wc -l)
stop_server
FLAT=$(awk -v a="$LAST_CABINET_RPS" -v b="$BASE_CABINET_RPS" 'BEGIN { printf "%.0f%%", 100 * a / b }')
ACCOUNT_FLAT=$(awk -v a="$LAST_ACCOUNT_RPS" -v b="$BASE_ACCOUNT_RPS" 'BEGIN { printf "%.0f%%", 100 * a / b }')

# --- Phase: start-up with all that data; then the sweep of the idle files ------------
log "start-up with $TOTAL_SESSIONS sessions and $TOTAL_USERS users"
start_server --scrypt-log-n 1 --sweep-interval 1s # the first sweep starts after 1 s
STARTUP_BIG_MS=$STARTUP_MS
IDLE_BIG_KB=$(proc_kb VmRSS)
reset_peak
WRK_COOKIE=$BROWSER_COOKIE wrk_run "$BASE/cabinet" "$SECONDS_PER_PHASE" "$CONNECTIONS"
SWEEP_P99=$P99 SWEEP_RPS=$RPS SWEEP_BAD=$BAD
until grep -q "swept ended sessions" "$LOG"; do sleep 0.2; done
SWEEP_LINE=$(grep "swept ended sessions" "$LOG" | head -1)
SWEPT=$(grep -o 'removed=[0-9]*' <<<"$SWEEP_LINE" | cut -d= -f2)
SWEEP_MS=$(grep -o 'ms=[0-9]*' <<<"$SWEEP_LINE" | cut -d= -f2)
LEFT=$(find "$SESSIONS" -maxdepth 1 -name '*.json' | wc -l)
SWEEP_HWM=$(mib "$(proc_kb VmHWM)")
stop_server

# --- The table ---------------------------------------------------------------------
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
cat <<EOF

Machine: $(nproc) cores ($cpu), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, $(uname -sr); wrk -t2, ${SECONDS_PER_PHASE} s per phase.

| phase | connections | req/s | p50 ms | p99 ms | unexpected answers (3 s count) | peak RSS MiB |
|---|---|---|---|---|---|---|
$(printf '%s\n' "${ROWS[@]}")

- Wicket's cabinet against the same page on Django + gunicorn, in this run: **$(awk -v a="$CABINET_RPS" -v b="$ANCHOR_RPS" 'BEGIN { printf "%.0f", a / b }')×** the requests per second.
- Cabinet / static throughput, median of three interleaved rounds: **$RATIO** (rounds $ROUNDS %; target ≥ 70%); cabinet p99 **$(IFS=/; echo "${P99S[*]}") ms** at $CONNECTIONS connections (target < 5 ms).
- The login page on the wire (\`e2e/bytes.mjs\`, Chromium's own byte counts, headers included): first visit **$FIRST_BYTES B** in $FIRST_REQS requests, repeat visit **$REPEAT_BYTES B** in $REPEAT_REQS (fingerprinted assets come from the cache).
- Login flood (200 connections, $((SECONDS_PER_PHASE * 2)) s, $PERMITS scrypt permits): answers $FLOOD_STATUSES; other than 303/429/503: **$FLOOD_BAD**; peak RSS **$FLOOD_HWM MiB** (limit $PERMITS × 128 + 64 = $LIMIT_MIB MiB).
- Idle RSS after start-up: **$(mib "$IDLE_KB") MiB** (1k sessions), **$(mib "$IDLE_BIG_KB") MiB** ($TOTAL_SESSIONS sessions) (target < 20 MiB).

Scale (scrypt ln=1 so that a registration costs the store's work plus HTTP):

| sessions on disk | users | cabinet req/s | p50 ms | p99 ms | non-200 (3 s count) | account req/s (10 sessions listed) | account p99 ms | non-200 | register req/s (4 conns) | register p50 ms | failed registers | peak RSS MiB |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
$(printf '%s\n' "${SCALE_ROWS[@]}")

- Cabinet throughput at the largest size vs 1k sessions / 100 users: **$FLAT** (target ≥ 90%).
- Account page (the member's 10 sessions listed) at the largest size vs 1k / 100: **$ACCOUNT_FLAT** (target ≥ 90%).
- Start-up to the first served request with $TOTAL_SESSIONS sessions and $TOTAL_USERS users: **${STARTUP_BIG_MS} ms** (target < 1 s; includes the polling interval of 5 ms).
$(guard_table)
- Sweep ending $SWEPT idle session files (renamed to \`.ended\`, index entries dropped) (starting 1 s after start-up): **${SWEEP_MS} ms**, $LEFT files left; cabinet meanwhile $SWEEP_RPS req/s, p99 **$SWEEP_P99 ms** (normal $LAST_CABINET_P99 ms; target < 2×), non-200: $SWEEP_BAD; peak RSS $SWEEP_HWM MiB.
$(oidc_table)
EOF
