"""Payment batches through the real stack (issue #19): a JSON batch of 50 payments all
settle and a retry pays nothing twice; CSV and pain.001 batches with one bad item are refused
whole naming it, then accepted without it with `skip`; four-eyes above the review threshold;
cancel."""

from __future__ import annotations

import asyncio
import io
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete, func, select

from api.batch_input import CSV_COLUMNS
from iso20022 import pain001
from kernel.api_keys import create_key
from kernel.db import dispose_engines, get_engine
from kernel.tables import audit_log, idempotency_keys, payment_batches, payments
from ops.batch_upload import submit as submit_file
from ops.devstack import Stack
from tests.integration.helpers import Tenant, balances, fresh_iban, funded_account

BAD_IBAN = "DE00370400440532013000"  # the format of a German IBAN, a wrong check digit


def item(account_id: str, index: int, amount: int = 100, **creditor: Any) -> dict[str, Any]:
    return {
        "reference": f"item-{index:04d}",
        "account_id": account_id,
        "amount": amount,
        "currency": "EUR",
        "rail": "sepa",
        "creditor": {"name": "Erika Mustermann", "country": "DE", "iban": fresh_iban(), **creditor},
        "remittance_info": f"Invoice {index}",
    }


async def submit(
    client: httpx.AsyncClient,
    body: dict[str, Any] | bytes,
    *,
    key: str | None = None,
    content_type: str = "application/json",
    params: dict[str, str] | None = None,
) -> httpx.Response:
    headers = {"Idempotency-Key": key or str(uuid.uuid4()), "Content-Type": content_type}
    if isinstance(body, dict):
        return await client.post("/v1/payment-batches", json=body, headers=headers, params=params)
    return await client.post("/v1/payment-batches", content=body, headers=headers, params=params)


async def wait_for_batch(
    client: httpx.AsyncClient, batch_id: str, statuses: set[str], timeout: float = 240.0
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await client.get(f"/v1/payment-batches/{batch_id}")
        assert response.status_code == 200, response.text
        batch: dict[str, Any] = response.json()
        if batch["status"] in statuses:
            return batch
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{batch_id} stuck in {batch['status']}: {batch['counts']}")
        await asyncio.sleep(0.5)


async def batch_payments(client: httpx.AsyncClient, batch_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"batch_id": batch_id, "limit": 100}
    while True:
        page = (await client.get("/v1/payments", params=params)).json()
        found += page["data"]
        if not page["has_more"]:
            return found
        params["starting_after"] = page["data"][-1]["id"]


async def batches_of(stack: Stack, tenant_id: str) -> int:
    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        count = (
            await conn.execute(
                select(func.count())
                .select_from(payment_batches)
                .where(payment_batches.c.tenant_id == tenant_id)
            )
        ).scalar_one()
    await dispose_engines()
    return int(count)


async def test_json_batch_settles_every_item_and_a_retry_pays_nothing_twice(
    stack: Stack, tenant: Tenant
) -> None:
    account = await funded_account(tenant, 100_000)
    body = {"reference": "payroll", "items": [item(account["id"], i) for i in range(50)]}
    key = str(uuid.uuid4())
    response = await submit(tenant.partner, body, key=key)
    assert response.status_code == 202, response.text
    batch = response.json()
    assert batch["id"].startswith("bat_")
    assert (batch["status"], batch["item_count"], batch["totals"]) == (
        "processing",
        50,
        {"EUR": 5_000},
    )
    assert batch["counts"] == {"pending": 50}
    done = await wait_for_batch(tenant.partner, batch["id"], {"completed", "canceled"})
    assert done["status"] == "completed"
    assert done["counts"] == {"settled": 50}
    listed = await batch_payments(tenant.partner, batch["id"])
    assert len(listed) == 50
    assert {payment["status"] for payment in listed} == {"settled"}
    items = (
        await tenant.partner.get(f"/v1/payment-batches/{batch['id']}/items", params={"limit": 100})
    ).json()
    assert [entry["index"] for entry in items["data"]] == list(range(50))
    assert {entry["id"] for entry in items["data"]} == {payment["id"] for payment in listed}
    assert (await balances(tenant.partner, account["id"]))["posted"] == 95_000

    # the same request again replays the answer
    replay = await submit(tenant.partner, body, key=key)
    assert replay.status_code == 202
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == batch["id"]
    # ... and when its stored answer was lost (the API died between the commit and storing
    # it), the request runs again: the same batch, the same 50 payments, nothing paid twice
    engine = get_engine(stack.settings)
    async with engine.begin() as conn:
        await conn.execute(
            delete(idempotency_keys).where(
                idempotency_keys.c.tenant_id == tenant.tenant_id, idempotency_keys.c.key == key
            )
        )
    await dispose_engines()
    rerun = await submit(tenant.partner, body, key=key)
    assert rerun.status_code == 202, rerun.text
    assert rerun.json()["id"] == batch["id"]
    await asyncio.sleep(2.0)  # room for a second run to do harm, were there one
    async with engine.connect() as conn:
        made = (
            await conn.execute(
                select(func.count()).select_from(payments).where(payments.c.batch_id == batch["id"])
            )
        ).scalar_one()
    await dispose_engines()
    assert made == 50
    assert await batches_of(stack, tenant.tenant_id) == 1
    assert (await balances(tenant.partner, account["id"]))["posted"] == 95_000


def csv_body(account_id: str, ibans: list[str]) -> bytes:
    lines = [",".join(CSV_COLUMNS)]
    for index, iban in enumerate(ibans):
        lines.append(
            f"csv-{index},{account_id},250,EUR,sepa,Erika Mustermann,DE,{iban},,,,Invoice {index}"
        )
    return ("\n".join(lines) + "\n").encode()


async def test_csv_with_one_bad_item_is_refused_whole_then_accepted_with_skip(
    stack: Stack, tenant: Tenant
) -> None:
    account = await funded_account(tenant, 10_000)
    body = csv_body(account["id"], [fresh_iban(), fresh_iban(), BAD_IBAN, fresh_iban()])
    refused = await submit(tenant.partner, body, content_type="text/csv")
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "payment_batch_invalid"
    [error] = problem["errors"]
    # the header is line 1: the third item is on line 4
    assert (error["index"], error["line"], error["reference"]) == (2, 4, "csv-2")
    assert (error["field"], error["code"]) == ("iban", "invalid_iban")
    assert await batches_of(stack, tenant.tenant_id) == 0

    accepted = await submit(
        tenant.partner, body, content_type="text/csv", params={"on_invalid_item": "skip"}
    )
    assert accepted.status_code == 202, accepted.text
    batch = accepted.json()
    assert (batch["source"], batch["item_count"], batch["skipped_count"]) == ("csv", 3, 1)
    assert [skipped["line"] for skipped in batch["skipped_items"]] == [4]
    done = await wait_for_batch(tenant.partner, batch["id"], {"completed", "canceled"})
    assert done["counts"] == {"settled": 3}
    items = (await tenant.partner.get(f"/v1/payment-batches/{batch['id']}/items")).json()
    assert [(entry["index"], entry["line"]) for entry in items["data"]] == [(0, 2), (1, 3), (3, 5)]


async def test_pain001_with_one_bad_item_is_refused_whole_then_accepted_with_skip(
    stack: Stack, tenant: Tenant
) -> None:
    account = await funded_account(tenant, 10_000)
    transfers = [
        {
            "end_to_end_id": f"E2E-{index}",
            "amount": "3.10",
            "currency": "EUR",
            "name": "Erika Mustermann",
            "country": "DE",
            "iban": iban,
        }
        for index, iban in enumerate([fresh_iban(), BAD_IBAN, fresh_iban()])
    ]
    document = pain001.build(f"MSG-{uuid.uuid4().hex[:8]}", account["id"], transfers)
    # the official schema first: a document it refuses is refused whole
    broken = document.replace(b"<PmtMtd>TRF</PmtMtd>", b"<PmtMtd>XXX</PmtMtd>")
    invalid = await submit(tenant.partner, broken, content_type="application/xml")
    assert invalid.status_code == 422
    assert invalid.json()["code"] == "invalid_pain001"

    refused = await submit(tenant.partner, document, content_type="application/xml")
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["errors"]
    assert (error["index"], error["reference"], error["code"]) == (1, "E2E-1", "invalid_iban")
    assert error["line"] == pain001.parse(document).transfers[1].line
    assert await batches_of(stack, tenant.tenant_id) == 0

    accepted = await submit(
        tenant.partner,
        document,
        content_type="application/xml",
        params={"on_invalid_item": "skip"},
    )
    assert accepted.status_code == 202, accepted.text
    batch = accepted.json()
    assert (batch["source"], batch["item_count"], batch["totals"]) == ("pain.001", 2, {"EUR": 620})
    done = await wait_for_batch(tenant.partner, batch["id"], {"completed", "canceled"})
    assert done["counts"] == {"settled": 2}


async def ops_key_of_the_sender(stack: Stack, tenant_id: str) -> str:
    """An ops key of the principal that sends the partner's batches (`partner-app`)."""
    engine = get_engine(stack.settings)
    async with engine.begin() as conn:
        key = await create_key(
            conn, tenant_id=tenant_id, principal="partner-app", scopes=["ops", "payments:read"]
        )
    await dispose_engines()
    return key


async def test_a_batch_above_the_threshold_waits_for_a_second_principal(
    stack: Stack, tenant: Tenant
) -> None:
    account = await funded_account(tenant, 2_000_000)
    threshold = stack.settings.batches.review_threshold
    body = {"items": [item(account["id"], i, amount=threshold // 2 + 1) for i in range(2)]}
    response = await submit(tenant.partner, body)
    assert response.status_code == 202, response.text
    batch = response.json()
    assert (batch["status"], batch["needs_review"]) == ("in_review", True)
    assert await batch_payments(tenant.partner, batch["id"]) == []

    async with httpx.AsyncClient(
        base_url=stack.settings.api.url,
        headers={"Authorization": f"Bearer {await ops_key_of_the_sender(stack, tenant.tenant_id)}"},
        timeout=30,
    ) as sender_ops:
        own = await sender_ops.post(
            f"/v1/payment-batches/{batch['id']}/review", json={"decision": "approve"}
        )
    assert own.status_code == 403, own.text
    assert own.json()["code"] == "four_eyes_violation"
    assert (await tenant.partner.get(f"/v1/payment-batches/{batch['id']}")).json()[
        "status"
    ] == "in_review"

    approved = await tenant.ops.post(
        f"/v1/payment-batches/{batch['id']}/review",
        json={"decision": "approve", "note": "payroll checked"},
    )
    assert approved.status_code == 200, approved.text
    done = await wait_for_batch(tenant.partner, batch["id"], {"completed", "canceled"})
    assert done["status"] == "completed"
    assert done["counts"] == {"settled": 2}
    assert done["review"]["reviewed_by"] == "ops-olga"
    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        audited = (
            await conn.execute(
                select(audit_log.c.action, audit_log.c.actor).where(
                    audit_log.c.subject == batch["id"]
                )
            )
        ).all()
    await dispose_engines()
    assert sorted(audited) == [
        ("payment_batch.created", "partner-app"),
        ("payment_batch.review.approve", "ops-olga"),
    ]
    again = await tenant.ops.post(
        f"/v1/payment-batches/{batch['id']}/review", json={"decision": "approve"}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "payment_batch_not_in_review"


async def test_cancel_a_batch(stack: Stack, tenant: Tenant) -> None:
    account = await funded_account(tenant, 2_000_000)
    threshold = stack.settings.batches.review_threshold
    # in review: nothing has started, so everything is canceled
    body = {"items": [item(account["id"], i, amount=threshold // 3 + 1) for i in range(3)]}
    batch = (await submit(tenant.partner, body)).json()
    assert batch["status"] == "in_review"
    canceled = await tenant.partner.post(
        f"/v1/payment-batches/{batch['id']}/cancel", json={"reason": "wrong month"}
    )
    assert canceled.status_code == 202, canceled.text
    done = await wait_for_batch(tenant.partner, batch["id"], {"completed", "canceled"})
    assert done["status"] == "canceled"
    assert done["counts"] == {"canceled": 3}
    assert await batch_payments(tenant.partner, batch["id"]) == []
    assert (await balances(tenant.partner, account["id"]))["posted"] == 2_000_000
    late = await tenant.partner.post(f"/v1/payment-batches/{batch['id']}/cancel", json={})
    assert late.status_code == 409
    assert late.json()["code"] == "payment_batch_not_cancelable"
    events = (await tenant.partner.get("/v1/events", params={"limit": 100})).json()["data"]
    assert {"payment_batch.in_review", "payment_batch.canceled"} <= {e["type"] for e in events}

    # while processing: what has not been submitted is canceled, the rest finishes; however
    # the race goes, every item ends canceled or finished and only settled ones paid
    before = (await balances(tenant.partner, account["id"]))["posted"]
    running = (
        await submit(tenant.partner, {"items": [item(account["id"], i) for i in range(30)]})
    ).json()
    assert running["status"] == "processing"
    stop = await tenant.partner.post(f"/v1/payment-batches/{running['id']}/cancel", json={})
    assert stop.status_code == 202, stop.text
    ended = await wait_for_batch(tenant.partner, running["id"], {"completed", "canceled"})
    assert ended["status"] == "canceled"
    assert ended["counts"].get("canceled", 0) > 0
    final: dict[str, int] = {}
    for _ in range(240):  # payments asked to cancel finish on their own workflows' time
        final = (await tenant.partner.get(f"/v1/payment-batches/{running['id']}")).json()["counts"]
        if set(final) <= {"canceled", "settled", "failed", "rejected", "returned"}:
            break
        await asyncio.sleep(0.5)
    assert set(final) <= {"canceled", "settled"}, final
    assert sum(final.values()) == 30
    settled = final.get("settled", 0)
    assert (await balances(tenant.partner, account["id"]))["posted"] == before - 100 * settled


async def test_the_cli_submits_a_file_and_shows_progress_to_the_end(
    stack: Stack, tenant: Tenant, tmp_path: Path
) -> None:
    account = await funded_account(tenant, 10_000)
    path = tmp_path / "suppliers.csv"
    path.write_bytes(csv_body(account["id"], [fresh_iban() for _ in range(3)]))
    key = tenant.partner.headers["Authorization"]
    out = io.StringIO()
    status = await asyncio.to_thread(
        submit_file,
        path,
        api_url=stack.settings.api.url,
        api_key=key.removeprefix("Bearer "),
        poll_seconds=0.3,
        out=out,
    )
    text = out.getvalue()
    assert status == 0, text
    assert "3 items accepted" in text
    assert text.rstrip().endswith("completed settled=3")
    assert "[" + "#" * 30 + "] 3/3" in text
    # the same file again: the first answer, not a second batch
    again = io.StringIO()
    await asyncio.to_thread(
        submit_file,
        path,
        api_url=stack.settings.api.url,
        api_key=key.removeprefix("Bearer "),
        follow=False,
        out=again,
    )
    assert again.getvalue().split(":")[0] == text.split(":")[0]
    assert await batches_of(stack, tenant.tenant_id) == 1
