#!/bin/sh
# Continuous WAL archiving (docs/backups.md): pg_receivewal streams every commit of the
# server into the archive volume through a replication slot (the server keeps its WAL until
# the archive has it). It exits when the connection drops; compose restarts it, and the slot
# is made again if a restore dropped it.
set -eu
PGPASSWORD="$(cat /run/secrets/postgres_password)"
export PGPASSWORD
archive=/var/lib/postgresql/data/wal
mkdir -p "$archive"
pg_receivewal -h postgres -U postgres --slot payments_wal --create-slot --if-not-exists
exec pg_receivewal -h postgres -U postgres -D "$archive" --slot payments_wal --synchronous --no-loop
