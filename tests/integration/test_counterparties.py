"""Saved counterparties through the real stack (issue #18): created and screened, refused
when their account details are bad, verified at the bank (Verification of Payee for SEPA, a
prenote for ACH), and named by payments instead of an inline creditor."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import text

from kernel.db import dispose_engines, get_engine
from ops.devstack import Stack
from tests.bank_client import bank_client
from tests.integration.helpers import Tenant, fresh_iban, funded_account, pay, wait_for_status
from tests.integration.test_ach import ROUTING, fresh_account_number


def sepa_counterparty(iban: str, name: str = "Erika Mustermann") -> dict[str, Any]:
    return {"type": "individual", "name": name, "country": "DE", "iban": iban}


def ach_counterparty(account_number: str) -> dict[str, Any]:
    return {
        "type": "individual",
        "name": "John Smith",
        "country": "US",
        "routing_number": ROUTING,
        "account_number": account_number,
    }


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/counterparties", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def wait_for_verification(
    client: httpx.AsyncClient, counterparty_id: str, timeout: float = 90.0
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await client.get(f"/v1/counterparties/{counterparty_id}")
        assert response.status_code == 200, response.text
        counterparty: dict[str, Any] = response.json()
        if counterparty["verification"]["status"] != "pending":
            return counterparty
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{counterparty_id} still pending")
        await asyncio.sleep(0.2)


async def vop_rule(stack: Stack, iban: str, code: str, name: str | None = None) -> None:
    rule: dict[str, Any] = {"rail": "sepa", "creditor_iban": iban, "action": "vop", "code": code}
    if name is not None:
        rule["registered_name"] = name
    async with bank_client(stack.settings) as bank:
        response = await bank.post("/v1/admin/rules", json=rule)
    assert response.status_code == 201, response.text


async def count_counterparties(stack: Stack, tenant_id: str) -> int:
    async with get_engine(stack.settings).connect() as conn:
        n = (
            await conn.execute(
                text("SELECT count(*) FROM counterparties WHERE tenant_id = :t"), {"t": tenant_id}
            )
        ).scalar_one()
    await dispose_engines()
    return int(n)


async def events_of(stack: Stack, tenant_id: str, counterparty_id: str) -> list[dict[str, Any]]:
    async with get_engine(stack.settings).connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT type, data FROM events WHERE tenant_id = :t"
                    " AND data->>'counterparty_id' = :c ORDER BY created_at"
                ),
                {"t": tenant_id, "c": counterparty_id},
            )
        ).all()
    await dispose_engines()
    return [{"type": row.type, "data": row.data} for row in rows]


async def test_bad_account_details_are_refused_and_create_nothing(
    tenant: Tenant, stack: Stack
) -> None:
    cases = [
        (sepa_counterparty("DE89370400440532013001"), "invalid_iban", "iban"),
        ({**sepa_counterparty(fresh_iban()), "bic": "XXXXZZ12"}, "invalid_bic", "bic"),
        (
            {**ach_counterparty("12345678"), "routing_number": "021000022"},
            "invalid_routing_number",
            "routing_number",
        ),
        (
            {**sepa_counterparty(fresh_iban()), "routing_number": ROUTING},
            "account_details_required",
            "iban",
        ),
        (
            {k: v for k, v in sepa_counterparty("x" * 5).items() if k != "iban"},
            "account_details_required",
            "iban",
        ),
    ]
    for body, code, param in cases:
        response = await tenant.partner.post("/v1/counterparties", json=body)
        assert response.status_code == 422, response.text
        problem = response.json()
        assert (problem["code"], problem["param"]) == (code, param), problem
    assert await count_counterparties(stack, tenant.tenant_id) == 0


async def test_sepa_counterparty_verified_by_vop_and_listed(tenant: Tenant, stack: Stack) -> None:
    iban = fresh_iban()
    created = await create(tenant.partner, sepa_counterparty(iban))
    assert created["id"].startswith("cpt_")
    assert created["rail"] == "sepa"
    assert created["screening"]["decision"] == "clear"
    verified = await wait_for_verification(tenant.partner, created["id"])
    assert verified["verification"] == {
        "status": "verified",
        "method": "vop",
        "matched_name": None,
        "reason": None,
        "verified_at": verified["verification"]["verified_at"],
    }
    events = await events_of(stack, tenant.tenant_id, created["id"])
    assert [e["type"] for e in events] == ["counterparty.verified"]
    assert events[0]["data"]["verification"]["status"] == "verified"
    # listed, newest first, paged by keyset
    second = await create(tenant.partner, sepa_counterparty(fresh_iban(), "Max Mustermann"))
    page = (await tenant.partner.get("/v1/counterparties", params={"limit": 1})).json()
    assert ([c["id"] for c in page["data"]], page["has_more"]) == ([second["id"]], True)
    rest = (
        await tenant.partner.get(
            "/v1/counterparties", params={"limit": 1, "starting_after": second["id"]}
        )
    ).json()
    assert [c["id"] for c in rest["data"]] == [created["id"]]


async def test_vop_close_match_and_no_match(tenant: Tenant, stack: Stack) -> None:
    close, none = fresh_iban(), fresh_iban()
    await vop_rule(stack, close, "CMTC", "Erika Musterfrau")
    await vop_rule(stack, none, "NMTC")
    first = await create(tenant.partner, sepa_counterparty(close))
    second = await create(tenant.partner, sepa_counterparty(none))
    close_match = await wait_for_verification(tenant.partner, first["id"])
    no_match = await wait_for_verification(tenant.partner, second["id"])
    assert close_match["verification"]["status"] == "close_match"
    assert close_match["verification"]["matched_name"] == "Erika Musterfrau"
    assert no_match["verification"]["status"] == "no_match"
    assert no_match["verification"]["matched_name"] is None


async def file_at_bank(stack: Stack, bank: httpx.AsyncClient, entry_id: str) -> Any:
    """The (file id, trace number) of an entry once its window's file is at the bank."""
    async with get_engine(stack.settings).connect() as conn:
        for _ in range(600):
            entry = (
                await conn.execute(
                    text("SELECT file_id, trace_number FROM ach_entries WHERE payment_id = :p"),
                    {"p": entry_id},
                )
            ).first()
            if entry is not None and (await bank.get(f"/v1/ach/files/{entry.file_id}")).is_success:
                break
            await asyncio.sleep(0.1)
    await dispose_engines()
    assert entry is not None
    return entry


async def test_ach_prenote_verifies_when_not_returned(tenant: Tenant, stack: Stack) -> None:
    created = await create(tenant.partner, ach_counterparty(fresh_account_number()))
    assert created["verification"]["method"] == "prenote"
    async with bank_client(stack.settings) as bank:
        entry = await file_at_bank(stack, bank, created["id"])
        await bank.post("/v1/admin/clock/advance", json={"to": "next_ach_cutoff"})
        verified = await wait_for_verification(tenant.partner, created["id"])
        at_bank = (await bank.get(f"/v1/ach/files/{entry.file_id}")).json()
    assert verified["verification"]["status"] == "verified"
    # the bank holds one zero-amount entry with the prenote's trace number, settled
    entries = [e for e in at_bank["entries"] if e["trace_number"] == entry.trace_number]
    assert [(e["amount"], e["status"]) for e in entries] == [(0, "settled")]
    events = await events_of(stack, tenant.tenant_id, created["id"])
    assert [e["type"] for e in events] == ["counterparty.verified"]


async def test_reconciliation_matches_a_prenote_the_statement_lists(
    tenant: Tenant, stack: Stack
) -> None:
    """A statement that lists the prenote (zero amount, its trace) matches it: the ledger
    explains it, as nothing moved; another zero-amount entry nobody sent stays a gap."""
    created = await create(tenant.partner, ach_counterparty(fresh_account_number()))
    async with bank_client(stack.settings) as bank:
        entry = await file_at_bank(stack, bank, created["id"])
        day = (await bank.get(f"/v1/ach/files/{entry.file_id}")).json()["settlement_date"]
        unknown = f"ZERO-{uuid.uuid4().hex[:8]}"
        for reference in (entry.trace_number, unknown):
            planted = await bank.post(
                "/v1/admin/statement-adjustments",
                json={
                    "date": day,
                    "rail": "ach",
                    "action": "add",
                    "reference": reference,
                    "amount": 0,
                    "currency": "USD",
                },
            )
            assert planted.status_code == 201, planted.text
    response = await tenant.ops.post(
        "/v1/reconciliations", json={"statement_date": day, "rails": ["ach"]}
    )
    assert response.status_code == 200, response.text
    (run,) = response.json()["data"]
    found = {d["reference"]: d["kind"] for d in run["discrepancies"]}
    assert entry.trace_number not in found
    assert found[unknown] == "missing_in_ledger"
    assert run["matched"] >= 1


async def test_returned_prenote_fails_with_its_r_code(tenant: Tenant, stack: Stack) -> None:
    account_number = fresh_account_number()
    async with bank_client(stack.settings) as bank:
        rule = await bank.post(
            "/v1/admin/rules",
            json={
                "rail": "ach",
                "account_number": account_number,
                "action": "return",
                "code": "R03",
            },
        )
        assert rule.status_code == 201, rule.text
        created = await create(tenant.partner, ach_counterparty(account_number))
        await file_at_bank(stack, bank, created["id"])
        await bank.post("/v1/admin/clock/advance", json={"to": "next_ach_cutoff"})
        await bank.post("/v1/admin/clock/advance", json={"seconds": 2 * 3600})
        failed = await wait_for_verification(tenant.partner, created["id"])
    assert failed["verification"]["status"] == "failed"
    assert failed["verification"]["reason"] == "R03"


def sepa_payment(account_id: str, counterparty_id: str) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "amount": 2_000,
        "currency": "EUR",
        "rail": "sepa",
        "counterparty_id": counterparty_id,
        "remittance_info": "Invoice 7",
    }


async def test_payment_to_verified_counterparty_settles(tenant: Tenant, stack: Stack) -> None:
    account = await funded_account(tenant, 10_000)
    iban = fresh_iban()
    counterparty = await create(tenant.partner, sepa_counterparty(iban))
    await wait_for_verification(tenant.partner, counterparty["id"])
    payment = await pay(tenant.partner, sepa_payment(account["id"], counterparty["id"]))
    assert payment["creditor"]["iban"] == iban
    assert payment["counterparty_id"] == counterparty["id"]
    assert payment["creditor"]["name"] == "Erika Mustermann"
    settled = await wait_for_status(tenant.partner, payment["id"], {"settled", "in_review"})
    assert settled["status"] == "settled", settled


async def test_payment_to_unmatched_counterparty_waits_in_review(
    tenant: Tenant, stack: Stack
) -> None:
    account = await funded_account(tenant, 10_000)
    iban = fresh_iban()
    await vop_rule(stack, iban, "NMTC")
    counterparty = await create(tenant.partner, sepa_counterparty(iban))
    await wait_for_verification(tenant.partner, counterparty["id"])
    payment = await pay(tenant.partner, sepa_payment(account["id"], counterparty["id"]))
    held = await wait_for_status(tenant.partner, payment["id"], {"in_review", "settled"})
    assert held["status"] == "in_review"
    assert "counterparty not verified (no_match)" in held["status_history"][-1]["reasons"]
    # a reviewer who checked the payee with the partner lets it go
    approved = await tenant.ops.post(
        f"/v1/payments/{payment['id']}/review",
        json={"decision": "approve", "note": "payee confirmed by phone"},
    )
    assert approved.status_code == 200, approved.text
    settled = await wait_for_status(tenant.partner, payment["id"], {"settled", "failed"})
    assert settled["status"] == "settled"


async def test_payment_naming_a_bad_counterparty_is_refused(tenant: Tenant, stack: Stack) -> None:
    account = await funded_account(tenant, 10_000)
    counterparty = await create(tenant.partner, sepa_counterparty(fresh_iban()))
    ach = await create(tenant.partner, ach_counterparty(fresh_account_number()))
    both = {
        **sepa_payment(account["id"], counterparty["id"]),
        "creditor": {"name": "X", "country": "DE", "iban": fresh_iban()},
    }
    cases = [
        (both, "creditor_required"),
        (sepa_payment(account["id"], "cpt_" + "0" * 26), "counterparty_not_found"),
        (sepa_payment(account["id"], ach["id"]), "counterparty_rail_mismatch"),
    ]
    disabled = await tenant.partner.delete(f"/v1/counterparties/{counterparty['id']}")
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    cases.append((sepa_payment(account["id"], counterparty["id"]), "counterparty_disabled"))
    for body, code in cases:
        response = await tenant.partner.post(
            "/v1/payments", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        assert response.status_code == 422, response.text
        assert response.json()["code"] == code
    listed = (await tenant.partner.get("/v1/payments")).json()
    assert listed["data"] == []


async def test_notification_of_change_corrects_the_saved_counterparty(
    tenant: Tenant, stack: Stack
) -> None:
    """The receiving bank answers the prenote with a COR entry (C01, corrected account
    number): the counterparty takes it, with a `counterparty.updated` event and an audit
    record naming the bank's notice; a payment made before (held in review: the
    counterparty was not verified yet) keeps the creditor it had."""
    old_account = fresh_account_number()
    async with bank_client(stack.settings) as bank:
        rule = await bank.post(
            "/v1/admin/rules",
            json={
                "rail": "ach",
                "account_number": old_account,
                "action": "noc",
                "code": "C01",
                "corrected_data": "99887766",
            },
        )
        assert rule.status_code == 201, rule.text
        created = await create(tenant.partner, ach_counterparty(old_account))
        account = await funded_account(tenant, 10_000, "USD")
        body = {
            "account_id": account["id"],
            "amount": 1_000,
            "currency": "USD",
            "rail": "ach",
            "counterparty_id": created["id"],
        }
        earlier = await pay(tenant.partner, body)
        # its prenote has not been answered yet: the payment waits for a reviewer
        held = await wait_for_status(tenant.partner, earlier["id"], {"in_review", "submitted"})
        assert held["status"] == "in_review"
        assert held["status_history"][-1]["reasons"] == ["counterparty not verified (pending)"]
        await file_at_bank(stack, bank, created["id"])
        await bank.post("/v1/admin/clock/advance", json={"to": "next_ach_cutoff"})
        await bank.post("/v1/admin/clock/advance", json={"seconds": 2 * 3600})
        for _ in range(300):
            now = (await tenant.partner.get(f"/v1/counterparties/{created['id']}")).json()
            if now["account_number"] != old_account:
                break
            await asyncio.sleep(0.1)
    assert now["account_number"] == "99887766"
    events = await events_of(stack, tenant.tenant_id, created["id"])
    updated = [e["data"] for e in events if e["type"] == "counterparty.updated"]
    assert [(u["changed"], u["change_code"]) for u in updated] == [(["account_number"], "C01")]
    async with get_engine(stack.settings).connect() as conn:
        audit = (
            await conn.execute(
                text(
                    "SELECT actor, detail FROM audit_log WHERE subject = :s"
                    " AND action = 'counterparty.corrected'"
                ),
                {"s": created["id"]},
            )
        ).one()
    await dispose_engines()
    assert audit.actor == "bank:notification_of_change"
    assert audit.detail["after"] == {"account_number": "…7766"}
    # the payment made before the notice keeps the account it was made to
    kept = (await tenant.partner.get(f"/v1/payments/{earlier['id']}")).json()
    assert kept["creditor"]["account_number"] == old_account
