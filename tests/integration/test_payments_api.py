"""Payments end to end through the real API, worker, Temporal dev server and bank simulator."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import text

from activities.limits import LimitActivities, PaymentNotCommittedError, tier_limits
from kernel.api_keys import create_key
from kernel.db import dispose_engines, get_engine
from kernel.temporal_client import connect
from ops.devstack import Stack, binary
from services.payments import PaymentOrder, initiate_payment, start_payment_workflow
from tests.bank_client import bank_client
from tests.integration.helpers import (
    TERMINAL,
    Tenant,
    balances,
    create_customer,
    decision_and_effect,
    funded_account,
    make_keys,
    pay,
    payment_body,
    wait_for_status,
)
from workflows.models import LimitsInput


async def test_payment_settles_and_moves_money_once(tenant: Tenant, stack: Stack) -> None:
    account = await funded_account(tenant, 10_000)
    payment = await pay(tenant.partner, payment_body(account["id"], 2_500))
    assert payment["status"] == "processing"
    assert payment["id"].startswith("pay_")
    settled = await wait_for_status(tenant.partner, payment["id"], TERMINAL)
    assert settled["status"] == "settled", settled
    assert [s["status"] for s in settled["status_history"]] == [
        "processing",
        "submitted",
        "settled",
    ]
    assert await balances(tenant.partner, account["id"]) == {
        "posted": 7_500,
        "pending": 0,
        "available": 7_500,
    }
    # the Web UI / CLI find it by its search attribute
    listed = subprocess.run(
        [
            binary("temporal"),
            "workflow",
            "list",
            "--address",
            stack.settings.temporal.address,
            "--query",
            f"PaymentStatus='settled' AND WorkflowId='{payment['id']}'",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert payment["id"] in listed.stdout


async def test_insufficient_funds_fails_and_holds_nothing(tenant: Tenant) -> None:
    account = await funded_account(tenant, 1_000)
    payment = await pay(tenant.partner, payment_body(account["id"], 1_001))
    failed = await wait_for_status(tenant.partner, payment["id"], TERMINAL)
    assert failed["status"] == "failed"
    assert failed["failure"]["code"] == "insufficient_funds"
    assert await balances(tenant.partner, account["id"]) == {
        "posted": 1_000,
        "pending": 0,
        "available": 1_000,
    }


async def test_rail_rejection_fails_with_the_reason_code_and_releases_funds(
    tenant: Tenant, stack: Stack
) -> None:
    closed_iban = "FR1420041010050500013M02606"
    async with bank_client(stack.settings) as bank:
        rule = await bank.post(
            "/v1/admin/rules", json={"creditor_iban": closed_iban, "reject_code": "AC04"}
        )
        assert rule.status_code == 201, rule.text
    account = await funded_account(tenant, 5_000)
    payment = await pay(tenant.partner, payment_body(account["id"], 3_000, iban=closed_iban))
    failed = await wait_for_status(tenant.partner, payment["id"], TERMINAL)
    assert failed["status"] == "failed"
    assert failed["failure"]["code"] == "rail_rejected"
    assert failed["failure"]["reason_code"] == "AC04"
    assert [s["status"] for s in failed["status_history"]] == ["processing", "submitted", "failed"]
    assert await balances(tenant.partner, account["id"]) == {
        "posted": 5_000,
        "pending": 0,
        "available": 5_000,
    }


async def test_sanctions_hit_goes_to_review_then_four_eyes_approval_settles(
    tenant: Tenant,
) -> None:
    account = await funded_account(tenant, 5_000)
    body = payment_body(account["id"], 1_200, name="Banco Nacional de Cuba")
    payment = await pay(tenant.partner, body)
    in_review = await wait_for_status(tenant.partner, payment["id"], {"in_review"} | TERMINAL)
    assert in_review["status"] == "in_review"
    assert in_review["screening_hits"][0]["entity_id"] == "306"
    assert in_review["screening_hits"][0]["matched_name"] == "BANCO NACIONAL DE CUBA"
    # the partner key has no ops scope
    denied = await tenant.partner.post(
        f"/v1/payments/{payment['id']}/review", json={"decision": "approve"}
    )
    assert denied.status_code == 403
    assert denied.json()["code"] == "insufficient_scope"
    approved = await tenant.ops.post(
        f"/v1/payments/{payment['id']}/review",
        json={"decision": "approve", "note": "different entity: a German sole trader"},
    )
    assert approved.status_code == 200, approved.text
    settled = await wait_for_status(tenant.partner, payment["id"], TERMINAL)
    assert settled["status"] == "settled"
    assert [s["status"] for s in settled["status_history"]] == [
        "processing",
        "in_review",
        "processing",
        "submitted",
        "settled",
    ]
    again = await tenant.ops.post(
        f"/v1/payments/{payment['id']}/review", json={"decision": "reject"}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "payment_not_in_review"


async def test_initiator_cannot_review_own_payment(tenant: Tenant, stack: Stack) -> None:
    # one principal whose key may both initiate and review
    async with get_engine(stack.settings).begin() as conn:
        both = await create_key(
            conn,
            tenant_id=tenant.tenant_id,
            principal="solo-sam",
            scopes=["payments:write", "payments:read", "ops"],
        )
    await dispose_engines()
    async with httpx.AsyncClient(
        base_url=stack.settings.api.url, headers={"Authorization": f"Bearer {both}"}, timeout=30
    ) as solo:
        account = await funded_account(Tenant(tenant.tenant_id, solo, tenant.ops), 5_000)
        payment = await pay(solo, payment_body(account["id"], 100, name="Banco Nacional de Cuba"))
        await wait_for_status(solo, payment["id"], {"in_review"})
        refused = await solo.post(
            f"/v1/payments/{payment['id']}/review", json={"decision": "approve"}
        )
        assert refused.status_code == 403
        assert refused.json()["code"] == "four_eyes_violation"
        rejected = await tenant.ops.post(
            f"/v1/payments/{payment['id']}/review", json={"decision": "reject"}
        )
        assert rejected.status_code == 200
        final = await wait_for_status(solo, payment["id"], TERMINAL)
        assert final["status"] == "rejected"
        assert final["failure"]["code"] == "sanctions_rejected"
        # OFAC blocking: the money neither leaves nor comes back; it sits in blocked funds
        after = await balances(solo, account["id"])
        assert (after["posted"], after["pending"], after["available"]) == (4_900, 0, 4_900)
    async with get_engine(stack.settings).connect() as conn:
        blocked = (
            await conn.execute(
                text(
                    "SELECT debit_account_id, credit_account_id, amount FROM ledger_transfers"
                    " WHERE id = :id"
                ),
                {"id": f"{payment['id']}:block"},
            )
        ).one()
    await dispose_engines()
    assert tuple(blocked) == (account["id"], "acc_sys_blocked_funds_eur", 100)


async def test_kyc_rejected_customer_cannot_pay(tenant: Tenant) -> None:
    minor = await create_customer(tenant.partner, date_of_birth="2015-01-01")
    assert minor["kyc"]["status"] == "rejected"
    opened = await tenant.partner.post(
        "/v1/accounts", json={"customer_id": minor["id"], "currency": "EUR"}
    )
    assert opened.status_code == 201
    account_id = opened.json()["id"]
    deposit = await tenant.ops.post(
        "/v1/deposits",
        json={"account_id": account_id, "amount": 500, "currency": "EUR"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert deposit.status_code == 201
    payment = await pay(tenant.partner, payment_body(account_id, 100))
    final = await wait_for_status(tenant.partner, payment["id"], TERMINAL)
    assert final["status"] == "rejected"
    assert final["failure"]["code"] == "kyc_not_approved"


async def test_idempotency_key_replays_conflicts_and_is_required(tenant: Tenant) -> None:
    account = await funded_account(tenant, 10_000)
    body = payment_body(account["id"], 700)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await tenant.partner.post("/v1/payments", json=body, headers=key)
    replay = await tenant.partner.post("/v1/payments", json=body, headers=key)
    assert first.status_code == replay.status_code == 202
    assert replay.json() == first.json()
    assert replay.headers.get("idempotent-replayed") == "true"
    different = await tenant.partner.post("/v1/payments", json={**body, "amount": 701}, headers=key)
    assert different.status_code == 422
    assert different.json()["code"] == "idempotency_key_reused"
    missing = await tenant.partner.post("/v1/payments", json=body)
    assert missing.status_code == 400
    assert missing.json()["code"] == "idempotency_key_missing"
    await wait_for_status(tenant.partner, first.json()["id"], TERMINAL)
    listed = (await tenant.partner.get("/v1/payments", params={"account_id": account["id"]})).json()
    assert [p["id"] for p in listed["data"]] == [first.json()["id"]]
    assert (await balances(tenant.partner, account["id"]))["posted"] == 9_300


async def test_list_paginates_newest_first_and_filters(tenant: Tenant) -> None:
    account = await funded_account(tenant, 10_000)
    ids = [(await pay(tenant.partner, payment_body(account["id"], 10)))["id"] for _ in range(3)]
    for payment_id in ids:
        await wait_for_status(tenant.partner, payment_id, TERMINAL)
    page1 = (await tenant.partner.get("/v1/payments", params={"limit": 2})).json()
    assert [p["id"] for p in page1["data"]] == ids[::-1][:2]
    assert page1["has_more"] is True
    page2 = (
        await tenant.partner.get(
            "/v1/payments", params={"limit": 2, "starting_after": page1["data"][-1]["id"]}
        )
    ).json()
    assert [p["id"] for p in page2["data"]] == [ids[0]]
    assert page2["has_more"] is False
    settled = (await tenant.partner.get("/v1/payments", params={"status": "settled"})).json()
    assert {p["id"] for p in settled["data"]} == set(ids)
    none = (await tenant.partner.get("/v1/payments", params={"status": "in_review"})).json()
    assert none == {"object": "list", "data": [], "has_more": False}


async def test_other_tenants_objects_are_not_found(tenant: Tenant, stack: Stack) -> None:
    account = await funded_account(tenant, 1_000)
    payment = await pay(tenant.partner, payment_body(account["id"], 10))
    partner_key, _ = await make_keys(stack, f"ten_{uuid.uuid4().hex[:12]}")
    async with httpx.AsyncClient(
        base_url=stack.settings.api.url, headers={"Authorization": f"Bearer {partner_key}"}
    ) as stranger:
        for path in (
            f"/v1/payments/{payment['id']}",
            f"/v1/accounts/{account['id']}",
            f"/v1/customers/{account['customer_id']}",
        ):
            response = await stranger.get(path)
            assert response.status_code == 404, path
            assert response.headers["content-type"].startswith("application/problem+json")
        theirs = await stranger.post(
            "/v1/payments",
            json=payment_body(account["id"], 10),
            headers={"Idempotency-Key": "k1"},
        )
        assert theirs.status_code == 422
        assert theirs.json()["code"] == "account_not_found"


async def test_entries_page_through_an_accounts_history(tenant: Tenant) -> None:
    account = await funded_account(tenant, 10_000)
    payment = await pay(tenant.partner, payment_body(account["id"], 2_500))
    await wait_for_status(tenant.partner, payment["id"], TERMINAL)
    first = await tenant.partner.get(f"/v1/accounts/{account['id']}/entries", params={"limit": 2})
    assert first.status_code == 200, first.text
    page = first.json()
    # newest first: the post, then the hold; the deposit is on the next page
    assert [e["transfer_id"] for e in page["data"]] == [
        f"{payment['id']}:post",
        f"{payment['id']}:hold",
    ]
    assert [(e["posted_change"], e["pending_change"]) for e in page["data"]] == [
        (-2_500, 2_500),
        (0, -2_500),
    ]
    assert page["data"][0]["balances_after"] == {
        "posted": 7_500,
        "pending": 0,
        "available": 7_500,
    }
    assert page["has_more"] is True
    rest = await tenant.partner.get(
        f"/v1/accounts/{account['id']}/entries",
        params={"limit": 2, "starting_after": page["data"][-1]["id"]},
    )
    assert [e["version"] for e in rest.json()["data"]] == [1]
    assert rest.json()["has_more"] is False
    assert rest.json()["data"][0]["balances_after"]["posted"] == 10_000


async def test_cancel_in_review_releases_nothing_and_ends_canceled(tenant: Tenant) -> None:
    # over the low tier's daily amount limit: a review a cancel may end (a screening hit's
    # review is decided by the review alone: test_outcome_unknown.py)
    account = await funded_account(tenant, 6_000_000)
    payment = await pay(tenant.partner, payment_body(account["id"], 5_000_001))
    await wait_for_status(tenant.partner, payment["id"], {"in_review"})
    canceled = await tenant.partner.post(
        f"/v1/payments/{payment['id']}/cancel", json={"reason": "customer changed their mind"}
    )
    assert canceled.status_code == 202, canceled.text
    final = await wait_for_status(tenant.partner, payment["id"], TERMINAL)
    assert final["status"] == "canceled"
    assert final["failure"]["message"] == "customer changed their mind"
    assert (await balances(tenant.partner, account["id"]))["available"] == 6_000_000
    again = await tenant.partner.post(f"/v1/payments/{payment['id']}/cancel", json={})
    assert (again.status_code, again.json()["code"]) == (409, "payment_not_cancelable")


async def test_unreachable_bank_waits_in_action_required_until_ops_retry(
    tenant: Tenant, stack: Stack
) -> None:
    account = await funded_account(tenant, 5_000)
    stack.stop("banksim")
    try:
        payment = await pay(tenant.partner, payment_body(account["id"], 300))
        stuck = await wait_for_status(
            tenant.partner, payment["id"], {"action_required"} | TERMINAL, timeout=90
        )
        assert stuck["status"] == "action_required"
        assert (await balances(tenant.partner, account["id"]))["available"] == 4_700  # held
        too_early = await tenant.partner.post(f"/v1/payments/{payment['id']}/retry")
        assert too_early.status_code == 403  # retry is an ops action
    finally:
        stack.start_banksim()
    retried = await tenant.ops.post(f"/v1/payments/{payment['id']}/retry")
    assert retried.status_code == 202, retried.text
    final = await wait_for_status(tenant.partner, payment["id"], TERMINAL)
    assert final["status"] == "settled"
    assert [s["status"] for s in final["status_history"]] == [
        "processing",
        "action_required",
        "processing",
        "submitted",
        "settled",
    ]
    # the retry is audited with the transition it caused, back to processing
    record, change = await decision_and_effect(stack, payment["id"], "payment.retry")
    assert (record.actor, change.status) == ("ops-olga", "processing")


async def test_adhoc_screening_explains_its_hits(tenant: Tenant) -> None:
    listed = await tenant.partner.post(
        "/v1/screenings", json={"name": "Banco Nacional de Cuba", "type": "business"}
    )
    assert listed.status_code == 200, listed.text
    result = listed.json()
    assert result["id"].startswith("scr_")
    assert result["decision"] == "block"
    top = result["hits"][0]
    assert (top["entity_id"], top["matched_name"], top["score"]) == (
        "306",
        "BANCO NACIONAL DE CUBA",
        1.0,
    )
    assert "nacional~nacional" in top["explanation"]
    assert top["list_version"] in result["list_versions"]
    clean = (await tenant.partner.post("/v1/screenings", json={"name": "Erika Mustermann"})).json()
    assert (clean["decision"], clean["hits"]) == ("clear", [])


async def test_every_adhoc_screening_is_audited(tenant: Tenant, stack: Stack) -> None:
    name = f"Oracle Probe {uuid.uuid4().hex[:8]}"
    answer = (await tenant.partner.post("/v1/screenings", json={"name": name})).json()
    engine = get_engine(stack.settings)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT actor, tenant_id, detail FROM audit_log"
                        " WHERE action = 'screening.requested' AND subject = :id"
                    ),
                    {"id": answer["id"]},
                )
            ).one()
    finally:
        await dispose_engines()
    assert row.tenant_id == tenant.tenant_id
    assert row.detail["name"] == name and row.detail["decision"] == answer["decision"]


async def test_no_money_moves_for_a_payment_whose_row_never_committed(
    tenant: Tenant, stack: Stack
) -> None:
    # the limits check is the payment's last step before the hold; it refuses (and is
    # retried) until the API's transaction that inserted the payment has committed
    account = await funded_account(tenant, 1_000)
    checks = LimitActivities(get_engine(stack.settings), tier_limits(stack.settings.limits))
    request = LimitsInput(tenant.tenant_id, account["customer_id"], "pay_notcommitted", 100, "EUR")
    try:
        with pytest.raises(PaymentNotCommittedError):
            await checks.check_payment_limits(request)
        payment = await pay(tenant.partner, payment_body(account["id"], 100))
        committed = await checks.check_payment_limits(replace(request, payment_id=payment["id"]))
    finally:
        await dispose_engines()
    assert committed.exceeded == []


async def test_a_workflow_started_before_its_row_commits_moves_no_money_until_it_does(
    tenant: Tenant, stack: Stack
) -> None:
    # POST /v1/payments starts the workflow before the transaction that writes the payment
    # (no transaction waits on Temporal): a workflow whose row is not there yet runs up to
    # its limits check and holds nothing; the client's retry commits the row and it goes on
    account = await funded_account(tenant, 1_000)
    order = PaymentOrder(
        payment_id=f"pay_{uuid.uuid4().hex[:20]}",
        tenant_id=tenant.tenant_id,
        initiated_by="test",
        key_id="key_test",
        account_id=account["id"],
        customer_id=account["customer_id"],
        amount=100,
        currency="EUR",
        rail="sepa",
        creditor=payment_body(account["id"])["creditor"],
    )
    engine = get_engine(stack.settings)
    client = await connect(stack.settings)
    screened = text(
        "SELECT count(*) FROM audit_log WHERE subject = :p AND action = 'screening.completed'"
    )
    held = text("SELECT count(*) FROM ledger_transfer_ids WHERE id = :h")
    try:
        await start_payment_workflow(client, stack.settings, order)
        async with engine.connect() as conn:
            # screening is the step before the limits check
            while not (await conn.execute(screened, {"p": order.payment_id})).scalar_one():
                await conn.commit()
                await asyncio.sleep(0.05)
            await conn.commit()
        await asyncio.sleep(0.5)  # (room for a wrong hold to happen: not an assertion's time)
        async with engine.connect() as conn:
            assert (await conn.execute(held, {"h": f"{order.payment_id}:hold"})).scalar_one() == 0
        initiated = await initiate_payment(engine, client, stack.settings, order)
        assert initiated.first_time
        await wait_for_status(tenant.partner, order.payment_id, {"settled"})
        async with engine.connect() as conn:
            assert (await conn.execute(held, {"h": f"{order.payment_id}:hold"})).scalar_one() == 1
    finally:
        await dispose_engines()
