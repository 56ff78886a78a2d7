#!/usr/bin/env bash
# An app that logs its users in through Wicket's OpenID Connect provider, for the
# browser suite's `oidc` projects: Debian's Apache with mod_auth_openidc (a real
# relying party) configured from deploy/apache-oidc.conf, protecting pages that show
# the claims it received; Wicket at http://localhost:PORT (a name, so passkeys work)
# with the client registered. Wicket's dirs are in $WICKET_E2E_OIDC_DIR, where the
# tests run `wicket invite create`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
port="${WICKET_E2E_OIDC_PORT:?}"
apache_port="${WICKET_E2E_APACHE_PORT:?}"
dir="${WICKET_E2E_OIDC_DIR:?}"
bin="${WICKET_BIN:-$root/target/release/wicket}"
site="http://127.0.0.1:$apache_port"
mkdir -p "$dir/apache/www/protected" "$dir/apache/run"

# A new client secret, from the command the README gives.
made="$("$bin" oidc client-secret)"
secret="$(sed -n 's/^client secret.*: //p' <<<"$made")"
hash="$(sed -n 's/^for the clients file: *secret_hash = "\(.*\)"$/\1/p' <<<"$made")"
[ -n "$secret" ] && [ -n "$hash" ] || { echo "serve-oidc: cannot read '$made'" >&2; exit 1; }
cat > "$dir/clients.toml" <<TOML
[[client]]
id = "apache"
name = "Team pages"
redirect_uris = ["$site/protected/redirect_uri"]
post_logout_redirect_uris = ["$site/loggedout.html"]
secret_hash = "$hash"

# For openid-client (npm), driven by oidc.spec.ts: EdDSA-signed ID tokens.
[[client]]
id = "node"
name = "Node client"
redirect_uris = ["$site/callback.html"]
post_logout_redirect_uris = ["$site/loggedout.html"]
secret_hash = "$hash"
trusted = true
id_token_signed_response_alg = "EdDSA"
TOML
# The tests' own client (openid-client) reads its secret here.
printf '%s' "$secret" > "$dir/client-secret"

"$bin" \
  --addr "127.0.0.1:$port" \
  --public-url "http://localhost:$port" \
  --oidc-clients "$dir/clients.toml" \
  --registration invite \
  --data-dir "$dir/data" \
  --sessions-dir "$dir/sessions" \
  --static-dir "$root/static" \
  --scrypt-log-n 10 \
  --throttle-login 50/15m \
  --throttle-register 1000/1h &
wicket=$!

# The deploy file, with this machine's names, ports and secrets.
python3 - "$root/deploy/apache-oidc.conf" "$dir/oidc.conf" "$port" "$site" "$secret" <<'PY'
import secrets, sys
src, out, port, site, secret = sys.argv[1:]
text = open(src).read()
for old, new in [
    ("https://login.example.com", f"http://localhost:{port}"),
    ("https://pages.example.com", site),
    ("https%3A%2F%2Fpages.example.com", site.replace(":", "%3A").replace("/", "%2F")),
    ("CLIENT_SECRET_FROM_WICKET", secret),
    ("A_LONG_RANDOM_PASSPHRASE", secrets.token_hex(32)),
]:
    if old not in text:
        sys.exit(f"serve-oidc: {old!r} missing from {src}")
    text = text.replace(old, new)
open(out, "w").write(text)
PY
modules=/usr/lib/apache2/modules
cat > "$dir/httpd.conf" <<CONF
ServerRoot "$dir/apache"
ServerName 127.0.0.1
Listen 127.0.0.1:$apache_port
PidFile "$dir/apache/run/httpd.pid"
DefaultRuntimeDir "$dir/apache/run"
ErrorLog "$dir/apache/error.log"
LogLevel warn auth_openidc:info
User www-data
Group www-data
LoadModule mpm_event_module $modules/mod_mpm_event.so
LoadModule authn_core_module $modules/mod_authn_core.so
LoadModule authz_core_module $modules/mod_authz_core.so
LoadModule authz_user_module $modules/mod_authz_user.so
LoadModule mime_module $modules/mod_mime.so
LoadModule include_module $modules/mod_include.so
LoadModule auth_openidc_module $modules/mod_auth_openidc.so
TypesConfig /etc/mime.types
AddType text/html .shtml
AddOutputFilter INCLUDES .shtml
DocumentRoot "$dir/apache/www"
<Directory "$dir/apache/www">
    Options +Includes
    Require all granted
</Directory>
Include "$dir/oidc.conf"
CONF

claim() { printf '<dt>%s</dt><dd data-claim="%s"><!--#echo var="OIDC_CLAIM_%s" --></dd>\n' "$1" "$1" "$1"; }
{
  printf '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Team pages</title></head><body><main>\n'
  printf '<h1>Team pages</h1>\n<p>Logged in through Wicket as <strong data-user><!--#echo var="REMOTE_USER" --></strong>.</p>\n<dl>\n'
  for name in sub preferred_username groups amr acr; do claim "$name"; done
  printf '</dl>\n<p><a href="/protected/redirect_uri?logout=%s">Log out</a></p>\n</main></body></html>\n' \
    "$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$site/loggedout.html")"
} > "$dir/apache/www/protected/index.shtml"
printf '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Logged out</title></head><body><main><h1>You are logged out of the team pages</h1><p><a href="/protected/index.shtml">Log in again</a></p></main></body></html>\n' \
  > "$dir/apache/www/loggedout.html"
printf '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Callback</title></head><body><main><h1>Back at the app</h1></main></body></html>\n' \
  > "$dir/apache/www/callback.html"
# Apache's workers (www-data) read the pages; Wicket's own dirs stay private.
chmod 755 "$dir" "$dir/apache"
chmod -R a+rX "$dir/apache/www"

until curl -s -o /dev/null "http://127.0.0.1:$port/healthz"; do
  kill -0 "$wicket" || exit 1
  sleep 0.1
done
/usr/sbin/apache2 -f "$dir/httpd.conf" -DFOREGROUND &
apache=$!
trap 'kill "$wicket" "$apache" 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
wait -n "$wicket" "$apache"
