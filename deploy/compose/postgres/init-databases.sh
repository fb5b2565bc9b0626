#!/bin/sh
# Runs once, when the PostgreSQL volume is empty (docker-entrypoint-initdb.d).
# One server, two owners: the payments ledger (role `payments`) and Temporal's persistence
# and visibility stores (role `temporal`). In production these are separate clusters.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v ledger_password="$LEDGER_DB_PASSWORD" -v temporal_password="$TEMPORAL_DB_PASSWORD" <<'SQL'
CREATE ROLE payments LOGIN PASSWORD :'ledger_password';
CREATE DATABASE payments OWNER payments;
CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
SQL
