#!/usr/bin/env bash
# Runs every Wicket test: formatting, lints, unit + integration tests, and the
# Playwright suite in Debian's Chromium. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages: Chromium for the browser suite, redis-server for the Redis store's
# tests (each test starts its own on a free loopback port and stops it).
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (Debian packages)"
  as_root apt-get update -q
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

echo "== npm ci (e2e/)"
(cd e2e && npm ci --no-audit --no-fund)

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== no import cycles between files of src/"
python3 .ci/import-cycles.py

echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --locked

echo "== cargo build --release"
cargo build --release --locked

echo "== playwright (e2e/)"
(cd e2e && CI="${CI:-}" npx playwright test)
