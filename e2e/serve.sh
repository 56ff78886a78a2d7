#!/usr/bin/env bash
# Starts Wicket for the browser tests ($WICKET_BIN: the test command's build, else the
# release binary): throwaway dirs, a cheap scrypt,
# throttles loose enough for one address driving many accounts, and mail through a
# real SMTP server (Debian's python3-aiosmtpd) into the Maildir $WICKET_E2E_MAILDIR,
# where the tests read the links.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
port=${WICKET_E2E_PORT:-5055}
# The name the browser uses: passkeys need a domain name (localhost is one), not an IP.
host=${WICKET_E2E_HOST:-127.0.0.1}
smtp_port=${WICKET_E2E_SMTP_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
maildir=${WICKET_E2E_MAILDIR:-$dir/mail}
mkdir -p "$maildir/tmp" "$maildir/new" "$maildir/cur"
/usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$smtp_port" -c aiosmtpd.handlers.Mailbox "$maildir" &
smtpd=$!
"${WICKET_BIN:-$root/target/release/wicket}" \
  --addr "127.0.0.1:$port" \
  --public-url "http://$host:$port" \
  --smtp-url "smtp://127.0.0.1:$smtp_port" \
  --mail-from "Wicket <wicket@example.com>" \
  --throttle-forgot 1000/1h \
  --data-dir "$dir/data" \
  --sessions-dir "$dir/sessions" \
  --static-dir "$root/static" \
  --scrypt-log-n 10 \
  --throttle-login 50/15m \
  --throttle-register 1000/1h &
server=$!
trap 'kill "$server" "$smtpd" 2>/dev/null; wait "$server" "$smtpd" 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
wait "$server"
