"""Retention (issue #23): idempotency records, events and webhook deliveries are purged after
their retention, in batches; a key reused after its record expired never makes a second
payment or deposit."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import ActivityEnvironment

from activities.retention import RetentionActivities
from kernel.db import dispose_engines, get_engine
from kernel.tables import deposits, events, idempotency_keys, payments, webhook_deliveries
from ops.devstack import Stack, settings_env
from services.partitions import live_partitions, month_start, partition_name
from services.retention import purge_expired
from tests.integration.helpers import Tenant, funded_account, payment_body
from workflows.models import PurgeInput


async def backdate(engine: AsyncEngine, tenant_id: str, key: str, table: str, obj: str) -> None:
    """Make a request two days old: its idempotency record and the object it made."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE idempotency_keys SET created_at = created_at - interval '2 days'"
                " WHERE tenant_id = :t AND key = :k"
            ),
            {"t": tenant_id, "k": key},
        )
        await conn.execute(
            text(f"UPDATE {table} SET created_at = created_at - interval '2 days' WHERE id = :o"),  # noqa: S608 (a table name of this module)
            {"o": obj},
        )


async def key_recorded(engine: AsyncEngine, tenant_id: str, key: str) -> bool:
    async with engine.connect() as conn:
        found = await conn.execute(
            select(idempotency_keys.c.key).where(
                idempotency_keys.c.tenant_id == tenant_id, idempotency_keys.c.key == key
            )
        )
        return found.first() is not None


async def test_a_payment_key_reused_after_expiry_never_makes_a_second_payment(
    tenant: Tenant, stack: Stack
) -> None:
    engine = get_engine(stack.settings)
    account = await funded_account(tenant, 10_000)
    key = f"pay-{uuid.uuid4()}"
    body = payment_body(account["id"], 1_000)
    first = await tenant.partner.post("/v1/payments", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 202, first.text
    payment_id = first.json()["id"]
    await backdate(engine, tenant.tenant_id, key, "payments", payment_id)
    await purge_expired(engine, stack.settings)
    assert not await key_recorded(engine, tenant.tenant_id, key)

    for reused in (body, payment_body(account["id"], 2_000)):  # the same body, another one
        again = await tenant.partner.post(
            "/v1/payments", json=reused, headers={"Idempotency-Key": key}
        )
        assert again.status_code == 409, again.text
        problem = again.json()
        assert problem["code"] == "idempotency_key_expired"
        assert payment_id in problem["detail"]
    async with engine.connect() as conn:
        made = await conn.execute(
            select(func.count())
            .select_from(payments)
            .where(payments.c.tenant_id == tenant.tenant_id)
        )
        assert made.scalar_one() == 1
    # the refusal claimed nothing: the key stays free, and a new key pays as usual
    assert not await key_recorded(engine, tenant.tenant_id, key)
    fresh = await tenant.partner.post(
        "/v1/payments", json=body, headers={"Idempotency-Key": f"pay-{uuid.uuid4()}"}
    )
    assert fresh.status_code == 202 and fresh.json()["id"] != payment_id
    await dispose_engines()


async def test_a_deposit_key_reused_after_expiry_never_credits_twice(
    tenant: Tenant, stack: Stack
) -> None:
    engine = get_engine(stack.settings)
    account = await funded_account(tenant, 0)
    key = f"dep-{uuid.uuid4()}"
    body = {"account_id": account["id"], "amount": 5_000, "currency": "EUR"}
    first = await tenant.ops.post("/v1/deposits", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    deposit_id = first.json()["id"]
    await backdate(engine, tenant.tenant_id, key, "deposits", deposit_id)
    await purge_expired(engine, stack.settings)

    again = await tenant.ops.post("/v1/deposits", json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "idempotency_key_expired"
    assert deposit_id in again.json()["detail"]
    balance = await tenant.partner.get(f"/v1/accounts/{account['id']}")
    assert balance.json()["balances"]["posted"] == 5_000
    async with engine.connect() as conn:
        made = await conn.execute(
            select(func.count()).select_from(deposits).where(deposits.c.account_id == account["id"])
        )
        assert made.scalar_one() == 1
    await dispose_engines()


async def test_purge_deletes_only_what_expired_in_batches(
    engine: AsyncEngine, stack: Stack
) -> None:
    tag = uuid.uuid4().hex[:10]
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO tenants (id, name) VALUES (:t, 'purge') ON CONFLICT DO NOTHING"),
            {"t": f"ten_{tag}"},
        )
        await conn.execute(
            text(
                "INSERT INTO webhook_endpoints (id, tenant_id, url, secret)"
                " VALUES (:e, :t, 'https://example.com/hook', 's')"
            ),
            {"e": f"we_{tag}", "t": f"ten_{tag}"},
        )
        # the months of these backdated events (the migration makes only the current ones)
        await conn.execute(
            text("SELECT partitions_ensure(CAST(:a AS timestamptz), CAST(:b AS timestamptz))"),
            {"a": now - timedelta(days=40), "b": now},
        )
        for i, age in enumerate([timedelta(days=40)] * 5 + [timedelta(days=20)]):
            await conn.execute(
                text(
                    "INSERT INTO events (id, tenant_id, type, data, created_at)"
                    " VALUES (:id, :t, 'test.purged', '{}', :at)"
                ),
                {"id": f"evt_{tag}_{i}", "t": f"ten_{tag}", "at": now - age},
            )
            await conn.execute(
                text(
                    "INSERT INTO webhook_deliveries (event_id, endpoint_id, attempts)"
                    " VALUES (:id, :e, 1)"
                ),
                {"id": f"evt_{tag}_{i}", "e": f"we_{tag}"},
            )
        for i, age in enumerate([timedelta(hours=30)] * 3 + [timedelta(hours=20)]):
            await conn.execute(
                text(
                    "INSERT INTO idempotency_keys (tenant_id, key, method_path, fingerprint,"
                    " created_at) VALUES (:t, :k, 'POST /v1/payments', 'f', :at)"
                ),
                {"t": f"ten_{tag}", "k": f"key-{i}", "at": now - age},
            )

    # batches of 2: several transactions each for the 5 events and the 3 keys
    report = await purge_expired(engine, stack.settings.updated({"retention.purge_batch_size": 2}))
    assert report.events >= 5 and report.webhook_deliveries >= 5 and report.idempotency_keys >= 3
    async with engine.connect() as conn:
        left_events = (
            await conn.execute(select(events.c.id).where(events.c.tenant_id == f"ten_{tag}"))
        ).scalars()
        assert list(left_events) == [f"evt_{tag}_5"]
        left_deliveries = (
            await conn.execute(
                select(webhook_deliveries.c.event_id).where(
                    webhook_deliveries.c.endpoint_id == f"we_{tag}"
                )
            )
        ).scalars()
        assert list(left_deliveries) == [f"evt_{tag}_5"]
        left_keys = (
            await conn.execute(
                select(idempotency_keys.c.key).where(idempotency_keys.c.tenant_id == f"ten_{tag}")
            )
        ).scalars()
        assert list(left_keys) == ["key-3"]


def test_payments_purge_command(stack: Stack) -> None:
    cli = Path(sys.executable).parent / "payments"
    done = subprocess.run(
        [str(cli), "purge"], env=settings_env(stack.settings), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("purged ") and "idempotency_keys" in done.stdout


async def test_the_purge_activity_deletes_expired_records(
    engine: AsyncEngine, stack: Stack
) -> None:
    tag = uuid.uuid4().hex[:10]
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO tenants (id, name) VALUES (:t, 'purge')"), {"t": f"ten_{tag}"}
        )
        await conn.execute(
            text(
                "INSERT INTO idempotency_keys (tenant_id, key, method_path, fingerprint,"
                " created_at)"
                " VALUES (:t, 'old', 'POST /v1/deposits', 'f', now() - interval '2 days')"
            ),
            {"t": f"ten_{tag}"},
        )
    counts = await ActivityEnvironment().run(
        RetentionActivities(engine, stack.settings).purge_expired_records, PurgeInput()
    )
    assert counts.idempotency_keys >= 1
    assert not await key_recorded(engine, f"ten_{tag}", "old")


async def test_a_month_of_events_past_retention_is_dropped_whole(
    engine: AsyncEngine, stack: Stack
) -> None:
    """Events of a month that ended before the retention's cutoff go with their month's
    partition (their deliveries first); the month the cutoff falls in is purged row by row,
    and what is younger stays."""
    tag = uuid.uuid4().hex[:10]
    now = datetime.now(UTC)
    old = now - timedelta(days=70)  # its month ended at least 39 days ago
    old_month = partition_name("events", month_start(old))
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO tenants (id, name) VALUES (:t, 'purge')"), {"t": f"ten_{tag}"}
        )
        await conn.execute(
            text(
                "INSERT INTO webhook_endpoints (id, tenant_id, url, secret)"
                " VALUES (:e, :t, 'https://example.com/hook', 's')"
            ),
            {"e": f"we_{tag}", "t": f"ten_{tag}"},
        )
        await conn.execute(
            text("SELECT partitions_ensure(CAST(:a AS timestamptz), CAST(:b AS timestamptz))"),
            {"a": old, "b": now},
        )
        for i, at in enumerate([old, old, now - timedelta(days=31), now - timedelta(days=1)]):
            await conn.execute(
                text(
                    "INSERT INTO events (id, tenant_id, type, data, created_at)"
                    " VALUES (:id, :t, 'test.purged', '{}', :at)"
                ),
                {"id": f"evt_{tag}_{i}", "t": f"ten_{tag}", "at": at},
            )
            await conn.execute(
                text(
                    "INSERT INTO webhook_deliveries (event_id, endpoint_id, attempts)"
                    " VALUES (:id, :e, 1)"
                ),
                {"id": f"evt_{tag}_{i}", "e": f"we_{tag}"},
            )
    report = await purge_expired(engine, stack.settings.updated({"retention.purge_batch_size": 1}))
    assert report.events >= 3 and report.webhook_deliveries >= 3
    async with engine.connect() as conn:
        assert old_month not in [p.name for p in await live_partitions(conn, "events")]
        left = (
            await conn.execute(select(events.c.id).where(events.c.tenant_id == f"ten_{tag}"))
        ).scalars()
        assert list(left) == [f"evt_{tag}_3"]
        deliveries = (
            await conn.execute(
                select(webhook_deliveries.c.event_id).where(
                    webhook_deliveries.c.endpoint_id == f"we_{tag}"
                )
            )
        ).scalars()
        assert list(deliveries) == [f"evt_{tag}_3"]
