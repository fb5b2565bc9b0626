"""Helpers shared by the bank simulator's tests (no tests here).

The simulator is served for real by uvicorn on a free loopback port and calls back a tiny
ASGI receiver, also served by uvicorn, that records every request.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import uvicorn

from activities.bank_http import BankAuth
from banksim.app import create_app
from banksim.signing import verify
from iso20022 import CreditTransfer, build_pacs008
from kernel.settings import Settings
from nacha import Batch, EntryDetail, FileHeader, build_file

SECRET = "test-callback-secret"
VALID_CREDITOR_IBAN = "FR1420041010050500013M02606"
OTHER_VALID_IBAN = "NL91ABNA0417164300"
# matches the XSD pattern, fails the ISO 7064 checksum
BAD_CHECKSUM_IBAN = "DE89370400440532013001"
XML = {"Content-Type": "application/xml"}
TEXT = {"Content-Type": "text/plain"}
# Tuesday 10 March 2026, 09:00 in New York (EDT since 8 March): before the 10:30 cut-off
TUESDAY_0900_NY = datetime(2026, 3, 10, 13, 0, tzinfo=UTC)

SEPA_PATH = "/v1/rails/sepa/callbacks"
ACH_PATH = "/v1/rails/ach/callbacks"
RETURNS_PATH = "/v1/rails/ach/returns"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass
class Callback:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float


@dataclass
class Receiver:
    """A minimal ASGI app standing in for the platform's callback endpoints."""

    calls: list[Callback] = field(default_factory=list)
    # status codes to answer, in order, before answering 200 for good
    failures: list[int] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.calls.append(Callback(scope["path"], headers, body, time.monotonic()))
        status = self.failures.pop(0) if self.failures else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def on(self, path: str) -> list[Callback]:
        """The calls to `path`, in arrival order."""
        return [call for call in self.calls if call.path == path]

    async def wait_for(
        self, count: int, path: str | None = None, timeout: float = 10.0
    ) -> list[Callback]:
        """Wait until `count` calls (to `path`, if given) arrived; return them."""
        deadline = time.monotonic() + timeout
        while True:
            calls = self.calls if path is None else self.on(path)
            if len(calls) >= count:
                return calls
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} callback(s), got {len(calls)}")
            await asyncio.sleep(0.02)


@asynccontextmanager
async def serve(app: Any, *, lifespan: Literal["on", "off"] = "on") -> AsyncIterator[str]:
    """Run `app` with uvicorn on a free loopback port; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan=lifespan, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("server stopped during startup")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def make_settings(tmp_path: Path, receiver_url: str) -> Settings:
    """Settings pointing every callback at the receiver, with fast retries."""
    return Settings().updated(
        {
            "data_dir": tmp_path / "data",
            "banksim.callback_url": f"{receiver_url}{SEPA_PATH}",
            "banksim.ach_callback_url": f"{receiver_url}{ACH_PATH}",
            "banksim.ach_returns_url": f"{receiver_url}{RETURNS_PATH}",
            "banksim.settle_delay_seconds": 5.0,
            "banksim.callback_backoff_seconds": 0.2,
            "rails.callback_secret": SECRET,
        }
    )


@dataclass
class BankClient:
    """A running simulator and the receiver of its callbacks."""

    url: str
    http: httpx.AsyncClient
    receiver: Receiver
    settings: Settings

    async def submit(self, body: bytes) -> httpx.Response:
        """POST a pacs.008."""
        return await self.http.post(f"{self.url}/v1/sepa/messages", content=body, headers=XML)

    async def submit_file(self, text: str) -> httpx.Response:
        """POST a NACHA file."""
        return await self.http.post(f"{self.url}/v1/ach/files", content=text, headers=TEXT)

    async def file(self, file_id: str) -> dict[str, Any]:
        """GET a file's status."""
        response = await self.http.get(f"{self.url}/v1/ach/files/{file_id}")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def set_clock(
        self, now: datetime | None = None, speed: float | None = None
    ) -> dict[str, Any]:
        """PUT the simulator clock."""
        body: dict[str, Any] = {}
        if now is not None:
            body["now"] = now.isoformat()
        if speed is not None:
            body["speed"] = speed
        response = await self.http.put(f"{self.url}/v1/admin/clock", json=body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def advance(self, seconds: float | None = None, to: str | None = None) -> dict[str, Any]:
        """Advance the simulator clock."""
        body = {"seconds": seconds} if seconds is not None else {"to": to}
        response = await self.http.post(f"{self.url}/v1/admin/clock/advance", json=body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def set_faults(self, **faults: Any) -> None:
        """PUT the faults."""
        response = await self.http.put(f"{self.url}/v1/admin/faults", json=faults)
        assert response.status_code == 200, response.text

    async def add_rule(self, **rule: Any) -> httpx.Response:
        """POST a rule."""
        return await self.http.post(f"{self.url}/v1/admin/rules", json=rule)

    async def statement(self, day: date, account: str | None = None) -> httpx.Response:
        """GET the camt.053 of `day`."""
        params = {"account": account} if account else {}
        return await self.http.get(f"{self.url}/v1/statements/{day.isoformat()}", params=params)


@asynccontextmanager
async def running_receiver() -> AsyncIterator[tuple[Receiver, str]]:
    """A receiver served on a free port, and its base URL."""
    receiver = Receiver()
    async with serve(receiver, lifespan="off") as url:
        yield receiver, url


@asynccontextmanager
async def running_bank(
    settings: Settings, receiver: Receiver, *, start: datetime | None = TUESDAY_0900_NY
) -> AsyncIterator[BankClient]:
    """The simulator on a free port; its clock frozen at `start` unless None (then untouched)."""
    async with (
        serve(create_app(settings)) as url,
        # the rail routes take requests the platform signed (activities/bank_http.py)
        httpx.AsyncClient(timeout=10, auth=BankAuth(url, settings.rails.submission_secret)) as http,
    ):
        client = BankClient(url, http, receiver, settings)
        if start is not None:
            await client.set_clock(now=start, speed=0)
        yield client


def assert_signed(callback: Callback) -> None:
    """The callback carries a fresh, valid `v2=` HMAC-SHA256 signature of its event id,
    timestamp and body."""
    event_id = callback.headers["banksim-event-id"]
    timestamp = callback.headers["banksim-timestamp"]
    signature = callback.headers["banksim-signature"]
    assert verify([SECRET], event_id, timestamp, signature, callback.body, tolerance_seconds=60)
    # independent of banksim.signing: the documented scheme, computed here from scratch
    expected = hmac.new(
        SECRET.encode(), f"{event_id}.{timestamp}.".encode() + callback.body, hashlib.sha256
    ).hexdigest()
    assert signature == f"v2={expected}"
    assert abs(int(timestamp) - time.time()) < 60


def pacs008(
    message_id: str,
    creditor_iban: str = VALID_CREDITOR_IBAN,
    amount_minor: int = 2500,
    currency: str = "EUR",
) -> bytes:
    """A one-transaction pacs.008 whose end-to-end id is `e2e-<message_id>`."""
    return build_pacs008(
        CreditTransfer(
            message_id=message_id,
            end_to_end_id=f"e2e-{message_id}",
            amount_minor=amount_minor,
            currency=currency,
            debtor_name="Payments Platform GmbH",
            debtor_iban="DE89370400440532013000",
            debtor_bic="COBADEFFXXX",
            creditor_name="Jane Doe",
            creditor_iban=creditor_iban,
            created_at=datetime(2026, 3, 10, 10, 0, tzinfo=UTC),
        )
    )


ODFI = "12210515"


@dataclass(frozen=True)
class Entry:
    """An entry to put in a test file: account, cents, individual id (payment id)."""

    account: str
    cents: int
    individual_id: str
    code: int = 22  # checking credit
    routing: str = "011000015"


def nacha_file(
    entries: list[Entry], *, created: datetime = datetime(2026, 3, 10, 8, 15), modifier: str = "A"
) -> str:
    """A valid PPD credits file from the platform (origin 122105155) to the bank (021000021)."""
    header = FileHeader(
        immediate_destination="021000021",
        immediate_origin="122105155",
        destination_name="BANKSIM",
        origin_name="PAYMENTS PLATFORM",
        file_creation=created,
        file_id_modifier=modifier,
    )
    batch = Batch(
        service_class_code=220 if all(e.code in (22, 32) for e in entries) else 200,
        company_name="PAYMENTS PLATFRM",
        company_identification="1122105155",
        sec_code="PPD",
        company_entry_description="PAYOUT",
        effective_entry_date=created.date(),
        originating_dfi=ODFI,
        batch_number=1,
        entries=[
            EntryDetail(
                e.code,
                e.routing,
                e.account,
                e.cents,
                e.individual_id,
                "JANE DOE",
                "",
                None,
                f"{ODFI}{n:07d}",
            )
            for n, e in enumerate(entries, 1)
        ],
    )
    return build_file(header, [batch])


def file_id(created: datetime = datetime(2026, 3, 10, 8, 15), modifier: str = "A") -> str:
    """The id the bank gives a `nacha_file` created at `created`."""
    return f"122105155-{created:%y%m%d}-{created:%H%M}-{modifier}"
