"""The unit of work: a state change, its event, its webhook deliveries and its audit record
commit together or not at all (real PostgreSQL and Temporal); a deposit re-run under its
Idempotency-Key finds the deposit its first attempt made."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from temporalio.service import RPCError

from kernel.db import dispose_engines, get_engine
from kernel.tables import audit_log, customers, events, idempotency_keys
from kernel.temporal_client import connect
from ops.devstack import Stack
from services.events import DeliveryStarter
from services.unit_of_work import UnitOfWork
from tests.integration.helpers import Tenant, balances, create_customer, funded_account
from workflows.webhook_delivery import delivery_workflow_id


class EffectFailedError(Exception):
    """Raised inside the unit after its change, event and audit record were made."""


async def _endpoint(t: Tenant) -> str:
    # nothing listens on the discard port: a delivery started would show in Temporal
    response = await t.partner.post(
        "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hooks"}
    )
    assert response.status_code == 201, response.text
    endpoint_id: str = response.json()["id"]
    return endpoint_id


async def _state(stack: Stack, customer_id: str, event_id: str, key: str) -> dict[str, Any]:
    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        note = (
            await conn.execute(
                select(customers.c.kyc_review_note).where(customers.c.id == customer_id)
            )
        ).scalar_one()
        event = (await conn.execute(select(events.c.id).where(events.c.id == event_id))).first()
        record = (
            await conn.execute(select(audit_log.c.action).where(audit_log.c.idempotency_key == key))
        ).first()
    return {"note": note, "event": event is not None, "audit": record is not None}


async def _delivery_started(stack: Stack, event_id: str, endpoint_id: str) -> bool:
    client = await connect(stack.settings)
    try:
        await client.get_workflow_handle(delivery_workflow_id(event_id, endpoint_id)).describe()
    except RPCError:
        return False
    return True


async def _unit(
    stack: Stack, t: Tenant, customer_id: str, event_id: str, key: str, *, actor: Any
) -> None:
    """Mark the customer frozen, announce it and audit it, in one unit of work."""
    engine = get_engine(stack.settings)
    client = await connect(stack.settings)
    async with UnitOfWork(engine, DeliveryStarter(client, stack.settings)) as uow:
        await uow.conn.execute(
            update(customers).where(customers.c.id == customer_id).values(kyc_review_note="frozen")
        )
        await uow.event(
            event_id=event_id,
            tenant_id=t.tenant_id,
            type="customer.frozen",
            data={"customer_id": customer_id},
            at=datetime.now(UTC),
        )
        uow.audit(
            actor=actor,
            action="customer.frozen",
            subject=customer_id,
            tenant_id=t.tenant_id,
            idempotency_key=key,
        )
        if actor == "fail-after-the-effect":
            raise EffectFailedError


async def test_a_failure_after_the_effect_leaves_no_change_event_audit_or_delivery(
    tenant: Tenant, stack: Stack
) -> None:
    customer = await create_customer(tenant.partner)
    endpoint_id = await _endpoint(tenant)
    before = (await _state(stack, customer["id"], "", ""))["note"]
    event_id, key = f"evt_uow_{uuid.uuid4().hex}", f"uow-test:{uuid.uuid4().hex}"
    with pytest.raises(EffectFailedError):
        await _unit(stack, tenant, customer["id"], event_id, key, actor="fail-after-the-effect")
    assert await _state(stack, customer["id"], event_id, key) == {
        "note": before,
        "event": False,
        "audit": False,
    }
    assert not await _delivery_started(stack, event_id, endpoint_id)
    await tenant.partner.delete(f"/v1/webhook-endpoints/{endpoint_id}")
    await dispose_engines()


async def test_a_failing_audit_append_rolls_back_the_change_and_its_event(
    tenant: Tenant, stack: Stack
) -> None:
    customer = await create_customer(tenant.partner)
    endpoint_id = await _endpoint(tenant)
    before = (await _state(stack, customer["id"], "", ""))["note"]
    event_id, key = f"evt_uow_{uuid.uuid4().hex}", f"uow-test:{uuid.uuid4().hex}"
    # the database refuses an audit record without an actor (NOT NULL), at commit time
    with pytest.raises(IntegrityError):
        await _unit(stack, tenant, customer["id"], event_id, key, actor=None)
    assert await _state(stack, customer["id"], event_id, key) == {
        "note": before,
        "event": False,
        "audit": False,
    }
    assert not await _delivery_started(stack, event_id, endpoint_id)
    await tenant.partner.delete(f"/v1/webhook-endpoints/{endpoint_id}")
    await dispose_engines()


async def test_a_committed_unit_has_all_four(tenant: Tenant, stack: Stack) -> None:
    customer = await create_customer(tenant.partner)
    endpoint_id = await _endpoint(tenant)
    event_id, key = f"evt_uow_{uuid.uuid4().hex}", f"uow-test:{uuid.uuid4().hex}"
    await _unit(stack, tenant, customer["id"], event_id, key, actor="ops-olga")
    assert await _state(stack, customer["id"], event_id, key) == {
        "note": "frozen",
        "event": True,
        "audit": True,
    }
    assert await _delivery_started(stack, event_id, endpoint_id)
    # a re-run (a retried activity) writes nothing new and starts nothing new
    await _unit(stack, tenant, customer["id"], event_id, key, actor="ops-olga")
    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        records = (
            await conn.execute(select(audit_log.c.seq).where(audit_log.c.idempotency_key == key))
        ).all()
    assert len(records) == 1
    await tenant.partner.delete(f"/v1/webhook-endpoints/{endpoint_id}")
    await dispose_engines()


async def test_a_deposit_taken_over_after_its_first_attempt_died_credits_once(
    tenant: Tenant, stack: Stack
) -> None:
    account = await funded_account(tenant, 0)
    key = str(uuid.uuid4())
    body = {"account_id": account["id"], "amount": 1_500, "currency": "EUR"}
    first = await tenant.ops.post("/v1/deposits", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    # the first attempt committed its deposit, then its API process died before storing the
    # response: the key is unanswered, and older than the takeover time
    engine = get_engine(stack.settings)
    async with engine.begin() as conn:
        await conn.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.tenant_id == tenant.tenant_id, idempotency_keys.c.key == key)
            .values(
                response_status=None,
                response_body=None,
                created_at=func.now()
                - timedelta(seconds=stack.settings.api.idempotency_takeover_seconds + 1),
            )
        )
    await dispose_engines()
    again = await tenant.ops.post("/v1/deposits", json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 201, again.text
    assert again.headers.get("Idempotent-Replayed") is None  # taken over, not replayed
    assert again.json()["id"] == first.json()["id"]
    assert (await balances(tenant.partner, account["id"]))["posted"] == 1_500
