"""Deposits move money exactly once (issue 15, point 5), through the real API, PostgreSQL
and Temporal: the answer to a deposit request commits with the deposit, so a failure
between the two can neither leave money credited under a key that runs again nor release
a key whose deposit committed; a takeover of a stuck first request finds its deposit."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, text, update

from kernel.db import dispose_engines, get_engine
from kernel.tables import deposits, idempotency_keys
from ops.devstack import Stack
from tests.integration.helpers import Tenant, balances, funded_account

# fails any write that stores an answer in the record of one key: the database refusing
# the answer, at the one moment that matters
FAIL_ANSWER_FUNCTION = """
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.key = '{key}' AND NEW.response_status IS NOT NULL THEN
        RAISE EXCEPTION 'injected: the answer to {key} cannot be stored';
    END IF;
    RETURN NEW;
END $$
"""
FAIL_ANSWER_TRIGGER = """
CREATE TRIGGER {name} BEFORE INSERT OR UPDATE ON idempotency_keys
    FOR EACH ROW EXECUTE FUNCTION {name}()
"""


async def _execute(stack: Stack, *statements: str) -> None:
    engine = get_engine(stack.settings)
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))
    await dispose_engines()


async def _credits(stack: Stack, account_id: str) -> int:
    """How many ledger transfers credit the account (deposits only: it pays nothing)."""
    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        count = (
            await conn.execute(
                text("SELECT count(*) FROM ledger_transfers WHERE credit_account_id = :id"),
                {"id": account_id},
            )
        ).scalar_one()
    await dispose_engines()
    return int(count)


async def _record(stack: Stack, tenant_id: str, key: str) -> Any:
    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(idempotency_keys).where(
                    idempotency_keys.c.tenant_id == tenant_id, idempotency_keys.c.key == key
                )
            )
        ).first()
    await dispose_engines()
    return row


async def test_a_deposit_whose_answer_cannot_be_stored_credits_nothing_and_runs_once_on_retry(
    tenant: Tenant, stack: Stack
) -> None:
    account = await funded_account(tenant, 0)
    key = f"dep-once-{uuid.uuid4().hex}"
    body = {"account_id": account["id"], "amount": 1_500, "currency": "EUR"}
    name = f"fail_answer_{uuid.uuid4().hex[:12]}"
    await _execute(
        stack,
        FAIL_ANSWER_FUNCTION.format(name=name, key=key),
        FAIL_ANSWER_TRIGGER.format(name=name),
    )
    try:
        failed = await tenant.ops.post("/v1/deposits", json=body, headers={"Idempotency-Key": key})
    finally:
        await _execute(stack, f"DROP TRIGGER {name} ON idempotency_keys", f"DROP FUNCTION {name}()")
    assert failed.status_code == 500, failed.text
    # the deposit and its answer are one transaction: no answer, no money (before this, the
    # money was credited while the key stayed unanswered, to be run again by a takeover)
    assert (await balances(tenant.partner, account["id"]))["posted"] == 0
    assert await _credits(stack, account["id"]) == 0
    # ... and the key was released (its deposit never committed): the retry runs
    assert await _record(stack, tenant.tenant_id, key) is None

    first = await tenant.ops.post("/v1/deposits", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    assert first.headers.get("Idempotent-Replayed") is None
    again = await tenant.ops.post("/v1/deposits", json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 201, again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    other = {**body, "amount": 2_500}
    reused = await tenant.ops.post("/v1/deposits", json=other, headers={"Idempotency-Key": key})
    assert reused.status_code == 422, reused.text
    assert reused.json()["code"] == "idempotency_key_reused"
    assert (await balances(tenant.partner, account["id"]))["posted"] == 1_500
    assert await _credits(stack, account["id"]) == 1


async def test_the_answer_commits_with_the_deposit_so_a_failure_after_it_never_releases_the_key(
    tenant: Tenant, stack: Stack
) -> None:
    """The key's record is answered in the deposit's own transaction: the moment the deposit
    is visible, so is its answer. A failure after that commit (the API process dying before
    it answers, a delivery start failing) leaves nothing a release could undo: the retry
    replays, a different body with the key is refused."""
    account = await funded_account(tenant, 0)
    key = f"dep-once-{uuid.uuid4().hex}"
    body = {"account_id": account["id"], "amount": 1_700, "currency": "EUR"}
    first = await tenant.ops.post("/v1/deposits", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    deposit_id = first.json()["id"]
    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        # one row each: the deposit and its answer carry the same commit's transaction id
        stamps = (
            await conn.execute(
                text(
                    "SELECT (SELECT xmin::text FROM deposits WHERE id = :deposit),"
                    " (SELECT xmin::text FROM idempotency_keys WHERE tenant_id = :tenant"
                    " AND key = :key)"
                ),
                {"deposit": deposit_id, "tenant": tenant.tenant_id, "key": key},
            )
        ).one()
    await dispose_engines()
    assert stamps[0] == stamps[1]
    record = await _record(stack, tenant.tenant_id, key)
    assert record.response_status == 201 and record.response_body == first.json()
    again = await tenant.ops.post("/v1/deposits", json=body, headers={"Idempotency-Key": key})
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    other = {**body, "amount": 1}
    reused = await tenant.ops.post("/v1/deposits", json=other, headers={"Idempotency-Key": key})
    assert reused.json()["code"] == "idempotency_key_reused"
    assert await _credits(stack, account["id"]) == 1


# backends waiting on a lock the holder's backend holds; on a lock, in a statement like ...
BLOCKED_BY = "SELECT count(*) FROM pg_stat_activity WHERE :holder = ANY(pg_blocking_pids(pid))"
WAITING_IN = (
    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE :like"
)


async def _wait_for_backend(
    stack: Stack, query: str, params: dict[str, Any], timeout: float = 20.0
) -> None:
    """Until `query` counts a database backend."""
    engine = get_engine(stack.settings)
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        while True:
            async with engine.connect() as conn:
                found = (await conn.execute(text(query), params)).scalar_one()
            if found:
                return
            assert asyncio.get_running_loop().time() < deadline, f"no backend: {query}"
            await asyncio.sleep(0.05)
    finally:
        await dispose_engines()


async def test_a_takeover_of_a_stuck_first_request_never_credits_twice(
    tenant: Tenant, stack: Stack
) -> None:
    account = await funded_account(tenant, 0)
    key = f"dep-once-{uuid.uuid4().hex}"
    body = {"account_id": account["id"], "amount": 2_300, "currency": "EUR"}
    engine = get_engine(stack.settings)
    async with engine.connect() as holder:
        await holder.begin()
        # the first request is stuck inside its transaction, on the account's lock ...
        await holder.execute(
            text("SELECT 1 FROM ledger_accounts WHERE id = :id FOR UPDATE"), {"id": account["id"]}
        )
        holder_pid = (await holder.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        first_request = asyncio.create_task(
            tenant.ops.post("/v1/deposits", json=body, headers={"Idempotency-Key": key})
        )
        await _wait_for_backend(stack, BLOCKED_BY, {"holder": holder_pid})
        # ... for longer than the takeover time (aged rather than waited for)
        async with engine.begin() as conn:
            await conn.execute(
                update(idempotency_keys)
                .where(
                    idempotency_keys.c.tenant_id == tenant.tenant_id,
                    idempotency_keys.c.key == key,
                )
                .values(
                    created_at=func.now()
                    - timedelta(seconds=stack.settings.api.idempotency_takeover_seconds + 1)
                )
            )
        # a retry takes the request over and runs it again, meeting the first's deposit
        second_request = asyncio.create_task(
            tenant.ops.post("/v1/deposits", json=body, headers={"Idempotency-Key": key})
        )
        await _wait_for_backend(stack, WAITING_IN, {"like": "INSERT INTO deposits%"})
        await holder.rollback()
    first, second = await asyncio.gather(first_request, second_request)
    await dispose_engines()
    assert (first.status_code, second.status_code) == (201, 201), (first.text, second.text)
    assert second.json()["id"] == first.json()["id"]
    assert second.json() == first.json()
    assert (await balances(tenant.partner, account["id"]))["posted"] == 2_300
    assert await _credits(stack, account["id"]) == 1
    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(select(deposits.c.id).where(deposits.c.account_id == account["id"]))
        ).all()
    await dispose_engines()
    assert len(rows) == 1


async def test_a_retry_after_the_answer_was_lost_replays_the_one_deposit(
    tenant: Tenant, stack: Stack
) -> None:
    """The client gives up while the deposit is still being made (its answer is lost); the
    deposit commits anyway, and the retry answers that deposit, credited once."""
    account = await funded_account(tenant, 0)
    key = f"dep-once-{uuid.uuid4().hex}"
    body = {"account_id": account["id"], "amount": 900, "currency": "EUR"}
    engine = get_engine(stack.settings)
    async with engine.connect() as holder:
        await holder.begin()
        await holder.execute(
            text("SELECT 1 FROM ledger_accounts WHERE id = :id FOR UPDATE"), {"id": account["id"]}
        )
        holder_pid = (await holder.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        gives_up = asyncio.create_task(
            tenant.ops.post(
                "/v1/deposits", json=body, headers={"Idempotency-Key": key}, timeout=1.0
            )
        )
        await _wait_for_backend(stack, BLOCKED_BY, {"holder": holder_pid})
        try:
            await gives_up
        except httpx.TimeoutException:
            pass
        else:
            raise AssertionError("the first answer arrived although the deposit was held")
        await holder.rollback()
    await dispose_engines()
    # the first request goes on after its client left: wait for its answer to be recorded
    deadline = asyncio.get_running_loop().time() + 20
    while (record := await _record(stack, tenant.tenant_id, key)) is None or (
        record.response_status is None
    ):
        assert asyncio.get_running_loop().time() < deadline, "the deposit never committed"
        await asyncio.sleep(0.05)
    retry = await tenant.ops.post("/v1/deposits", json=body, headers={"Idempotency-Key": key})
    assert retry.status_code == 201, retry.text
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert retry.json() == record.response_body
    assert (await balances(tenant.partner, account["id"]))["posted"] == 900
    assert await _credits(stack, account["id"]) == 1
