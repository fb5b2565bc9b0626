"""The partner client against the real stack: its idempotency keys, its event iterator, and
its webhook verification of deliveries the worker really sent, across a secret rotation."""

from __future__ import annotations

import asyncio
import json

from ops.devstack import Stack
from payments_client import PaymentsClient, verify_webhook
from payments_client.models import PaymentCreate
from tests.integration.helpers import Tenant, funded_account, wait_for_status
from tests.loopback_http import http_answer, serving

SIGNED = ("webhook-id", "webhook-timestamp", "webhook-signature")


def sepa(account_id: str) -> PaymentCreate:
    return {
        "account_id": account_id,
        "amount": 100,
        "currency": "EUR",
        "rail": "sepa",
        "creditor": {"name": "Erika Mustermann", "country": "DE", "iban": "DE89370400440532013000"},
    }


async def test_the_client_verifies_real_deliveries_signed_with_both_secrets(
    tenant: Tenant, stack: Stack
) -> None:
    key = str(tenant.partner.headers["Authorization"]).removeprefix("Bearer ")
    async with serving(http_answer("200 OK", {})) as receiver:
        with PaymentsClient(stack.settings.api.url, key) as api:
            endpoint = await asyncio.to_thread(
                api.create_webhook_endpoint,
                {"url": f"http://127.0.0.1:{receiver.port}/hooks", "event_types": ["payment.*"]},
            )
            old = endpoint["secret"]
            rotated = await asyncio.to_thread(api.rotate_webhook_secret, endpoint["id"])
            new = rotated["secret"]
            assert old and new and old != new

            account = await funded_account(tenant, 5_000)
            payment = await asyncio.to_thread(
                api.create_payment, sepa(account["id"]), idempotency_key="order-1"
            )
            # the same key again is the same payment, not a second one
            again = await asyncio.to_thread(
                api.create_payment, sepa(account["id"]), idempotency_key="order-1"
            )
            assert again["id"] == payment["id"]
            await wait_for_status(tenant.partner, payment["id"], {"settled"})

            expected = {"payment.processing", "payment.submitted", "payment.settled"}
            # deliveries run as workflows after the status: wait for them (a hang guard only)
            for _ in range(300):
                if len(receiver.requests) >= len(expected):
                    break
                await asyncio.sleep(0.1)
            received = set()
            for index, (_, body) in enumerate(receiver.requests):
                headers = {name: receiver.header(index, name.encode()).decode() for name in SIGNED}
                # during the rotation's overlap a receiver holding either secret verifies
                for secret in (new, old):
                    event = verify_webhook(body, headers, secret)
                    assert event["data"]["payment_id"] == payment["id"]
                assert event == json.loads(body)
                received.add(event["type"])
            assert received == expected

            # the iterator pages one event at a time with starting_after, newest first
            events = await asyncio.to_thread(
                lambda: list(api.list_events(payment_id=payment["id"], page_size=1))
            )
            assert [e["type"] for e in events] == [
                "payment.settled",
                "payment.submitted",
                "payment.processing",
            ]
