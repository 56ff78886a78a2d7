#!/usr/bin/env bash
# Starts the release binary for the browser tests: throwaway dirs, a cheap scrypt,
# and throttles loose enough for one address driving many accounts.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
"$root/target/release/wicket" \
  --addr "127.0.0.1:${WICKET_E2E_PORT:-5055}" \
  --data-dir "$dir/data" \
  --sessions-dir "$dir/sessions" \
  --static-dir "$root/static" \
  --scrypt-log-n 10 \
  --throttle-login 50/15m \
  --throttle-register 1000/1h &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
wait "$server"
