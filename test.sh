#!/usr/bin/env bash
# Runs every Wicket test: formatting, lints, unit + integration tests, and the
# Playwright suite in Debian's Chromium. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing chromium (Debian package)"
  as_root apt-get update -q
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends chromium
fi

echo "== npm ci (e2e/)"
(cd e2e && npm ci --no-audit --no-fund)

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --locked

echo "== cargo build --release"
cargo build --release --locked

echo "== playwright (e2e/)"
(cd e2e && CI="${CI:-}" npx playwright test)
