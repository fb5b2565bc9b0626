"""Bad input gets a 4xx problem document with a stable code, and creates nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from kernel.db import dispose_engines, get_engine
from kernel.tables import idempotency_keys, payments
from ops.devstack import Stack
from tests.integration.helpers import Tenant, funded_account, payment_body


async def counts(stack: Stack, tenant_id: str) -> tuple[int, int]:
    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        paid = (
            await conn.execute(
                select(func.count()).select_from(payments).where(payments.c.tenant_id == tenant_id)
            )
        ).scalar_one()
        keys = (
            await conn.execute(
                select(func.count())
                .select_from(idempotency_keys)
                .where(
                    idempotency_keys.c.tenant_id == tenant_id,
                    idempotency_keys.c.method_path == "POST /v1/payments",
                )
            )
        ).scalar_one()
    await dispose_engines()
    return paid, keys


def mutate(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Copy of `body` with the dotted `path` set to `value` (or removed for ...)."""
    copy: dict[str, Any] = {**body, "creditor": {**body["creditor"]}}
    target = copy
    *parents, leaf = path.split(".")
    for part in parents:
        target = target[part]
    if value is ...:
        target.pop(leaf)
    else:
        target[leaf] = value
    return copy


CASES = [
    # (what, dotted path, value, status, code, param)
    ("unknown account", "account_id", "acc_doesnotexist", 422, "account_not_found", "account_id"),
    ("negative amount", "amount", -5, 422, "validation_error", "amount"),
    ("zero amount", "amount", 0, 422, "validation_error", "amount"),
    ("non-integer amount", "amount", 10.5, 422, "validation_error", "amount"),
    ("amount as string", "amount", "100", 422, "validation_error", "amount"),
    ("unknown currency", "currency", "XYZ", 422, "unsupported_currency", "currency"),
    ("lower-case currency", "currency", "eur", 422, "validation_error", "currency"),
    ("currency of another account", "currency", "USD", 422, "currency_mismatch", "currency"),
    (
        "malformed IBAN",
        "creditor.iban",
        "DE89370400440532013001",
        422,
        "invalid_iban",
        "creditor.iban",
    ),
    (
        "IBAN with letters in BBAN",
        "creditor.iban",
        "DE89X7040044053201300",
        422,
        "invalid_iban",
        "creditor.iban",
    ),
    ("missing IBAN", "creditor.iban", ..., 422, "iban_required", "creditor.iban"),
    ("unknown field", "surprise", "!", 422, "validation_error", "surprise"),
    ("unknown rail", "rail", "swift", 422, "validation_error", "rail"),
    (
        "control characters in name",
        "creditor.name",
        "Eve\x00",
        422,
        "validation_error",
        "creditor.name",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "status", "code", "param"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_bad_payment_is_refused_and_creates_nothing(
    tenant: Tenant, stack: Stack, path: str, value: Any, status: int, code: str, param: str
) -> None:
    account = await funded_account(tenant, 1_000)
    body = mutate(payment_body(account["id"], 100), path, value)
    response = await tenant.partner.post(
        "/v1/payments", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == code
    assert problem["status"] == status
    assert problem.get("param") == param
    assert {"type", "title", "detail"} <= problem.keys()
    assert await counts(stack, tenant.tenant_id) == (0, 0)


async def test_missing_idempotency_key_creates_nothing(tenant: Tenant, stack: Stack) -> None:
    account = await funded_account(tenant, 1_000)
    response = await tenant.partner.post("/v1/payments", json=payment_body(account["id"], 100))
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_missing"
    assert await counts(stack, tenant.tenant_id) == (0, 0)


async def test_malformed_json_and_auth_problems(tenant: Tenant, stack: Stack) -> None:
    broken = await tenant.partner.post(
        "/v1/payments",
        content=b"{not json",
        headers={"Idempotency-Key": "k", "Content-Type": "application/json"},
    )
    assert broken.status_code == 422
    assert broken.json()["code"] == "invalid_json"
    async with httpx.AsyncClient(base_url=stack.settings.api.url) as anonymous:
        no_key = await anonymous.get("/v1/payments")
        bad_key = await anonymous.get(
            "/v1/payments", headers={"Authorization": "Bearer psk_nope_nope"}
        )
        not_found = await anonymous.get("/v1/nothing-here")
        wrong_method = await anonymous.delete("/v1/payments")
    assert (no_key.status_code, no_key.json()["code"]) == (401, "unauthenticated")
    assert (bad_key.status_code, bad_key.json()["code"]) == (401, "invalid_api_key")
    assert (not_found.status_code, not_found.json()["code"]) == (404, "not_found")
    assert (wrong_method.status_code, wrong_method.json()["code"]) == (405, "method_not_allowed")
    deposit_without_ops = await tenant.partner.post(
        "/v1/deposits", json={"account_id": "acc_x", "amount": 1, "currency": "EUR"}
    )
    assert deposit_without_ops.status_code == 403
    assert await counts(stack, tenant.tenant_id) == (0, 0)


async def test_nul_characters_are_refused_at_the_door(tenant: Tenant) -> None:
    for path in ("/v1/payments?starting_after=%00", "/v1/payments/pay_%00"):
        response = await tenant.partner.get(path)
        assert response.status_code == 400, path
        assert response.json()["code"] == "invalid_characters"
    body = {"customer_id": "cus_\u0000", "currency": "EUR"}
    refused = await tenant.partner.post("/v1/accounts", json=body)
    assert refused.status_code == 422
    assert refused.json()["param"] == "customer_id"
