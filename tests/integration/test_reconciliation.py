"""Reconciliation through the real stack: the bank's camt.053 against the ledger finds the
discrepancies planted in the statement, and only those."""

from __future__ import annotations

from datetime import UTC, datetime

from ops.devstack import Stack
from services import payment_actions as ops
from tests.bank_client import bank_client
from tests.integration.helpers import (
    Tenant,
    fresh_iban,
    funded_account,
    pay,
    payment_body,
    wait_for_status,
)


async def test_reconciliation_finds_planted_discrepancies(tenant: Tenant, stack: Stack) -> None:
    async with bank_client(stack.settings) as bank:
        # other tests move the bank's clock forward; book today's payments on today's date
        clock = await bank.put("/v1/admin/clock", json={"now": datetime.now(UTC).isoformat()})
        assert clock.status_code == 200, clock.text
        account = await funded_account(tenant, 10_000)
        paid = [await pay(tenant.partner, payment_body(account["id"], 1_000 + i)) for i in range(3)]
        for payment in paid:
            await wait_for_status(tenant.partner, payment["id"], {"settled"})
        # one more goes out and comes back (pacs.004): the ledger books both, as the bank does
        iban = fresh_iban()
        rule = {"rail": "sepa", "creditor_iban": iban, "action": "return", "code": "AC06"}
        assert (await bank.post("/v1/admin/rules", json=rule)).status_code == 201
        sent_back = await pay(tenant.partner, payment_body(account["id"], 777, iban=iban))
        await wait_for_status(tenant.partner, sent_back["id"], {"returned"})
        today = datetime.now(UTC).date().isoformat()
        dropped, changed, intact = (payment["id"] for payment in paid)
        for adjustment in (
            {"action": "drop", "reference": dropped},
            {"action": "change_amount", "reference": changed, "amount": 999_999},
            {"action": "add", "reference": "UNKNOWN-PLANTED", "amount": 4_242, "currency": "EUR"},
        ):
            planted = await bank.post(
                "/v1/admin/statement-adjustments",
                json={"date": today, "rail": "sepa", **adjustment},
            )
            assert planted.status_code == 201, planted.text

    response = await tenant.ops.post(
        "/v1/reconciliations", json={"statement_date": today, "rails": ["sepa"]}
    )
    assert response.status_code == 200, response.text
    (run,) = response.json()["data"]
    assert run["status"] == "discrepancies"
    found = {d["reference"]: d for d in run["discrepancies"]}
    assert found[dropped]["kind"] == "missing_in_statement"
    assert found[dropped]["ledger_amount"] == 1_000
    assert (found[changed]["kind"], found[changed]["statement_amount"]) == (
        "amount_mismatch",
        999_999,
    )
    assert found["UNKNOWN-PLANTED"]["kind"] == "missing_in_ledger"
    assert intact not in found
    assert sent_back["id"] not in found  # its debit and its credit back both matched
    assert run["matched"] >= 3
    stored = await tenant.ops.get(f"/v1/reconciliations/{run['id']}")
    assert stored.status_code == 200
    assert {d["reference"] for d in stored.json()["discrepancies"]} >= {dropped, changed}
    refused = await tenant.partner.get("/v1/reconciliations")
    assert refused.status_code == 403

    # the ops CLI (`payments reconcile --date D`) reads the same runs and prints each gap
    lines = await ops.reconcile(stack.settings, today, ["sepa"])
    assert lines[0].endswith("discrepancies") and not lines[0].endswith(" 0 discrepancies")
    gaps = {line.split()[1]: line.split()[0] for line in lines if line.startswith("  ")}
    assert gaps[dropped] == "missing_in_statement"
    assert gaps[changed] == "amount_mismatch"
    assert gaps["UNKNOWN-PLANTED"] == "missing_in_ledger"
    assert intact not in gaps
