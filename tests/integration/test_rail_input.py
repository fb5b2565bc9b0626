"""Per-rail input through the real stack (issue #15, point 6): what a rail cannot carry is
refused at the API with a problem document naming the field, or explicitly transliterated
with the original kept; and one payment never fails another: an entry that cannot go in a
NACHA file is refused alone while the other payments of its window (another tenant's
among them) settle."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from kernel.db import dispose_engines, get_engine
from kernel.ids import new_id
from kernel.temporal_client import connect
from ops.devstack import Stack
from services.payments import PaymentOrder, initiate_payment
from tests.bank_client import bank_client
from tests.integration.helpers import (
    Tenant,
    balances,
    funded_account,
    make_keys,
    pay,
    payment_body,
    wait_for_status,
)
from tests.integration.test_ach import ach_body, bank_file, file_of, fresh_account_number
from tests.integration.test_bad_input import counts

ZOE = "Zoë Łukasz-Ñúñez"
# passes the ABA pattern but not its check digit: the API refuses it, a NACHA file cannot hold it
BAD_ROUTING = "021000022"


@asynccontextmanager
async def another_tenant(stack: Stack) -> AsyncIterator[Tenant]:
    """A second fresh tenant, as the `tenant` fixture makes them."""
    tenant_id = f"ten_{uuid.uuid4().hex[:12]}"
    partner_key, ops_key = await make_keys(stack, tenant_id)
    base = stack.settings.api.url
    async with (
        httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {partner_key}"}, timeout=30
        ) as partner,
        httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {ops_key}"}, timeout=30
        ) as ops,
    ):
        yield Tenant(tenant_id, partner, ops)


REFUSED = [
    # (what, rail, changes to the body, code, param)
    ("ACH amount above NACHA's 10 digits", "ach", {"amount": 10_000_000_000}, "amount", "amount"),
    ("ACH name of symbols only", "ach", {"creditor.name": "😀 ✓"}, "text", "creditor.name"),
    ("SEPA name of symbols only", "sepa", {"creditor.name": "★★★"}, "text", "creditor.name"),
    (
        "SEPA remittance longer than 140 once transliterated",
        "sepa",
        {"remittance_info": "Straße " * 20},
        "remittance",
        "remittance_info",
    ),
]
CODES = {
    "amount": "amount_exceeds_rail_limit",
    "text": "text_not_representable",
    "remittance": "remittance_info_too_long",
}


def body_for(rail: str, account_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    body = (
        ach_body(account_id, 100, fresh_account_number())
        if rail == "ach"
        else payment_body(account_id, 100)
    )
    for path, value in changes.items():
        if path.startswith("creditor."):
            body["creditor"][path.removeprefix("creditor.")] = value
        else:
            body[path] = value
    return body


@pytest.mark.parametrize(
    ("rail", "changes", "code", "param"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
async def test_what_a_rail_cannot_carry_is_refused_and_creates_nothing(
    tenant: Tenant, stack: Stack, rail: str, changes: dict[str, Any], code: str, param: str
) -> None:
    account = await funded_account(tenant, 0, "USD" if rail == "ach" else "EUR")
    response = await tenant.partner.post(
        "/v1/payments",
        json=body_for(rail, account["id"], changes),
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert (problem["code"], problem["param"]) == (CODES[code], param)
    # no payment row, no idempotency record (so no workflow either: it starts with the row)
    assert await counts(stack, tenant.tenant_id) == (0, 0)


async def test_the_largest_nacha_amount_is_accepted(tenant: Tenant) -> None:
    account = await funded_account(tenant, 0, "USD")
    payment = await pay(tenant.partner, ach_body(account["id"], 9_999_999_999, "12345678"))
    assert payment["amount"] == 9_999_999_999


async def test_a_name_outside_the_rails_set_is_transliterated_and_the_original_kept(
    tenant: Tenant,
) -> None:
    usd = await funded_account(tenant, 0, "USD")
    eur = await funded_account(tenant, 0, "EUR")
    ach = ach_body(usd["id"], 100, fresh_account_number())
    ach["creditor"]["name"] = ZOE
    sepa = payment_body(eur["id"], 100, name="Jürgen Groß & Söhne")
    for body, rail_name in ((ach, "Zoe Lukasz-Nunez"), (sepa, "Jurgen Gross + Sohne")):
        payment = await pay(tenant.partner, body)
        assert payment["creditor"]["name"] == body["creditor"]["name"]
        assert payment["creditor"]["rail_name"] == rail_name
        read = await tenant.partner.get(f"/v1/payments/{payment['id']}")
        assert read.json()["creditor"]["rail_name"] == rail_name


async def _past_the_api(stack: Stack, tenant: Tenant, account: dict[str, Any]) -> str:
    """An ACH payment whose routing number fails its check digit, started the way the API
    starts one but without the API's checks: what an older release, or a bug, could let in."""
    settings = stack.settings
    temporal = await connect(settings)
    payment_id = new_id("pay")
    await initiate_payment(
        get_engine(settings),
        temporal,
        settings,
        PaymentOrder(
            payment_id=payment_id,
            tenant_id=tenant.tenant_id,
            initiated_by="partner-app",
            key_id="key_test",
            account_id=account["id"],
            customer_id=account["customer_id"],
            amount=300,
            currency="USD",
            rail="ach",
            creditor={
                "name": "Routing Typo Ltd",
                "country": "US",
                "routing_number": BAD_ROUTING,
                "account_number": fresh_account_number(),
            },
        ),
    )
    await dispose_engines()
    return payment_id


async def _one_window(
    stack: Stack, first: Tenant, second: Tenant, accounts: tuple[dict[str, Any], dict[str, Any]]
) -> tuple[list[str], bool]:
    """Three ACH payments at once: `first`'s to "Zoë Łukasz-Ñúñez" (through the API), the
    other tenant's ordinary one, and `first`'s with a bad routing number (past the API).
    Returns their ids (bad one last), once the bank has the window's file, and whether they
    all joined the same window (the windows are 2 s long, so now and then they do not)."""
    zoe = ach_body(accounts[0]["id"], 1_000, fresh_account_number())
    zoe["creditor"]["name"] = ZOE
    ordinary = ach_body(accounts[1]["id"], 2_000, fresh_account_number())
    paid_zoe, paid_ordinary, bad = await asyncio.gather(
        pay(first.partner, zoe),
        pay(second.partner, ordinary),
        _past_the_api(stack, first, accounts[0]),
    )
    ids = [paid_zoe["id"], paid_ordinary["id"], bad]
    # the bad entry is rejected when its window's file is sent: then the bank has the file
    await wait_for_status(first.partner, bad, {"failed", "settled"})
    files = {(await file_of(stack, payment_id))[0] for payment_id in ids}
    return ids, len(files) == 1


async def test_an_entry_invalid_in_the_file_is_refused_alone_and_the_window_settles(
    tenant: Tenant, stack: Stack
) -> None:
    async with another_tenant(stack) as other:
        accounts = (
            await funded_account(tenant, 10_000, "USD"),
            await funded_account(other, 10_000, "USD"),
        )
        tries = []
        for _ in range(5):
            ids, together = await _one_window(stack, tenant, other, accounts)
            tries.append(ids)
            if together:
                break
        assert together, "the three payments never joined one window"
        async with bank_client(stack.settings) as bank:
            moved = await bank.post("/v1/admin/clock/advance", json={"to": "next_ach_cutoff"})
            assert moved.status_code == 200, moved.text
            for zoe_id, ordinary_id, bad_id in tries:
                zoe = await wait_for_status(tenant.partner, zoe_id, {"settled", "failed"})
                ordinary = await wait_for_status(other.partner, ordinary_id, {"settled", "failed"})
                bad = await wait_for_status(tenant.partner, bad_id, {"failed", "settled"})
                # one payment never fails another: the other tenant's payment settles
                assert ordinary["status"] == "settled", ordinary
                assert zoe["status"] == "settled", zoe
                assert bad["status"] == "failed", bad
                assert bad["failure"]["code"] == "rail_rejected"
                assert bad["failure"]["reason_code"] == "RC01"  # bank identifier incorrect
            # the bank holds the window's file with the two good entries only
            zoe_id, ordinary_id, bad_id = tries[-1]
            file_id, _ = await file_of(stack, zoe_id)
            good = {(await file_of(stack, p))[1] for p in (zoe_id, ordinary_id)}
            at_bank = await bank_file(bank, file_id)
            assert {e["trace_number"] for e in at_bank["entries"]} == good
            assert {e["status"] for e in at_bank["entries"]} == {"settled"}
        # the refused payment's hold was released; the settled ones were posted
        first = await balances(tenant.partner, accounts[0]["id"])
        second = await balances(other.partner, accounts[1]["id"])
    assert (first["posted"], first["pending"]) == (10_000 - 1_000 * len(tries), 0)
    assert (second["posted"], second["pending"]) == (10_000 - 2_000 * len(tries), 0)
