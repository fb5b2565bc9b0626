#!/bin/sh
# Runs once, when the PostgreSQL volume is empty (docker-entrypoint-initdb.d).
# One server, two owners: the payments ledger (role `payments`) and Temporal's persistence
# and visibility stores (role `temporal`). In production these are separate clusters.
# The ledger password is a mounted secret file (docker-compose.yml `secrets:`); Temporal's
# comes from the environment, the only place the Temporal images read it from.
set -eu
ledger_password="$(cat /run/secrets/ledger_db_password)"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v ledger_password="$ledger_password" -v temporal_password="$TEMPORAL_DB_PASSWORD" <<'SQL'
CREATE ROLE payments LOGIN PASSWORD :'ledger_password';
CREATE DATABASE payments OWNER payments;
CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
SQL
