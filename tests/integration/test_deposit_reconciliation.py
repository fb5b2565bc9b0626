"""Reconciliation matches deposits with the incoming credits on the bank's camt.053, through
the real stack: a credit booked at the bank (`POST /v1/admin/incoming-credits`) and a
deposit naming its reference match; a deposit the bank never received, a credit no deposit
books, and a deposit of another amount are discrepancies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from iso20022.camt053 import parse_camt053
from ops.devstack import Stack
from rails.windows import ACH_TIMEZONE
from tests.bank_client import bank_client
from tests.integration.helpers import Tenant, funded_account


def _reference(label: str) -> str:
    return f"BNK-{label}-{uuid.uuid4().hex[:20]}"


async def _deposit(
    t: Tenant, account: dict[str, Any], amount: int, reference: str | None
) -> httpx.Response:
    body: dict[str, Any] = {
        "account_id": account["id"],
        "amount": amount,
        "currency": account["currency"],
    }
    if reference is not None:
        body["bank_reference"] = reference
    return await t.ops.post(
        "/v1/deposits", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
    )


async def _credit(bank: httpx.AsyncClient, rail: str, amount: int, reference: str) -> str:
    booked = await bank.post(
        "/v1/admin/incoming-credits", json={"rail": rail, "amount": amount, "reference": reference}
    )
    assert booked.status_code == 201, booked.text
    day: str = booked.json()["date"]
    return day


async def _reconcile(t: Tenant, day: str, rail: str) -> dict[str, dict[str, Any]]:
    response = await t.ops.post(
        "/v1/reconciliations", json={"statement_date": day, "rails": [rail]}
    )
    assert response.status_code == 200, response.text
    (run,) = response.json()["data"]
    return {d["reference"]: d for d in run["discrepancies"]}


async def test_deposits_and_incoming_credits_reconcile_and_every_gap_is_a_discrepancy(
    tenant: Tenant, stack: Stack
) -> None:
    matched, unreceived, unbooked, short = (
        _reference(label) for label in ("OK", "NOCREDIT", "NODEPOSIT", "SHORT")
    )
    async with bank_client(stack.settings) as bank:
        # other tests move the bank's clock forward; book today's credits on today's date
        clock = await bank.put("/v1/admin/clock", json={"now": datetime.now(UTC).isoformat()})
        assert clock.status_code == 200, clock.text
        day = await _credit(bank, "sepa", 5_000, matched)
        await _credit(bank, "sepa", 6_000, unbooked)
        await _credit(bank, "sepa", 8_000, short)
        # the bank's statement reports each as a received credit transfer under its reference
        statement = await bank.get(f"/v1/statements/{day}", params={"account": "sepa"})
        assert statement.status_code == 200, statement.text
        entries = {
            e.end_to_end_id: e for e in parse_camt053(statement.content).for_account("sepa").entries
        }
        assert entries[matched].received_credit and entries[matched].direction == "CRDT"
        assert entries[matched].bank_transaction_code == ("PMNT", "RCDT", "ESCT")
        assert entries[matched].amount_minor == 5_000

    account = await funded_account(tenant, 0)
    booked = await _deposit(tenant, account, 5_000, matched)
    assert booked.status_code == 201, booked.text
    assert booked.json()["bank_reference"] == matched
    # one bank credit backs one deposit: a second claim on it is refused, nothing credited
    twice = await _deposit(tenant, account, 5_000, matched)
    assert twice.status_code == 409, twice.text
    assert (twice.json()["code"], twice.json()["param"]) == (
        "bank_reference_in_use",
        "bank_reference",
    )
    not_received = await _deposit(tenant, account, 7_000, unreceived)
    assert not_received.status_code == 201, not_received.text
    other_amount = await _deposit(tenant, account, 8_500, short)
    assert other_amount.status_code == 201, other_amount.text
    without_reference = await _deposit(tenant, account, 900, None)
    assert without_reference.status_code == 201, without_reference.text
    balance = await tenant.partner.get(f"/v1/accounts/{account['id']}")
    assert balance.json()["balances"]["posted"] == 5_000 + 7_000 + 8_500 + 900

    found = await _reconcile(tenant, day, "sepa")
    assert matched not in found
    assert found[unreceived] == {
        "kind": "missing_in_statement",
        "reference": unreceived,
        "payment_id": None,
        "deposit_id": not_received.json()["id"],
        "currency": "EUR",
        "ledger_amount": 7_000,
        "statement_amount": None,
    }
    assert (found[unbooked]["kind"], found[unbooked]["statement_amount"]) == (
        "missing_in_ledger",
        6_000,
    )
    assert found[unbooked]["deposit_id"] is None
    assert (found[short]["kind"], found[short]["ledger_amount"]) == ("amount_mismatch", 8_500)
    assert found[short]["statement_amount"] == 8_000
    assert found[short]["deposit_id"] == other_amount.json()["id"]
    # nothing the bank booked confirms a deposit that names no bank reference
    deposit_id = without_reference.json()["id"]
    assert found[deposit_id]["kind"] == "missing_in_statement"
    assert found[deposit_id]["deposit_id"] == deposit_id


async def test_a_usd_deposit_matches_its_incoming_credit_on_the_ach_account(
    tenant: Tenant, stack: Stack
) -> None:
    matched, unbooked = _reference("ACHOK"), _reference("ACHNODEP")
    async with bank_client(stack.settings) as bank:
        clock = await bank.put("/v1/admin/clock", json={"now": datetime.now(UTC).isoformat()})
        assert clock.status_code == 200, clock.text
        day = await _credit(bank, "ach", 12_345, matched)
        await _credit(bank, "ach", 321, unbooked)
    # the ACH account books on New York dates, and so does our side
    assert day == datetime.now(ZoneInfo(ACH_TIMEZONE)).date().isoformat()
    account = await funded_account(tenant, 0, currency="USD")
    booked = await _deposit(tenant, account, 12_345, matched)
    assert booked.status_code == 201, booked.text
    found = await _reconcile(tenant, day, "ach")
    assert matched not in found
    assert found[unbooked]["kind"] == "missing_in_ledger"
    assert found[unbooked]["statement_amount"] == 321
