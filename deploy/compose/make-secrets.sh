#!/bin/sh
# Creates the secrets docker-compose.yml mounts, fresh and random, beside it (docs/compose.md):
#   secrets/<NAME>   one file per secret, mounted read-only at /run/secrets/<NAME>; the
#                    platform reads PAYMENTS_* from there (kernel/settings.py SECRETS_DIR)
#   .env             TEMPORAL_DB_PASSWORD only: the Temporal images read their database
#                    password from the environment and nothing else
# It never overwrites: an existing secret is kept (rotating one is a deliberate act,
# docs/runbooks). Needs only sh, od, head and base64.
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

if ! grep -qs '^TEMPORAL_DB_PASSWORD=' "$root/.env"; then
  echo "TEMPORAL_DB_PASSWORD=$(hex 24)" >>"$root/.env"
  echo "added TEMPORAL_DB_PASSWORD to .env"
fi
chmod 600 "$root/.env"
