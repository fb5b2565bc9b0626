"""The audit log as one chain per tenant plus the platform chain (issue #20): appends of
different tenants take different locks, each chain numbers and links its own records, the
verifications (incremental, full, in chunks) name a tampered record of any chain, and a
checkpoint anchors every chain's head into the platform chain.

Each test has a database of its own: the chains and checkpoints are global.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel import audit, checkpoints
from kernel.tables import audit_log
from services import full_verification
from services.verification import verify_audit_trail
from tests.integration.test_verification_checkpoints import as_superuser, isolated

ACTOR = "test"
__all__ = ["isolated"]  # the fixture: a database of the test's own


async def decide(engine: AsyncEngine, tenant: str | None, n: int) -> None:
    """`n` honest decisions of `tenant` (None: the platform's)."""
    for i in range(n):
        await audit.append(
            engine, actor=ACTOR, action="test.decided", subject=f"s{i}", tenant_id=tenant
        )


async def test_each_tenant_numbers_and_links_its_own_chain(isolated: AsyncEngine) -> None:
    await decide(isolated, "ten_a", 3)
    await decide(isolated, None, 2)
    await decide(isolated, "ten_b", 1)
    await decide(isolated, "ten_a", 1)
    async with isolated.connect() as conn:
        rows = (
            await conn.execute(select(audit_log.c.chain, audit_log.c.seq).order_by(audit_log.c.at))
        ).all()
        assert await audit.tenant_chains(conn) == ["ten_a", "ten_b"]
    assert [tuple(r) for r in rows] == [
        ("ten_a", 1),
        ("ten_a", 2),
        ("ten_a", 3),
        ("", 1),
        ("", 2),
        ("ten_b", 1),
        ("ten_a", 4),
    ]
    report = await audit.verify(isolated)
    assert report.ok and report.entries == 7
    assert {k: v[0] for k, v in report.heads.items()} == {"": 2, "ten_a": 4, "ten_b": 1}


async def test_a_tenants_append_does_not_wait_for_another_tenants_lock(
    isolated: AsyncEngine,
) -> None:
    async with isolated.begin() as holding:
        # tenant a's append holds its chain's lock until this transaction ends
        await audit.append_in(
            holding, actor=ACTOR, action="test.decided", subject="a", tenant_id="ten_a"
        )
        async with isolated.begin() as other:
            # (a lock wait would fail at once rather than hang)
            await other.execute(text("SET LOCAL lock_timeout = '50ms'"))
            await audit.append_in(
                other, actor=ACTOR, action="test.decided", subject="b", tenant_id="ten_b"
            )
            await audit.append_in(other, actor=ACTOR, action="test.decided", subject="p")
        with pytest.raises(DBAPIError, match="lock timeout"):
            async with isolated.begin() as same:
                await same.execute(text("SET LOCAL lock_timeout = '50ms'"))
                await audit.append_in(
                    same, actor=ACTOR, action="test.decided", subject="a2", tenant_id="ten_a"
                )
    assert (await audit.verify(isolated)).ok


async def test_verification_names_a_tampered_record_of_a_tenants_chain(
    isolated: AsyncEngine,
) -> None:
    await decide(isolated, "ten_a", 3)
    await decide(isolated, "ten_b", 3)
    first = await verify_audit_trail(isolated, full=False, actor=ACTOR)
    assert first.ok and first.mode == "full"
    # the checkpoint anchors every chain's head into the platform chain
    async with isolated.connect() as conn:
        last = await checkpoints.latest(conn, "audit")
        record = (
            await conn.execute(
                select(audit_log.c.chain, audit_log.c.detail).where(
                    audit_log.c.action == "audit.checkpoint"
                )
            )
        ).one()
    assert last is not None and last.audit_heads is not None
    assert {k: v[0] for k, v in last.audit_heads.items()} == {"": 0, "ten_a": 3, "ten_b": 3}
    assert record.chain == "" and record.detail["audit_heads"] == last.audit_heads

    await decide(isolated, "ten_b", 2)
    honest = await verify_audit_trail(isolated, full=False, actor=ACTOR)
    # the platform chain's checkpoint record and tenant b's two new records
    assert honest.ok and honest.mode == "incremental" and honest.rows == 3

    await decide(isolated, "ten_b", 1)
    await as_superuser(
        isolated, "UPDATE audit_log SET actor = 'x' WHERE chain = 'ten_b' AND seq = 6"
    )
    caught = await verify_audit_trail(isolated, full=False, actor=ACTOR)
    assert not caught.ok and caught.checkpoint_id is None
    assert caught.problems == ["entry 6 of tenant ten_b's chain (test.decided) was altered"]
    await as_superuser(
        isolated, "UPDATE audit_log SET actor = 'test' WHERE chain = 'ten_b' AND seq = 6"
    )

    # before the checkpoint: the full run's, in one pass and in chunks
    await as_superuser(
        isolated, "UPDATE audit_log SET subject = 'x' WHERE chain = 'ten_a' AND seq = 2"
    )
    assert (await verify_audit_trail(isolated, full=False, actor=ACTOR)).ok
    full = await verify_audit_trail(isolated, full=True, actor=ACTOR)
    assert full.problems == ["entry 2 of tenant ten_a's chain (test.decided) was altered"]
    chunked = await full_verification.run_to_end(isolated, "audit", 2, ACTOR)
    assert not chunked.ok and chunked.problems == full.problems


async def test_a_record_moved_to_another_chain_is_caught(isolated: AsyncEngine) -> None:
    await decide(isolated, "ten_a", 2)
    await decide(isolated, "ten_b", 1)
    # tenant b's record renumbered to continue tenant a's chain: its hash covers its chain
    await as_superuser(
        isolated,
        "UPDATE audit_log SET chain = 'ten_a', seq = 3,"
        " prev_hash = (SELECT hash FROM audit_log WHERE chain = 'ten_a' AND seq = 2)"
        " WHERE chain = 'ten_b'",
    )
    report = await audit.verify(isolated)
    assert report.problems == ["entry 3 of tenant ten_a's chain (test.decided) was altered"]


async def test_the_chunked_full_verification_reads_every_chain(isolated: AsyncEngine) -> None:
    await decide(isolated, None, 3)
    await decide(isolated, "ten_a", 5)
    await decide(isolated, "ten_b", 2)
    result = await full_verification.run_to_end(isolated, "audit", 2, ACTOR)
    assert result.ok and result.rows == 10
    async with isolated.connect() as conn:
        last = await checkpoints.latest(conn, "audit")
    assert last is not None and last.audit_heads is not None
    assert {k: v[0] for k, v in last.audit_heads.items()} == {"": 3, "ten_a": 5, "ten_b": 2}
    # the incremental run continues from those heads: the checkpoint's record only
    after = await verify_audit_trail(isolated, full=False, actor=ACTOR)
    assert after.ok and after.rows == 1
