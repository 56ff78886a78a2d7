#!/usr/bin/env bash
# Runs every Wicket test: formatting, lints, unit + integration tests, and the
# Playwright suite in Debian's Chromium. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages: Chromium for the browser suite; redis-server for the Redis store's
# tests (each test starts its own on a free loopback port and stops it); nginx and
# openssl for the browser suite's `tls` project (Wicket behind deploy/'s nginx site
# with a throwaway certificate, and the `guard` projects' nginx auth_request); caddy
# for the `guard` projects' forward_auth (curl waits for both); systemd for checking
# deploy/'s unit; python3-aiosmtpd, a real SMTP server the mail tests start on free
# loopback ports; Apache with mod_auth_openidc, the relying party the `oidc` projects
# log in through Wicket's OpenID Connect provider (media-types: its /etc/mime.types);
# Prometheus (with promtool), which a test starts to scrape --metrics-addr; htpasswd
# (apache2-utils) and argon2-cffi (python3-argon2), which make the import tests' files.
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have_smtpd() { [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null; }
missing=()
have chromium || missing+=(chromium)
have redis-server || missing+=(redis-server)
have nginx || missing+=(nginx)
have openssl || missing+=(openssl)
have caddy || missing+=(caddy)
have curl || missing+=(curl)
have systemd-analyze || missing+=(systemd)
have_smtpd || missing+=(python3-aiosmtpd)
[ -x /usr/sbin/apache2 ] || missing+=(apache2-bin)
[ -e /usr/lib/apache2/modules/mod_auth_openidc.so ] || missing+=(libapache2-mod-auth-openidc)
[ -e /etc/mime.types ] || missing+=(media-types)
have promtool || missing+=(prometheus)
have htpasswd || missing+=(apache2-utils)
/usr/bin/python3 -c 'import argon2' 2>/dev/null || missing+=(python3-argon2)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (Debian packages)"
  as_root apt-get update -q
  # The tests start their own nginx and redis-server on free ports: keep the packages
  # from starting system-wide ones on 80 and 6379 (which also fails where 80 is taken).
  guard=/usr/sbin/policy-rc.d placed=""
  if [ ! -e "$guard" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$guard" >/dev/null
    as_root chmod 755 "$guard"
    placed=yes
    trap 'as_root rm -f "$guard"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
  if [ -n "$placed" ]; then
    as_root rm -f "$guard"
    trap - EXIT
  fi
fi

# Each step's time, printed at the end (and on a failure, up to the failing step).
timings=()
step_name=""
step_start=$SECONDS
finish_step() {
  if [ -n "$step_name" ]; then
    timings+=("$(printf '%6ds  %s' $((SECONDS - step_start)) "$step_name")")
  fi
}
step() {
  finish_step
  step_name=$1
  step_start=$SECONDS
  echo "== $1"
}
report() {
  finish_step
  step_name=""
  if [ -n "${WICKET_TEST_SKIPS:-}" ]; then
    if [ -s "$WICKET_TEST_SKIPS" ]; then
      echo "== skipped tests: $(wc -l <"$WICKET_TEST_SKIPS")"
      cat "$WICKET_TEST_SKIPS"
    else
      echo "== no tests skipped"
    fi
    rm -f "$WICKET_TEST_SKIPS"
  fi
  echo "== time per step"
  printf '%s\n' "${timings[@]}"
  printf '%6ds  all\n' "$SECONDS"
}
trap report EXIT

step "npm ci (e2e/)"
(cd e2e && npm ci --no-audit --no-fund)

step "cargo fmt --check"
cargo fmt --all -- --check

step "no import cycles between files of src/"
python3 .ci/import-cycles.py

step "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

# A test that cannot run here (e.g. `chattr +i` refused by the file system) appends a
# `SKIPPED: <test>: <reason>` line to this file rather than passing silently (cargo
# hides a passing test's output); the lines are printed when this script exits.
WICKET_TEST_SKIPS="$(mktemp)"
export WICKET_TEST_SKIPS

step "cargo test (unit and black-box; also builds the binary the browsers use)"
cargo test --locked
# One build serves everything below: the test profile optimises what is slow (scrypt,
# compression, zxcvbn), and a second, release build of every dependency would cost
# minutes. `bench/run.sh` measures the release binary.
export WICKET_BIN="$PWD/target/debug/wicket"

step "deploy/: the systemd unit verifies and is sandboxed"
deploy/verify-unit.sh

step "playwright (e2e/: js, no-js, tls through nginx, passkeys on localhost, guard-js and guard-no-js through nginx and Caddy, oidc-js and oidc-no-js through Apache)"
(cd e2e && CI="${CI:-}" npx playwright test)

step "lighthouse (e2e/lighthouse.mjs: 4 pages x mobile, desktop; reports in e2e/lighthouse-reports/)"
(cd e2e && node lighthouse.mjs)
