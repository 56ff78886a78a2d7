#!/usr/bin/env bash
# Prints an nginx.conf for a throwaway instance in DIR (its own pid, log and temp
# paths; no root config touched) that includes each SITE file: serve-tls.sh and
# serve-guard.sh run deploy/'s sites under it.
#   e2e/nginx-main.sh DIR SITE... > DIR/nginx.conf
set -euo pipefail
dir="$1"; shift
mkdir -p "$dir/tmp"
cat <<CONF
worker_processes 1;
error_log $dir/error.log;
pid $dir/nginx.pid;
events { worker_connections 512; }
http {
    include /etc/nginx/mime.types;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
$(for site in "$@"; do echo "    include $site;"; done)
}
CONF
