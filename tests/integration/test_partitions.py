"""Monthly partitions and archives (issue #23 item 4): transfers stay exactly-once across a
month boundary, partitions are created ahead, and an archived month leaves the ledger and
the audit chain verifiable (from its anchors, and from its files) and writable.

Rows of a past month are written as the ledger and the audit chain would have written them
then (the database's integrity triggers on, so they check these rows as they check the
code's), with the month's timestamp: `now()` cannot be moved back.
"""

from __future__ import annotations

import asyncio
import gzip
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kernel import audit, checkpoints
from kernel.tables import audit_log
from ledger import Transfer, TransferResult, create_transfer
from ledger.verify import verify_ledger
from ops.devstack import Stack, settings_env
from ops.migrate import alembic_config
from services import archive, full_verification
from services.partitions import add_months, ensure_partitions, live_partitions, month_start
from services.verification import verify_audit_trail, verify_books
from tests.integration.test_ledger import FUNDING, balances, new_customer_account

ACTOR = "test"
NOW = datetime.now(UTC)
THIS_MONTH = month_start(NOW)
LAST_MONTH = add_months(THIS_MONTH, -1)
# the last second of last month
# (the default margin between a month's end and the verification that may archive it is a
# day: on the 1st of a month, last month could not be archived yet)
SETTLE = timedelta(0)
BOUNDARY = datetime(THIS_MONTH.year, THIS_MONTH.month, 1, tzinfo=UTC) - timedelta(seconds=1)


@pytest.fixture
async def isolated(isolated_database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a database of this test's own, with last month's partitions."""
    engine = create_async_engine(isolated_database_url, pool_size=2, max_overflow=2)
    async with engine.begin() as conn:
        await conn.execute(
            text("SELECT partitions_ensure(CAST(:a AS timestamptz), CAST(:a AS timestamptz))"),
            {"a": BOUNDARY},
        )
    yield engine
    await engine.dispose()


# one transfer as the ledger writes it: the transfer, its two entries continuing each
# account's chain, the balances, in one statement
_BACKDATED = text("""
    WITH d AS (SELECT * FROM ledger_accounts WHERE id = :debit),
         c AS (SELECT * FROM ledger_accounts WHERE id = :credit),
    t AS (INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, currency,
                                        code, kind, created_at)
          VALUES (:id, :debit, :credit, :amount, 'EUR', 'deposit', 'single', :at)),
    e AS (INSERT INTO ledger_entries (account_id, version, transfer_id, leg, debits_pending_delta,
              debits_posted_delta, credits_pending_delta, credits_posted_delta, debits_pending,
              debits_posted, credits_pending, credits_posted, created_at)
          SELECT d.id, d.version + 1, :id, 'debit', 0, :amount, 0, 0, d.debits_pending,
                 d.debits_posted + :amount, d.credits_pending, d.credits_posted, :at FROM d
          UNION ALL
          SELECT c.id, c.version + 1, :id, 'credit', 0, 0, 0, :amount, c.debits_pending,
                 c.debits_posted, c.credits_pending, c.credits_posted + :amount, :at FROM c)
    UPDATE ledger_accounts a
       SET debits_posted = a.debits_posted + CASE WHEN a.id = :debit THEN :amount ELSE 0 END,
           credits_posted = a.credits_posted + CASE WHEN a.id = :credit THEN :amount ELSE 0 END,
           version = a.version + 1
     WHERE a.id IN (:debit, :credit)
""")


async def backdated_deposit(
    engine: AsyncEngine, transfer_id: str, account: str, amount: int, at: datetime
) -> None:
    """A deposit of `amount` to `account` written at `at` (a past month)."""
    async with engine.begin() as conn:
        await conn.execute(
            _BACKDATED,
            {"id": transfer_id, "debit": FUNDING, "credit": account, "amount": amount, "at": at},
        )


async def backdated_audit(
    engine: AsyncEngine, n: int, at: datetime, tenant: str | None = None
) -> None:
    """`n` decisions appended to `tenant`'s chain (None: the platform's) at `at`, hashed as
    `audit.append_in` hashes."""
    async with engine.begin() as conn:
        last = (await conn.execute(audit.last_link_query(tenant))).first()
        seq, prev = (last.seq, last.hash) if last else (0, audit.GENESIS)
        for i in range(n):
            seq += 1
            entry: dict[str, Any] = {
                "seq": seq,
                "at": at.isoformat(),
                "tenant_id": tenant,
                "actor": ACTOR,
                "action": "test.decided",
                "subject": f"old{i}",
                "detail": {},
            }
            if tenant is not None:
                entry["chain"] = tenant
            digest = audit.entry_hash(prev, entry)
            await conn.execute(
                audit_log.insert().values(
                    seq=seq,
                    at=at,
                    chain=tenant or "",
                    tenant_id=tenant,
                    actor=ACTOR,
                    action="test.decided",
                    subject=f"old{i}",
                    detail={},
                    prev_hash=prev,
                    hash=digest,
                )
            )
            prev = digest


async def legacy_append(engine: AsyncEngine, subject: str, tenant_id: str | None) -> None:
    """A decision appended as before the chains were split (migration 0029): one chain for
    every tenant, no `chain` column."""
    async with engine.begin() as conn:
        last = (
            await conn.execute(text("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"))
        ).first()
        seq, prev = (last.seq + 1, last.hash) if last else (1, audit.GENESIS)
        at = datetime.now(UTC)
        entry: dict[str, Any] = {
            "seq": seq,
            "at": at.isoformat(),
            "tenant_id": tenant_id,
            "actor": ACTOR,
            "action": "test.decided",
            "subject": subject,
            "detail": {},
        }
        await conn.execute(
            text(
                "INSERT INTO audit_log (seq, at, tenant_id, actor, action, subject, detail,"
                " prev_hash, hash) VALUES (:seq, :at, :t, :actor, 'test.decided', :s, '{}',"
                " :prev, :hash)"
            ),
            {
                "seq": seq,
                "at": at,
                "t": tenant_id,
                "actor": ACTOR,
                "s": subject,
                "prev": prev,
                "hash": audit.entry_hash(prev, entry),
            },
        )


def deposit_of(transfer_id: str, account: str, amount: int) -> Transfer:
    """The deposit `backdated_deposit` writes, as a caller would send it (again)."""
    return Transfer(transfer_id, FUNDING, account, amount, "EUR", "deposit")


async def test_a_retried_transfer_is_exactly_once_across_a_month_boundary(
    isolated: AsyncEngine,
) -> None:
    account = await new_customer_account(isolated)
    # written in the last second of last month; retried now, in this month's partition
    await backdated_deposit(isolated, "dep_boundary", account, 500, BOUNDARY)
    retried = await create_transfer(isolated, deposit_of("dep_boundary", account, 500))
    assert retried is TransferResult.EXISTS
    different = await create_transfer(isolated, deposit_of("dep_boundary", account, 501))
    assert different is TransferResult.EXISTS_WITH_DIFFERENT_AMOUNT
    assert (await balances(isolated, account))[3] == 500
    async with isolated.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT count(*) FROM ledger_transfers WHERE id = 'dep_boundary'")
            )
        ).scalar_one()
    assert rows == 1
    # even a writer that skips the lookup (a racing retry) cannot write the id in another
    # month: the unpartitioned id table refuses it, as the old primary key did
    with pytest.raises(IntegrityError, match="ledger_transfer_ids_pkey"):
        await backdated_deposit(isolated, "dep_boundary", account, 500, NOW)
    assert (await verify_ledger(isolated)).ok


# A deposit written by a writer that skips the ledger's functions: its credit leg takes
# version :version of the account, continuing the balances of the entry before it; the
# credit account's row moves only when that is its next version (else only the debit
# account moves: a second entry of a version taken already); the transfer is dated :t_at and
# its legs :e_at.
_ROGUE = text("""
    WITH d AS (SELECT * FROM ledger_accounts WHERE id = :debit),
         p AS (SELECT * FROM ledger_entries
                WHERE account_id = :credit AND version = CAST(:version AS bigint) - 1),
    t AS (INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, currency,
                                        code, kind, created_at)
          VALUES (:id, :debit, :credit, :amount, 'EUR', 'deposit', 'single', :t_at)),
    e AS (INSERT INTO ledger_entries (account_id, version, transfer_id, leg, debits_pending_delta,
              debits_posted_delta, credits_pending_delta, credits_posted_delta, debits_pending,
              debits_posted, credits_pending, credits_posted, created_at)
          SELECT d.id, d.version + 1, :id, 'debit', 0, :amount, 0, 0, d.debits_pending,
                 d.debits_posted + :amount, d.credits_pending, d.credits_posted, :e_at FROM d
          UNION ALL
          SELECT p.account_id, p.version + 1, :id, 'credit', 0, 0, 0, :amount, p.debits_pending,
                 p.debits_posted, p.credits_pending, p.credits_posted + :amount, :e_at FROM p)
    UPDATE ledger_accounts a
       SET debits_posted = a.debits_posted + CASE WHEN a.id = :debit THEN :amount ELSE 0 END,
           credits_posted = a.credits_posted + CASE WHEN a.id = :credit THEN :amount ELSE 0 END,
           version = a.version + 1
     WHERE a.id = :debit OR (a.id = :credit AND a.version = CAST(:version AS bigint) - 1)
""")


async def rogue_deposit(
    engine: AsyncEngine,
    transfer_id: str,
    account: str,
    version: int,
    *,
    t_at: datetime = NOW,
    e_at: datetime = NOW,
) -> None:
    """Write `_ROGUE`: a deposit to `account` whose credit leg is `version`."""
    async with engine.begin() as conn:
        await conn.execute(
            _ROGUE,
            {
                "id": transfer_id,
                "debit": FUNDING,
                "credit": account,
                "amount": 7,
                "version": version,
                "t_at": t_at,
                "e_at": e_at,
            },
        )


async def test_an_entry_version_is_taken_once_whatever_the_months(isolated: AsyncEngine) -> None:
    """The entries check reads the statement's months first (migration 0032): a second entry
    of a version is refused whether its predecessor is in last month (every month is read)
    or in this one (read from last month on)."""
    account = await new_customer_account(isolated)
    await backdated_deposit(isolated, "dep_old", account, 100, BOUNDARY)  # version 1
    # version 2 continues last month's entry; version 3 this month's
    for transfer_id in ("dep_now_1", "dep_now_2"):
        result = await create_transfer(isolated, deposit_of(transfer_id, account, 10))
        assert result is TransferResult.OK
    for version in (2, 3):
        with pytest.raises(IntegrityError, match="does not continue its account's entries"):
            await rogue_deposit(isolated, f"dep_again_{version}", account, version)
    # the next version is taken by a writer that moves the account too
    assert (await balances(isolated, account))[3] == 120
    assert (await verify_ledger(isolated)).ok


async def test_a_first_entry_is_taken_once_whatever_the_months(isolated: AsyncEngine) -> None:
    """An account's version 1 has no predecessor to bound where a second one could be: the
    entries check reads every month for it (migration 0032)."""
    month = add_months(THIS_MONTH, -2)
    two_months_ago = datetime(month.year, month.month, 1, tzinfo=UTC)
    async with isolated.begin() as conn:
        await conn.execute(
            text("SELECT partitions_ensure(CAST(:a AS timestamptz), CAST(:a AS timestamptz))"),
            {"a": two_months_ago},
        )
    account = await new_customer_account(isolated)
    await backdated_deposit(isolated, "dep_first", account, 100, two_months_ago)  # version 1
    result = await create_transfer(isolated, deposit_of("dep_second", account, 10))
    assert result is TransferResult.OK
    with pytest.raises(IntegrityError, match="does not continue its account's entries"):
        async with isolated.begin() as conn:
            await conn.execute(
                text("""
                WITH d AS (SELECT * FROM ledger_accounts WHERE id = :debit),
                t AS (INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id,
                                                    amount, currency, code, kind)
                      VALUES ('dep_first_again', :debit, :credit, 7, 'EUR', 'deposit',
                              'single')),
                e AS (INSERT INTO ledger_entries (account_id, version, transfer_id, leg,
                          debits_pending_delta, debits_posted_delta, credits_pending_delta,
                          credits_posted_delta, debits_pending, debits_posted,
                          credits_pending, credits_posted)
                      SELECT d.id, d.version + 1, 'dep_first_again', 'debit', 0, 7, 0, 0,
                             d.debits_pending, d.debits_posted + 7, d.credits_pending,
                             d.credits_posted FROM d
                      UNION ALL
                      SELECT :credit, 1, 'dep_first_again', 'credit', 0, 0, 0, 7, 0, 0, 0, 7)
                UPDATE ledger_accounts a SET debits_posted = a.debits_posted + 7,
                                             version = a.version + 1
                 WHERE a.id = :debit
                """),
                {"debit": FUNDING, "credit": account},
            )
    assert (await balances(isolated, account))[3] == 110
    assert (await verify_ledger(isolated)).ok


async def test_an_entry_is_dated_in_its_transfers_month_and_after_its_predecessor(
    isolated: AsyncEngine,
) -> None:
    """The rules that bound the entries check's reads (migration 0032): an entry lies in
    its transfer's month, and is not dated more than a month before the entry it
    continues."""
    account = await new_customer_account(isolated)
    assert (
        await create_transfer(isolated, deposit_of("dep_first", account, 10))
    ) is TransferResult.OK
    month = add_months(THIS_MONTH, -2)
    two_months_ago = datetime(month.year, month.month, 1, tzinfo=UTC)
    async with isolated.begin() as conn:
        await conn.execute(
            text("SELECT partitions_ensure(CAST(:a AS timestamptz), CAST(:a AS timestamptz))"),
            {"a": two_months_ago},
        )
    with pytest.raises(IntegrityError, match="does not continue its account's entries"):
        await backdated_deposit(isolated, "dep_long_before", account, 5, two_months_ago)
    # legs in last month, their transfer in this one
    account_version = 2
    async with isolated.connect() as conn:
        funding_at = (
            await conn.execute(
                text("SELECT max(created_at) FROM ledger_entries WHERE account_id = :a"),
                {"a": FUNDING},
            )
        ).scalar_one()
    assert funding_at - BOUNDARY < timedelta(days=31)
    with pytest.raises(IntegrityError, match="is not balanced by its entries"):
        await rogue_deposit(
            isolated, "dep_split", account, account_version, t_at=NOW, e_at=BOUNDARY
        )
    assert (await balances(isolated, account))[3] == 10
    assert (await verify_ledger(isolated)).ok


async def test_an_account_never_moves_back_to_an_earlier_entry(isolated: AsyncEngine) -> None:
    """A changed account must move forward to the entry at its new version (migration 0032
    compares it with that entry instead of its newest): a rewind is refused."""
    account = await new_customer_account(isolated)
    for transfer_id in ("dep_a", "dep_b"):
        assert (
            await create_transfer(isolated, deposit_of(transfer_id, account, 10))
        ) is TransferResult.OK
    with pytest.raises(IntegrityError, match="changed without matching ledger entries"):
        async with isolated.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE ledger_accounts a SET version = e.version,"
                    " credits_posted = e.credits_posted"
                    " FROM ledger_entries e WHERE a.id = :a AND e.account_id = :a"
                    " AND e.version = a.version - 1"
                ),
                {"a": account},
            )
    assert (await balances(isolated, account))[3] == 20


async def test_partitions_are_created_ahead_once(isolated: AsyncEngine) -> None:
    created = await ensure_partitions(isolated, 5)
    # the migration made this month and three ahead for each of the five tables
    assert created == 2 * 5
    assert await ensure_partitions(isolated, 5) == 0
    async with isolated.connect() as conn:
        months = [p.month for p in await live_partitions(conn, "ledger_entries")]
    assert months == [add_months(THIS_MONTH, k) for k in range(-1, 6)]


async def test_an_archived_month_leaves_everything_verifiable_and_writable(
    isolated: AsyncEngine, tmp_path: Path
) -> None:
    account, idle = await new_customer_account(isolated), await new_customer_account(isolated)
    await backdated_deposit(isolated, "dep_old_1", account, 700, BOUNDARY - timedelta(days=3))
    await backdated_deposit(isolated, "dep_old_2", idle, 300, BOUNDARY)
    await backdated_audit(isolated, 5, BOUNDARY)
    # a tenant's chain with records in the month and after it, one that ends in the month,
    # and one that starts after it
    await backdated_audit(isolated, 3, BOUNDARY, "ten_a")
    await backdated_audit(isolated, 2, BOUNDARY, "ten_quiet")
    await create_transfer(isolated, deposit_of("dep_new_1", account, 50))
    await audit.append(isolated, actor=ACTOR, action="test.decided", subject="new")
    await audit.append(isolated, actor=ACTOR, action="test.decided", subject="a", tenant_id="ten_a")
    await audit.append(isolated, actor=ACTOR, action="test.decided", subject="b", tenant_id="ten_b")
    month = LAST_MONTH

    # nothing is archived before a verification has checked it
    with pytest.raises(archive.ArchiveRefusedError, match="ledger verify"):
        await archive.archive_ledger_month(isolated, month, tmp_path, settle=SETTLE)
    assert (await verify_books(isolated, full=True, actor=ACTOR)).ok
    assert (await verify_audit_trail(isolated, full=True, actor=ACTOR)).ok

    ledger = await archive.archive_ledger_month(isolated, month, tmp_path, settle=SETTLE)
    assert [f.rows for f in ledger.files] == [2, 4]
    audited = await archive.archive_audit_month(isolated, month, tmp_path, settle=SETTLE)
    assert audited.anchors["first_seq"] == 1 and audited.anchors["last_seq"] == 5
    assert {k: v["last_seq"] for k, v in audited.anchors["chains"].items()} == {
        "ten_a": 3,
        "ten_quiet": 2,
    }
    async with isolated.connect() as conn:
        left = (await conn.execute(text("SELECT count(*) FROM ledger_entries"))).scalar_one()
        oldest = (await live_partitions(conn, "audit_log"))[0]
    assert oldest.month == THIS_MONTH
    assert left == 2  # this month's deposit only

    # balances are the accounts' own; an account idle since the archived month takes a new
    # transfer (its chain continues from its anchor), and an archived id is still taken
    assert (await balances(isolated, idle))[3] == 300
    assert (await create_transfer(isolated, deposit_of("dep_new_2", idle, 20))) is TransferResult.OK
    assert (await balances(isolated, idle))[3] == 320
    with pytest.raises(IntegrityError):
        await create_transfer(isolated, deposit_of("dep_old_2", idle, 300))

    # both verifications, full and incremental, still pass across the archive
    full_ledger = await verify_books(isolated, full=True, actor=ACTOR)
    assert full_ledger.ok, full_ledger.problems
    assert (await verify_books(isolated, full=False, actor=ACTOR)).ok
    full_audit = await verify_audit_trail(isolated, full=True, actor=ACTOR)
    assert full_audit.ok, full_audit.problems
    assert (await verify_audit_trail(isolated, full=False, actor=ACTOR)).ok
    assert set(await checkpoint_heads(isolated)) == {"", "ten_a", "ten_b", "ten_quiet"}
    # and so does the full verification in chunks (the FullVerification workflow's steps),
    # chunks of two rows so that anchored accounts start and end chunks
    for kind in ("ledger", "audit"):
        chunked = await full_verification.run_to_end(isolated, kind, 2, ACTOR)
        assert chunked.ok, (kind, chunked.problems)
    assert await archive.verify_archive(isolated, tmp_path) == []

    # an altered archive file is found
    path = tmp_path / f"audit_log-{month:%Y-%m}.jsonl.gz"
    lines = gzip.decompress(path.read_bytes()).decode().replace('"old3"', '"forged"')
    path.write_bytes(gzip.compress(lines.encode()))
    problems = await archive.verify_archive(isolated, tmp_path)
    assert any("checksum" in problem for problem in problems), problems


async def checkpoint_heads(engine: AsyncEngine) -> dict[str, Any]:
    """The chains' heads the last audit checkpoint recorded."""
    async with engine.connect() as conn:
        last = await checkpoints.latest(conn, "audit")
    assert last is not None and last.audit_heads is not None
    return last.audit_heads


async def test_a_month_whose_tenant_chain_was_altered_is_not_archived(
    isolated: AsyncEngine, tmp_path: Path
) -> None:
    await backdated_audit(isolated, 3, BOUNDARY, "ten_a")
    await audit.append(isolated, actor=ACTOR, action="test.decided", subject="new")
    assert (await verify_audit_trail(isolated, full=True, actor=ACTOR)).ok
    async with isolated.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(
            text("UPDATE audit_log SET subject = 'x' WHERE chain = 'ten_a' AND seq = 2")
        )
    with pytest.raises(archive.ArchiveRefusedError, match="record 2 of tenant ten_a's chain"):
        await archive.archive_audit_month(isolated, LAST_MONTH, tmp_path, settle=SETTLE)


async def test_a_month_with_an_unresolved_hold_is_not_archived(
    isolated: AsyncEngine, tmp_path: Path
) -> None:
    account = await new_customer_account(isolated)
    await backdated_deposit(isolated, "dep_hold_1", account, 700, BOUNDARY)
    async with isolated.begin() as conn:
        # a hold written last month (as the pending path writes one), never resolved
        await conn.execute(
            text("""
            WITH d AS (SELECT * FROM ledger_accounts WHERE id = :a),
                 c AS (SELECT * FROM ledger_accounts WHERE id = 'acc_sys_settlement_sepa_eur'),
            t AS (INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount,
                      currency, code, kind, created_at)
                  VALUES ('pay_x:hold', :a, 'acc_sys_settlement_sepa_eur', 100, 'EUR',
                          'payment_hold', 'pending', :at)),
            e AS (INSERT INTO ledger_entries (account_id, version, transfer_id, leg,
                      debits_pending_delta, debits_posted_delta, credits_pending_delta,
                      credits_posted_delta, debits_pending, debits_posted, credits_pending,
                      credits_posted, created_at)
                  SELECT d.id, d.version + 1, 'pay_x:hold', 'debit', 100, 0, 0, 0,
                         d.debits_pending + 100, d.debits_posted, d.credits_pending,
                         d.credits_posted, :at FROM d
                  UNION ALL
                  SELECT c.id, c.version + 1, 'pay_x:hold', 'credit', 0, 0, 100, 0,
                         c.debits_pending, c.debits_posted, c.credits_pending + 100,
                         c.credits_posted, :at FROM c)
            UPDATE ledger_accounts a
               SET debits_pending = a.debits_pending + CASE WHEN a.id = :a THEN 100 ELSE 0 END,
                   credits_pending = a.credits_pending
                       + CASE WHEN a.id = :a THEN 0 ELSE 100 END,
                   version = a.version + 1
             WHERE a.id IN (:a, 'acc_sys_settlement_sepa_eur')
            """),
            {"a": account, "at": BOUNDARY},
        )
    assert (await verify_books(isolated, full=True, actor=ACTOR)).ok
    with pytest.raises(archive.ArchiveRefusedError, match="pay_x:hold"):
        await archive.archive_ledger_month(isolated, LAST_MONTH, tmp_path, settle=SETTLE)


async def test_the_migration_keeps_every_row_and_its_guarantees(
    isolated_database_url: str, database: Stack
) -> None:
    settings = database.settings.updated({"database.url": isolated_database_url})
    await asyncio.to_thread(command.downgrade, alembic_config(settings), "0020")
    engine = create_async_engine(isolated_database_url, pool_size=2, max_overflow=2)
    try:
        account = await new_customer_account(engine)
        for i in range(3):
            await create_transfer(engine, deposit_of(f"dep_before_{i}", account, 10))
            await legacy_append(engine, f"s{i}", "ten_ledger_tests" if i == 1 else None)
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO events (id, tenant_id, type, data)"
                    " VALUES ('evt_before', 'ten_ledger_tests', 'test.kept', '{}')"
                )
            )
        counts = await _counts(engine)
        await asyncio.to_thread(command.upgrade, alembic_config(settings), "head")
        assert await _counts(engine) == counts
        assert counts == (3, 6, 3, 1)
        async with engine.connect() as conn:
            kind = (
                await conn.execute(
                    text("SELECT relkind FROM pg_class WHERE relname = 'ledger_entries'")
                )
            ).scalar_one()
        assert kind == "p"
        # what was written before is still exactly-once, and both chains still verify
        retried = await create_transfer(engine, deposit_of("dep_before_1", account, 10))
        assert retried is TransferResult.EXISTS
        assert (await verify_ledger(engine)).ok
        assert (await audit.verify(engine)).ok
        # an event id written before the migration is not written twice
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO events (id, tenant_id, type, data, created_at)"
                    " VALUES ('evt_before', 'ten_ledger_tests', 'test.kept', '{}', :at)"
                    " ON CONFLICT DO NOTHING"
                ),
                {"at": add_months_at(NOW, 1)},
            )
        assert await _counts(engine) == counts
        # and back: plain tables with the same rows
        await asyncio.to_thread(command.downgrade, alembic_config(settings), "0020")
        assert await _counts(engine) == counts
        await asyncio.to_thread(command.upgrade, alembic_config(settings), "head")
        # the records written before are the platform chain's (a tenant's among them); a
        # tenant's next decision starts that tenant's chain, and every chain verifies
        await audit.append(
            engine, actor=ACTOR, action="test.decided", subject="s3", tenant_id="ten_ledger_tests"
        )
        await audit.append(engine, actor=ACTOR, action="test.decided", subject="s4")
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(audit_log.c.chain, audit_log.c.seq).order_by(audit_log.c.at)
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            ("", 1),
            ("", 2),
            ("", 3),
            ("ten_ledger_tests", 1),
            ("", 4),
        ]
        chained = await audit.verify(engine)
        assert chained.ok and set(chained.heads) == {"", "ten_ledger_tests"}
        # one chain again would number a tenant's records among the platform's: refused
        with pytest.raises(Exception, match="tenant chains"):
            await asyncio.to_thread(command.downgrade, alembic_config(settings), "0027")
    finally:
        await engine.dispose()


def add_months_at(at: datetime, months: int) -> datetime:
    """`at` moved to the first day of the month `months` later."""
    month = add_months(month_start(at), months)
    return datetime(month.year, month.month, 1, tzinfo=UTC)


async def _counts(engine: AsyncEngine) -> tuple[int, ...]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM ledger_transfers),"
                    " (SELECT count(*) FROM ledger_entries), (SELECT count(*) FROM audit_log),"
                    " (SELECT count(*) FROM events)"
                )
            )
        ).one()
    return tuple(row)


async def test_the_archive_commands(
    isolated: AsyncEngine, isolated_database_url: str, database: Stack, tmp_path: Path
) -> None:
    # two months back: its end is more than the default day before any run of this test
    old = add_months(THIS_MONTH, -2)
    at = datetime(old.year, old.month, 15, tzinfo=UTC)
    async with isolated.begin() as conn:
        await conn.execute(
            text("SELECT partitions_ensure(CAST(:a AS timestamptz), CAST(:a AS timestamptz))"),
            {"a": at},
        )
    account = await new_customer_account(isolated)
    await backdated_deposit(isolated, "dep_cli_1", account, 40, at)
    await backdated_audit(isolated, 3, at)
    await audit.append(isolated, actor=ACTOR, action="test.decided", subject="new")
    env = settings_env(database.settings.updated({"database.url": isolated_database_url}))
    cli = str(Path(sys.executable).parent / "payments")

    def run(*args: str, code: int = 0) -> str:
        done = subprocess.run([cli, *args], env=env, capture_output=True, text=True)
        assert done.returncode == code, done.stdout + done.stderr
        return done.stdout + done.stderr

    month = f"{old:%Y-%m}"
    # the first run of each verification, with no checkpoint yet, checks everything (the
    # `--full` workflow would run on the shared stack's worker, against its own database)
    run("ledger", "verify")
    run("audit", "verify")
    # months go oldest first
    later = f"{LAST_MONTH:%Y-%m}"
    refused = run("archive", "ledger", "--month", later, "--dir", str(tmp_path), code=1)
    assert "oldest first" in refused
    assert "wrote ledger_entries" in run(
        "archive", "ledger", "--month", month, "--dir", str(tmp_path)
    )
    assert "wrote audit_log" in run("archive", "audit", "--month", month, "--dir", str(tmp_path))
    listed = dict(line.split(maxsplit=1) for line in run("archive", "list").splitlines())
    assert listed["ledger_entries"].startswith(later)
    assert listed["audit_log"].startswith(later)
    assert listed["events"].startswith(month)  # events expire; they are not archived
    assert run("archive", "verify", "--dir", str(tmp_path)).startswith("OK")
    (tmp_path / f"ledger_entries-{month}.jsonl.gz").unlink()
    assert "missing" in run("archive", "verify", "--dir", str(tmp_path), code=1)
