#!/bin/sh
# Creates the secrets docker-compose.yml mounts, fresh and random, beside it (docs/compose.md):
#   secrets/<NAME>   one file per secret, mounted read-only at /run/secrets/<NAME>; the
#                    platform reads PAYMENTS_* from there (kernel/settings.py SECRETS_DIR)
#   secrets-ca/      the key of the CA that issues Temporal's certificates, mounted nowhere
#   .env             TEMPORAL_DB_PASSWORD only: the Temporal images read their database
#                    password from the environment and nothing else
# It never overwrites: an existing secret is kept (rotating one is a deliberate act,
# docs/runbooks). Needs sh, od, head, base64 and openssl (Temporal's certificates).
#   sh deploy/compose/make-secrets.sh [directory of docker-compose.yml, default: .]
set -eu
root="${1:-.}"
dir="$root/secrets"
umask 077
mkdir -p "$dir"
# the directory keeps other users of this machine out; the files themselves must be readable
# by the containers' own users (uid 10001, postgres, grafana), to which compose bind-mounts
# them with their mode on this machine
chmod 700 "$dir"

hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
key() { head -c 32 /dev/urandom | base64 | tr -d '\n'; }

put() {  # put NAME VALUE: write the secret unless it exists
  if [ ! -e "$dir/$1" ]; then
    printf '%s' "$2" >"$dir/$1"
    chmod 644 "$dir/$1"
    echo "created secrets/$1"
  fi
}

put postgres_password "$(hex 24)"
put ledger_db_password "$(hex 24)"
put grafana_admin_password "$(hex 24)"
# the ledger role's URL carries the ledger password (deploy/compose/postgres/init-databases.sh)
put PAYMENTS_DATABASE_URL \
  "postgresql+psycopg://payments:$(cat "$dir/ledger_db_password")@postgres:5432/payments"
put PAYMENTS_RAIL_CALLBACK_SECRET "$(hex 32)"
put PAYMENTS_RAIL_SUBMISSION_SECRET "$(hex 32)"
put PAYMENTS_REVIEW_TOKEN_SECRETS "$(hex 32)"
key_id="k-$(date +%Y-%m)"
put PAYMENTS_PAYLOAD_KEY_ID "$key_id"
put PAYMENTS_PAYLOAD_KEYS "$(cat "$dir/PAYMENTS_PAYLOAD_KEY_ID"):$(key)"

# Temporal speaks mutual TLS (docs/compose.md): a private CA for this stack, the server's
# certificate (frontend and internode, named `temporal` as the other services reach it) and one
# client certificate for the Temporal clients here (API, workers, Web UI, namespace set-up).
# The CA's key lives apart, in secrets-ca/, and is mounted nowhere: it only issues certificates.
# Renewal: delete the temporal_server.* and temporal_client.* files, run this again, then
# `docker compose up -d --force-recreate`.
command -v openssl >/dev/null 2>&1 || {
  echo "make-secrets.sh: openssl is needed for Temporal's TLS certificates" >&2
  exit 1
}
ca="$root/secrets-ca"
mkdir -p "$ca"
chmod 700 "$ca"
if [ ! -e "$dir/temporal_ca.crt" ]; then
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$ca/temporal_ca.key" -out "$dir/temporal_ca.crt" -days 3650 \
    -subj "/CN=payments temporal CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  chmod 600 "$ca/temporal_ca.key"
  chmod 644 "$dir/temporal_ca.crt"
  echo "created secrets/temporal_ca.crt and secrets-ca/temporal_ca.key"
fi

issue() {  # issue NAME COMMON_NAME EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]: unless it exists
  [ -e "$dir/$1.crt" ] && return 0
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/$1.key" -out "$dir/$1.csr" -subj "/CN=$2" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature"
    echo "extendedKeyUsage=$3"
    if [ -n "${4:-}" ]; then echo "subjectAltName=$4"; fi
  } >"$dir/$1.ext"
  openssl x509 -req -in "$dir/$1.csr" -CA "$dir/temporal_ca.crt" -CAkey "$ca/temporal_ca.key" \
    -set_serial "0x$(hex 16)" -days 365 -sha256 -extfile "$dir/$1.ext" \
    -out "$dir/$1.crt" 2>/dev/null
  rm -f "$dir/$1.csr" "$dir/$1.ext"
  chmod 644 "$dir/$1.key" "$dir/$1.crt"
  echo "created secrets/$1.crt and .key"
}
# the server presents its certificate to clients and, internode, to itself
issue temporal_server temporal serverAuth,clientAuth "DNS:temporal,DNS:localhost,IP:127.0.0.1"
issue temporal_client payments-platform clientAuth

if ! grep -qs '^TEMPORAL_DB_PASSWORD=' "$root/.env"; then
  echo "TEMPORAL_DB_PASSWORD=$(hex 24)" >>"$root/.env"
  echo "added TEMPORAL_DB_PASSWORD to .env"
fi
chmod 600 "$root/.env"
