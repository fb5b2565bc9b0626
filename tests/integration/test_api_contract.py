"""What the OpenAPI document states, the server does (issue #22): integral amounts, the
Idempotency-Key header's problems, ids' shapes. Bad input still creates nothing."""

from __future__ import annotations

import uuid

import pytest

from ops.devstack import Stack
from tests.integration.helpers import Tenant, funded_account, payment_body
from tests.integration.test_bad_input import counts


async def test_an_integral_number_is_the_same_amount(tenant: Tenant) -> None:
    # JSON has one number type and JSON Schema's `integer` includes 2500.0: accepted as 2500;
    # the same key with 2500 is the same request, so it replays instead of answering 422
    account = await funded_account(tenant, 10_000)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = payment_body(account["id"])
    first = await tenant.partner.post("/v1/payments", json={**body, "amount": 2500.0}, headers=key)
    assert first.status_code == 202, first.text
    assert first.json()["amount"] == 2500
    again = await tenant.partner.post("/v1/payments", json={**body, "amount": 2500}, headers=key)
    assert again.status_code == 202, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]


@pytest.mark.parametrize(
    ("key", "code"),
    [("", "idempotency_key_missing"), ("k" * 256, "idempotency_key_invalid")],
    ids=["empty", "too long"],
)
async def test_idempotency_key_problems_create_nothing(
    tenant: Tenant, stack: Stack, key: str, code: str
) -> None:
    account = await funded_account(tenant, 1_000)
    response = await tenant.partner.post(
        "/v1/payments", json=payment_body(account["id"], 100), headers={"Idempotency-Key": key}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert await counts(stack, tenant.tenant_id) == (0, 0)


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/v1/payments/PAY_1", "payment_id"),
        ("/v1/payments?starting_after=", "starting_after"),
        ("/v1/payments?account_id=pay_1", "account_id"),
        ("/v1/events?type=settled", "type"),
        ("/v1/accounts/acc_1/entries?starting_after=acc_1", "starting_after"),
    ],
)
async def test_ids_of_the_wrong_shape_are_validation_errors(
    tenant: Tenant, path: str, param: str
) -> None:
    response = await tenant.partner.get(path)
    assert response.status_code == 422, response.text
    assert (response.json()["code"], response.json()["param"]) == ("validation_error", param)
