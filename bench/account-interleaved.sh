#!/usr/bin/env bash
# The account page at 1k sessions / 100 users against 1M / 100k, interleaved: both
# servers run side by side and wrk alternates between them for three rounds, so the
# machine's drift hits both alike. Needs `cargo build --release --bin wicket --example
# seed` first (bench/run.sh does it) and ~3 GB of scratch space.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/wicket; SEED=target/release/examples/seed
W=$(mktemp -d /tmp/acct.XXXX)
start() { # NAME PORT
  "$BIN" --addr 127.0.0.1:$2 --data-dir $W/$1/data --sessions-dir $W/$1/sessions --static-dir static \
    --scrypt-log-n 1 --throttle-login off --throttle-register off --sweep-interval 1h >/dev/null 2>&1 &
  echo $!
}
reader() { # PORT -> cookie string with 10 sessions
  local base=http://127.0.0.1:$1 jar=$W/jar.$1 page token csrf c
  page=$(curl -fs -c $jar $base/); token=$(grep -o 'name="csrf" value="[0-9a-f]*"' <<<"$page" | sed 's/.*value="//; s/"$//')
  csrf=$(awk '$6 == "wicket_csrf" { print $6 "=" $7 }' $jar)
  c=$(curl -fs -o /dev/null -D - -b "$csrf" --data-urlencode username=reader --data-urlencode "password=reader password x" \
     --data-urlencode "confirm=reader password x" --data-urlencode csrf=$token $base/register/ | awk -F'[ ;]' 'tolower($1) == "set-cookie:" && $2 ~ /^wicket_session=/ { print $2 }')
  for _ in $(seq 9); do curl -fs -o /dev/null -b "$csrf" --data-urlencode username=reader --data-urlencode "password=reader password x" --data-urlencode csrf=$token $base/login; done
  echo "$c; $csrf"
}
"$SEED" $W/small/sessions $W/small/data 1000 100 >/dev/null
"$SEED" $W/big/sessions $W/big/data 1000000 100000 >/dev/null
sync
P1=$(start small 5091); P2=$(start big 5092)
until curl -fs -o /dev/null http://127.0.0.1:5091/ && curl -fs -o /dev/null http://127.0.0.1:5092/; do sleep 0.1; done
C1=$(reader 5091); C2=$(reader 5092)
for round in 1 2 3; do
  for port in 5091 5092; do
    c=$([ $port = 5091 ] && echo "$C1" || echo "$C2")
    rps=$(wrk -t2 -c64 -d5s -H "Cookie: $c" http://127.0.0.1:$port/account | awk '/Requests\/sec/ { print $2 }')
    echo "round $round port $port account req/s $rps"
  done
done
kill $P1 $P2; wait 2>/dev/null; rm -rf $W
