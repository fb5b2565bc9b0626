"""The SEPA rail adapter against the real bank simulator, and the signed callback endpoint."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime

import httpx

from activities.rails import SepaAdapter
from iso20022.pacs002 import StatusReport, TransactionStatus, build_pacs002
from ops.devstack import Stack
from tests.bank_client import bank_client
from tests.integration.helpers import (
    Tenant,
    balances,
    fresh_iban,
    funded_account,
    pay,
    payment_body,
    wait_for_status,
)
from workflows.models import Creditor, PollInput, SubmitInput


def submit_input(payment_id: str) -> SubmitInput:
    return SubmitInput(
        payment_id=payment_id,
        amount=4_200,
        currency="EUR",
        rail="sepa",
        debtor_name="Ada Lovelace",
        creditor=Creditor("Erika Mustermann", "DE", iban="DE89370400440532013000"),
        remittance_info="rent",
        created_at=datetime(2026, 11, 29, 9, 0, tzinfo=UTC).isoformat(),
    )


async def test_resubmission_after_a_crash_is_recognised_as_the_same_message(
    stack: Stack,
) -> None:
    payment_id = f"pay_{uuid.uuid4().hex[:20]}"
    async with bank_client(stack.settings, timeout=10) as client:
        rails = SepaAdapter(client, stack.settings)
        first = await rails.submit(submit_input(payment_id))
        again = await rails.submit(submit_input(payment_id))
        assert (first.message_id, first.duplicate) == (payment_id, False)
        assert (again.message_id, again.duplicate) == (payment_id, True)
        poll = PollInput("sepa", payment_id, payment_id)
        for _ in range(100):
            result = await rails.poll(poll)
            if result.event is not None and result.event.status != "ACCP":
                break
            await asyncio.sleep(0.1)
    assert result.event is not None
    assert (result.event.status, result.event.reason_code) == ("ACSC", None)


def signed(secret: str, body: bytes, event_id: str, timestamp: int | None = None) -> dict[str, str]:
    """The bank's headers, computed here from the documented scheme (rails/callback_auth.py)."""
    ts = str(timestamp if timestamp is not None else int(time.time()))
    message = f"{event_id}.{ts}.".encode() + body
    mac = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return {
        "Banksim-Event-Id": event_id,
        "Banksim-Timestamp": ts,
        "Banksim-Signature": f"v2={mac}",
        "Content-Type": "application/xml",
    }


async def test_callback_signature_is_enforced(stack: Stack) -> None:
    report = build_pacs002(
        StatusReport(
            message_id="STS-1",
            original_message_id="pay_unknown",
            created_at=datetime.now(UTC),
            transactions=[TransactionStatus("pay_unknown", "ACSC")],
        )
    )
    url = f"{stack.settings.api.internal_url}/v1/rails/sepa/callbacks"
    secret = stack.settings.rails.callback_secret
    event = f"evt-{uuid.uuid4().hex}"
    async with httpx.AsyncClient() as client:
        forged = await client.post(
            url, content=report, headers=signed("wrong-secret", report, event)
        )
        stale = await client.post(
            url, content=report, headers=signed(secret, report, event, int(time.time()) - 3600)
        )
        tampered = await client.post(
            url, content=report.replace(b"ACSC", b"RJCT"), headers=signed(secret, report, event)
        )
        # a capture relabelled with another event id, to slip past the replay cache
        relabelled = await client.post(
            url,
            content=report,
            headers={**signed(secret, report, event), "Banksim-Event-Id": f"{event}-again"},
        )
        genuine = await client.post(url, content=report, headers=signed(secret, report, event))
        replayed = await client.post(url, content=report, headers=signed(secret, report, event))
        # during the bank's rotation it signs with its old and new secret: one we know suffices
        rotating = signed(secret, report, f"{event}-rotating")
        rotating["Banksim-Signature"] = f"v2={'0' * 64} {rotating['Banksim-Signature']}"
        rotated = await client.post(url, content=report, headers=rotating)
    # partners' port: the route does not exist there, however well signed
    async with httpx.AsyncClient() as client:
        public = await client.post(
            f"{stack.settings.api.url}/v1/rails/sepa/callbacks",
            content=report,
            headers=signed(secret, report, f"{event}-public"),
        )
        public_metrics = await client.get(f"{stack.settings.api.url}/metrics")
        internal_payments = await client.get(f"{stack.settings.api.internal_url}/v1/payments")
    for hidden in (public, public_metrics, internal_payments):
        assert (hidden.status_code, hidden.json()["code"]) == (404, "not_found")
    for refused in (forged, stale, tampered, relabelled):
        assert refused.status_code == 401
        assert refused.json()["code"] == "invalid_signature"
    # a genuine report about a payment we do not know is acknowledged, and signals nothing
    assert genuine.status_code == 200
    assert genuine.json() == {"signaled": 0}
    # the same event again (a capture replayed within the window): acknowledged, ignored
    assert (replayed.status_code, replayed.json()) == (200, {"signaled": 0, "duplicate": 1})
    assert (rotated.status_code, rotated.json()) == (200, {"signaled": 0})


async def test_sepa_return_after_settlement_restores_the_balance(
    tenant: Tenant, stack: Stack
) -> None:
    account = await funded_account(tenant, 10_000)
    iban = fresh_iban()
    async with bank_client(stack.settings) as bank:
        rule = await bank.post(
            "/v1/admin/rules",
            json={"rail": "sepa", "creditor_iban": iban, "action": "return", "code": "AC06"},
        )
        assert rule.status_code == 201, rule.text
        payment = await pay(tenant.partner, payment_body(account["id"], 4_000, iban=iban))
        # settled, then sent back by the creditor's bank a second later, by pacs.004
        returned = await wait_for_status(tenant.partner, payment["id"], {"returned"})
    assert returned["failure"]["code"] == "rail_returned"
    assert returned["failure"]["reason_code"] == "AC06"
    assert [h["status"] for h in returned["status_history"]][-3:] == [
        "submitted",
        "settled",
        "returned",
    ]
    after = await balances(tenant.partner, account["id"])
    assert (after["posted"], after["pending"], after["available"]) == (10_000, 0, 10_000)
    # a lost callback is caught by the poll at the end of the return window
    async with bank_client(stack.settings, timeout=10) as client:
        polled = await SepaAdapter(client, stack.settings).poll(
            PollInput("sepa", payment["id"], payment["id"])
        )
    assert polled.event is not None
    assert (polled.event.status, polled.event.reason_code) == ("RTRN", "AC06")
