#!/bin/sh
# Runs once, when the PostgreSQL volume is empty: the WAL archiver (service wal-archive)
# and pg_basebackup connect as `postgres` over the backend network for replication.
set -eu
echo "host replication postgres all scram-sha-256" >> "$PGDATA/pg_hba.conf"
