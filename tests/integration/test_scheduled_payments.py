"""Payments on a date (`execute_at`) through the real API, worker and Temporal (issue #19)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.integration.helpers import (
    Tenant,
    balances,
    funded_account,
    pay,
    payment_body,
    wait_for_status,
)


def soon(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def test_a_scheduled_payment_waits_then_settles(tenant: Tenant) -> None:
    account = await funded_account(tenant, 10_000)
    execute_at = soon(4)
    payment = await pay(tenant.partner, {**payment_body(account["id"]), "execute_at": execute_at})
    assert payment["status"] == "scheduled"
    assert datetime.fromisoformat(payment["execute_at"]) == datetime.fromisoformat(execute_at)
    # nothing is held while it waits
    assert (await balances(tenant.partner, account["id"]))["available"] == 10_000
    done = await wait_for_status(tenant.partner, payment["id"], {"settled"}, timeout=120)
    statuses = [change["status"] for change in done["status_history"]]
    assert statuses[:2] == ["scheduled", "processing"]
    processing_at = datetime.fromisoformat(done["status_history"][1]["at"])
    assert processing_at >= datetime.fromisoformat(execute_at)
    assert (await balances(tenant.partner, account["id"]))["posted"] == 7_500


async def test_funds_are_checked_at_execution_not_at_request(tenant: Tenant) -> None:
    account = await funded_account(tenant, 0)
    payment = await pay(tenant.partner, {**payment_body(account["id"]), "execute_at": soon(3)})
    assert payment["status"] == "scheduled"
    done = await wait_for_status(tenant.partner, payment["id"], {"failed"}, timeout=120)
    assert done["failure"]["code"] == "insufficient_funds"


async def test_a_canceled_scheduled_payment_never_moves_money(tenant: Tenant) -> None:
    account = await funded_account(tenant, 10_000)
    payment = await pay(tenant.partner, {**payment_body(account["id"]), "execute_at": soon(3600)})
    response = await tenant.partner.post(
        f"/v1/payments/{payment['id']}/cancel", json={"reason": "not needed"}
    )
    assert response.status_code == 202, response.text
    done = await wait_for_status(tenant.partner, payment["id"], {"canceled"})
    assert [c["status"] for c in done["status_history"]] == ["scheduled", "canceled"]
    assert await balances(tenant.partner, account["id"]) == {
        "posted": 10_000,
        "pending": 0,
        "available": 10_000,
    }


async def test_bad_execute_at_is_refused_and_creates_nothing(tenant: Tenant) -> None:
    account = await funded_account(tenant, 10_000)
    for execute_at, code in (
        (soon(-60), "execute_at_in_past"),
        (soon(400 * 86400), "execute_at_too_far"),
        ("2030-01-01T09:00:00", "validation_error"),  # no offset: not RFC 3339
        ("next tuesday", "validation_error"),
    ):
        response = await tenant.partner.post(
            "/v1/payments",
            json={**payment_body(account["id"]), "execute_at": execute_at},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert response.status_code == 422, response.text
        assert response.json()["code"] == code, response.text
        assert response.json()["param"].endswith("execute_at"), response.text
    listed = await tenant.partner.get("/v1/payments")
    assert listed.json()["data"] == []
