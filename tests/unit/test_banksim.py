"""The bank simulator, served for real by uvicorn on loopback, calling back a real receiver."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import pytest_asyncio
import uvicorn

from banksim.app import create_app
from banksim.signing import sign, verify
from iso20022 import CreditTransfer, StatusReport, build_pacs008, parse_pacs002
from payments.settings import Settings

SECRET = "test-callback-secret"
VALID_CREDITOR_IBAN = "FR1420041010050500013M02606"
OTHER_VALID_IBAN = "NL91ABNA0417164300"
# matches the XSD pattern, fails the ISO 7064 checksum
BAD_CHECKSUM_IBAN = "DE89370400440532013001"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass
class Callback:
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float


@dataclass
class Receiver:
    """A minimal ASGI app standing in for the platform's callback endpoint."""

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

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Callback]:
        deadline = time.monotonic() + timeout
        while len(self.calls) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} callback(s), got {len(self.calls)}")
            await asyncio.sleep(0.02)
        return self.calls


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


def make_settings(tmp_path: Path, callback_url: str, delay: float = 0.1) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        banksim_callback_url=callback_url,
        banksim_settle_delay_seconds=delay,
        rail_callback_secret=SECRET,
    )


def pacs008(
    message_id: str,
    creditor_iban: str = VALID_CREDITOR_IBAN,
    amount_minor: int = 2500,
    remittance_info: str | None = None,
) -> bytes:
    return build_pacs008(
        CreditTransfer(
            message_id=message_id,
            end_to_end_id=f"e2e-{message_id}",
            amount_minor=amount_minor,
            currency="EUR",
            debtor_name="Payments Platform GmbH",
            debtor_iban="DE89370400440532013000",
            debtor_bic="COBADEFFXXX",
            creditor_name="Jane Doe",
            creditor_iban=creditor_iban,
            created_at=datetime(2025, 3, 4, 10, 0, tzinfo=UTC),
            remittance_info=remittance_info,
        )
    )


XML = {"Content-Type": "application/xml"}


@dataclass
class Bank:
    url: str
    http: httpx.AsyncClient
    receiver: Receiver
    settings: Settings

    async def submit(self, body: bytes) -> httpx.Response:
        return await self.http.post(f"{self.url}/v1/sepa/messages", content=body, headers=XML)


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    recv = Receiver()
    async with serve(recv, lifespan="off") as url:
        yield recv, f"{url}/v1/rails/sepa/callbacks"


@pytest_asyncio.fixture
async def bank(tmp_path: Path, receiver: tuple[Receiver, str]) -> AsyncIterator[Bank]:
    recv, callback_url = receiver
    settings = make_settings(tmp_path, callback_url)
    async with serve(create_app(settings)) as url, httpx.AsyncClient(timeout=10) as http:
        yield Bank(url, http, recv, settings)


def assert_signed(callback: Callback) -> None:
    timestamp = callback.headers["banksim-timestamp"]
    signature = callback.headers["banksim-signature"]
    assert verify(SECRET, timestamp, signature, callback.body, tolerance_seconds=60)
    # independent of banksim.signing: the documented scheme, computed here from scratch
    expected = hmac.new(
        SECRET.encode(), f"{timestamp}.".encode() + callback.body, hashlib.sha256
    ).hexdigest()
    assert signature == f"v1={expected}"
    assert abs(int(timestamp) - time.time()) < 60


def only_status(report: StatusReport) -> tuple[str, str | None]:
    [tx] = report.transactions
    return tx.status, tx.reason_code


@pytest.mark.asyncio
async def test_healthz(bank: Bank) -> None:
    response = await bank.http.get(f"{bank.url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.asyncio
async def test_accepted_message_settles_with_one_signed_callback(bank: Bank) -> None:
    body = pacs008("MSG-OK-1", remittance_info="Invoice 42")
    response = await bank.submit(body)
    assert response.status_code == 202
    assert response.json() == {"message_id": "MSG-OK-1", "status": "received", "duplicate": False}

    pending = await bank.http.get(f"{bank.url}/v1/sepa/messages/MSG-OK-1/status")
    assert pending.status_code == 202
    assert pending.json()["status"] == "pending"

    [callback] = await bank.receiver.wait_for(1)
    assert callback.path == "/v1/rails/sepa/callbacks"
    assert callback.headers["content-type"] == "application/xml"
    assert callback.headers["banksim-message-id"] == "MSG-OK-1"
    assert_signed(callback)
    report = parse_pacs002(callback.body)
    assert report.original_message_id == "MSG-OK-1"
    assert only_status(report) == ("ACSC", None)
    assert report.transactions[0].end_to_end_id == "e2e-MSG-OK-1"

    # the polling fallback serves the very same report
    status = await bank.http.get(f"{bank.url}/v1/sepa/messages/MSG-OK-1/status")
    assert status.status_code == 200
    assert status.headers["content-type"].startswith("application/xml")
    assert status.content == callback.body

    await asyncio.sleep(0.5)
    assert len(bank.receiver.calls) == 1


@pytest.mark.asyncio
async def test_rejection_rule_rejects_with_its_code(bank: Bank) -> None:
    rule = await bank.http.post(
        f"{bank.url}/v1/admin/rules",
        json={"creditor_iban": "NL91 ABNA 0417 1643 00", "reject_code": "AC04"},
    )
    assert rule.status_code == 201
    assert rule.json()["creditor_iban"] == OTHER_VALID_IBAN
    rules = await bank.http.get(f"{bank.url}/v1/admin/rules")
    assert [(r["creditor_iban"], r["reject_code"]) for r in rules.json()["data"]] == [
        (OTHER_VALID_IBAN, "AC04")
    ]

    assert (await bank.submit(pacs008("MSG-RULE-1", creditor_iban=OTHER_VALID_IBAN))).is_success
    assert (await bank.submit(pacs008("MSG-RULE-2"))).is_success  # another creditor: settles
    calls = await bank.receiver.wait_for(2)
    outcomes = {parse_pacs002(c.body).original_message_id: c for c in calls}
    assert only_status(parse_pacs002(outcomes["MSG-RULE-1"].body)) == ("RJCT", "AC04")
    assert only_status(parse_pacs002(outcomes["MSG-RULE-2"].body)) == ("ACSC", None)
    for call in calls:
        assert_signed(call)

    cleared = await bank.http.delete(f"{bank.url}/v1/admin/rules")
    assert cleared.json() == {"deleted": 1}
    assert (await bank.http.get(f"{bank.url}/v1/admin/rules")).json()["data"] == []
    assert (await bank.submit(pacs008("MSG-RULE-3", creditor_iban=OTHER_VALID_IBAN))).is_success
    calls = await bank.receiver.wait_for(3)
    assert only_status(parse_pacs002(calls[2].body)) == ("ACSC", None)


@pytest.mark.asyncio
async def test_rule_requires_an_iso_code(bank: Bank) -> None:
    response = await bank.http.post(
        f"{bank.url}/v1/admin/rules", json={"creditor_iban": OTHER_VALID_IBAN, "reject_code": "x"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "validation_error"


@pytest.mark.asyncio
async def test_invalid_iban_checksum_is_rejected_ac01(bank: Bank) -> None:
    response = await bank.submit(pacs008("MSG-AC01", creditor_iban=BAD_CHECKSUM_IBAN))
    assert response.status_code == 202  # schema-valid: the bank accepts, then rejects
    [callback] = await bank.receiver.wait_for(1)
    assert_signed(callback)
    assert only_status(parse_pacs002(callback.body)) == ("RJCT", "AC01")


@pytest.mark.asyncio
async def test_schema_invalid_body_is_a_400_problem(bank: Bank) -> None:
    broken = pacs008("MSG-BAD").replace(b"<ChrgBr>SLEV</ChrgBr>", b"<ChrgBr>NOPE</ChrgBr>")
    for body in (broken, b"<not-xml", b"<Document/>"):
        response = await bank.submit(body)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "schema_invalid"
        assert problem["status"] == 400
        assert {"type", "title", "status", "detail", "code"} <= problem.keys()
    assert "ChrgBr" in (await bank.submit(broken)).json()["detail"]

    wrong_type = await bank.http.post(
        f"{bank.url}/v1/sepa/messages",
        content=pacs008("MSG-JSON"),
        headers={"Content-Type": "application/json"},
    )
    assert wrong_type.status_code == 415
    assert wrong_type.json()["code"] == "unsupported_media_type"

    await asyncio.sleep(0.4)
    assert bank.receiver.calls == []
    unknown = await bank.http.get(f"{bank.url}/v1/sepa/messages/MSG-BAD/status")
    assert unknown.status_code == 404


@pytest.mark.asyncio
async def test_duplicates_are_idempotent_and_conflicts_refused(bank: Bank) -> None:
    body = pacs008("MSG-DUP")
    assert (await bank.submit(body)).status_code == 202
    again = await bank.submit(body)
    assert again.status_code == 200
    assert again.json() == {"message_id": "MSG-DUP", "status": "received", "duplicate": True}

    conflict = await bank.submit(pacs008("MSG-DUP", amount_minor=9999))
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    assert conflict.json()["code"] == "duplicate_message_id_conflict"

    await bank.receiver.wait_for(1)
    # a resend after settlement is still only an acknowledgement
    late = await bank.submit(body)
    assert late.status_code == 200
    assert late.json()["duplicate"] is True
    await asyncio.sleep(0.5)
    assert len(bank.receiver.calls) == 1
    assert only_status(parse_pacs002(bank.receiver.calls[0].body)) == ("ACSC", None)


@pytest.mark.asyncio
async def test_unknown_message_status_is_404(bank: Bank) -> None:
    response = await bank.http.get(f"{bank.url}/v1/sepa/messages/NEVER-SENT/status")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unknown_message"


@pytest.mark.asyncio
async def test_failed_callbacks_are_retried_until_acknowledged(bank: Bank) -> None:
    bank.receiver.failures = [500, 503]
    assert (await bank.submit(pacs008("MSG-RETRY"))).status_code == 202
    calls = await bank.receiver.wait_for(3)
    assert calls[1].received_at - calls[0].received_at >= 0.4  # backoff, not a hot loop
    assert len({c.body for c in calls}) == 1  # the same report every time
    for call in calls:
        assert_signed(call)
    await asyncio.sleep(0.5)
    assert len(bank.receiver.calls) == 3


@pytest.mark.asyncio
async def test_restart_resumes_undecided_and_undelivered_messages(
    tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    recv, callback_url = receiver
    slow = make_settings(tmp_path, callback_url, delay=0.5)
    async with serve(create_app(slow)) as url, httpx.AsyncClient() as http:
        response = await http.post(
            f"{url}/v1/sepa/messages", content=pacs008("MSG-R1"), headers=XML
        )
        assert response.status_code == 202
    # stopped before the settlement delay elapsed: nothing was decided or sent
    assert recv.calls == []

    fast = make_settings(tmp_path, callback_url, delay=0.1)
    recv.failures = [503]  # the platform is down for the first delivery...
    async with serve(create_app(fast)) as url, httpx.AsyncClient() as http:
        [first] = await recv.wait_for(1)
        assert only_status(parse_pacs002(first.body)) == ("ACSC", None)
        # ...and the simulator stops before its retry
    assert len(recv.calls) == 1

    async with serve(create_app(fast)) as url, httpx.AsyncClient() as http:
        calls = await recv.wait_for(2)
        assert calls[1].body == first.body  # the stored decision, not a new one
        assert_signed(calls[1])
        status = await http.get(f"{url}/v1/sepa/messages/MSG-R1/status")
        assert status.content == first.body
        await asyncio.sleep(0.3)
        assert len(recv.calls) == 2

    # delivered: a further restart sends nothing
    async with serve(create_app(fast)):
        await asyncio.sleep(0.3)
    assert len(recv.calls) == 2


def test_signing_verify_rejects_tampering_and_staleness() -> None:
    body = b"<Document/>"
    now = 1_700_000_000
    signature = sign("s3cret", now, body)
    assert signature.startswith("v1=")
    assert verify("s3cret", str(now), signature, body, 300, now=now + 10)
    assert verify("s3cret", str(now), f"v1=deadbeef, {signature}", body, 300, now=now)
    assert not verify("s3cret", str(now), signature, body + b" ", 300, now=now)
    assert not verify("other", str(now), signature, body, 300, now=now)
    assert not verify("s3cret", str(now), signature, body, 300, now=now + 301)
    assert not verify("s3cret", str(now + 1), signature, body, 300, now=now)
    assert not verify("s3cret", "not-a-number", signature, body, 300, now=now)
    assert not verify("s3cret", None, signature, body, 300, now=now)
    assert not verify("s3cret", str(now), None, body, 300, now=now)
    assert not verify("s3cret", str(now), signature.removeprefix("v1="), body, 300, now=now)
