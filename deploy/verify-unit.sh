#!/usr/bin/env bash
# Checks deploy/wicket.service as systemd reads it: the unit verifies (with the built
# binary in place of /usr/local/bin/wicket), and its sandbox rates "OK" or better in
# `systemd-analyze security` (an exposure of at most 2.0 out of 10).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
sed "s|/usr/local/bin/wicket|${WICKET_BIN:-$root/target/release/wicket}|" "$root/deploy/wicket.service" > "$dir/wicket.service"
systemd-analyze verify "$dir/wicket.service"
systemd-analyze security --offline=yes --threshold=20 --no-pager "$dir/wicket.service" \
  | grep 'Overall exposure level'
