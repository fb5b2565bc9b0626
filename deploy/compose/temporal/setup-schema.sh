#!/bin/sh
# Temporal's own schema on PostgreSQL (plugin postgres12), with the admin-tools image's
# temporal-sql-tool. The databases exist already (deploy/compose/postgres/init-databases.sh).
# Both steps are idempotent: setup-schema skips a database past version 0.0, and
# update-schema applies only the versions it has not applied yet. It therefore runs on every
# `docker compose up`, and a newer server image brings its schema upgrades with it.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
port="${DB_PORT:-5432}"
schema_root=/etc/temporal/schema/postgresql/v12
for pair in temporal:temporal temporal_visibility:visibility; do
  db="${pair%%:*}"
  dir="${pair##*:}"
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$port" -u "$POSTGRES_USER" \
    --db "$db" setup-schema -v 0.0
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$port" -u "$POSTGRES_USER" \
    --db "$db" update-schema -d "$schema_root/$dir/versioned"
done
echo "temporal schema is current"
