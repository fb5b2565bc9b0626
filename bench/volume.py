"""Volume benchmark (issue #23): do reads and the per-payment work stay flat as history grows?

    make bench-volume                                   (10k and 100k payments)
    .venv/bin/python bench/volume.py --sizes 10000,100000,1000000

For each size, a fresh database on a private embedded PostgreSQL is seeded with that many
payments at a constant rate of 2,000 a day over 1,000 customers, so a bigger size is a longer
past, not more traffic (10k: 5 days, 1M: 500 days), with what they leave behind (status
history, events, webhook deliveries, idempotency records, ACH entries, ledger transfers and
entries, audit records), then measured:

- p50 of each read query / filter the API, the rail callbacks, reconciliation and the ops
  commands run (the same query builders the code uses), over repeated runs;
- the write path of a payment (initiate, velocity check, hold, status records, ACH entry,
  post), each step's time as the client sees it on loopback (PostgreSQL's time plus a round
  trip or a few), for fresh payments on top of the history;
- the full ledger and audit verifications (they read everything): in one snapshot
  (`services.verification` with `full`), and in chunks as `payments ledger verify --full` and
  `payments audit verify --full` run them (the FullVerification workflow's queries);
- the incremental `payments ledger verify` and `payments audit verify` of one hour of new
  payments (36,000 at 10/s by default, `--hour-payments`: their ledger transfers and entries
  and audit records) on top of the history, after a checkpoint; and again with nothing new;
- bytes per payment of each growing table (heap, indexes and TOAST).

The table ends with the ratio largest/smallest size: about 1 for what is independent of
history; for verification and storage, the size ratio is expected.

The seed is built in the database (INSERT ... SELECT over generate_series) except the audit
chain, whose hashes are computed here and loaded with COPY. It passes both verifications:
ledger entries are derived from the transfers with running sums per account (as migration
0002 backfills them) and the account balances are their totals; every audit record links to
its predecessor's hash. The integrity triggers are off during the load
(session_replication_role = replica): the verifications check the result instead.
Not a test: figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from activities.ledger import OPEN_PAYMENTS
from activities.limits import RECENT_PAYMENTS
from activities.payment_records import payment_by_id, status_update
from activities.rails import UPSERT_ACH_ENTRY
from activities.reconciliation import LEDGER_BOOKINGS, ledger_bookings_params
from api.routers.payments import (
    history_query,
    payment_cursor_query,
    payment_query,
    payments_page_query,
)
from api.routers.rails import settle_file_entries, trace_entries_query
from api.routers.webhooks import event_window, events_page_query
from kernel import audit
from kernel.settings import Settings
from kernel.tables import payment_status_history, payments
from ledger import Transfer, TransferKind, create_transfer, verify_ledger
from ledger.engine import account_entries
from ops.devstack import free_port
from ops.embedded_pg import EmbeddedPostgres
from ops.migrate import upgrade
from services.events import insert_event, payment_event_id, payment_status_event_data
from services.full_verification import run_to_end
from services.payment_actions import payments_list_query
from services.verification import verify_audit_trail, verify_books
from workflows.models import FullVerifyInput

TENANTS = 10
# a constant traffic: a bigger size is a longer past (10k: 5 days; 1M: 500 days)
PAYMENTS_PER_DAY = 2000
CUSTOMERS = 1000
ODFI = "09100001"
READ_RUNS = 41
WRITE_PAYMENTS = 60
# one hour of new payments for the incremental verification (10 a second)
HOUR_PAYMENTS = 36_000
GROWING = (
    "payments",
    "payment_status_history",
    "events",
    "webhook_deliveries",
    "idempotency_keys",
    "ach_entries",
    "ledger_transfers",
    "ledger_entries",
    "audit_log",
    # transfer ids and resolutions, unpartitioned: what keeps ids unique across months
    "ledger_transfer_ids",
)

# Everything but the audit chain, in the database. ${n} payments, ${c} customers. Payment i
# belongs to customer i % c (tenant of customer k: k % TENANTS), was created (n - i) / rate
# days ago; 1 in 100 was returned, 1 in 97 failed (hold voided), the newest 20 are still
# processing, the rest settled.
SEED = Template("""
INSERT INTO tenants (id, name)
SELECT 'ten_' || t, 'Tenant ' || t FROM generate_series(0, ${last_tenant}) t;
INSERT INTO customers (id, tenant_id, type, name, country, kyc_status, kyc_risk_tier)
SELECT 'cus_' || k, 'ten_' || (k % ${tenants}), 'individual', 'Customer ' || k, 'US',
       'approved', 'low'
FROM generate_series(0, ${c} - 1) k;
INSERT INTO ledger_accounts (id, tenant_id, customer_id, currency, kind,
                             debits_must_not_exceed_credits)
SELECT 'acc_' || k, 'ten_' || (k % ${tenants}), 'cus_' || k, 'USD', 'customer', true
FROM generate_series(0, ${c} - 1) k
UNION ALL SELECT 'acc_empty', 'ten_0', 'cus_0', 'USD', 'customer', true;
INSERT INTO webhook_endpoints (id, tenant_id, url, secret)
SELECT 'we_' || t, 'ten_' || t, 'https://example.com/hook', 'secret'
FROM generate_series(0, ${last_tenant}) t;

CREATE TEMP TABLE seed AS
SELECT i, 'pay_' || lpad(i::text, 12, '0') AS id, i % ${c} AS k,
       now() - make_interval(secs => 86400.0 * (${n} - i) / ${rate}) AS at,
       CASE WHEN i > ${n} - 20 THEN 'processing'
            WHEN i % 100 = 1 THEN 'returned'
            WHEN i % 97 = 0 THEN 'failed'
            ELSE 'settled' END AS status,
       100 + i % 9000 AS amount
FROM generate_series(1, ${n}) i;

INSERT INTO payments (id, tenant_id, account_id, customer_id, amount, currency, rail, creditor,
                      initiated_by, status, status_seq, created_at, updated_at)
SELECT id, 'ten_' || (k % ${tenants}), 'acc_' || k, 'cus_' || k, amount, 'USD', 'ach',
       '{"name": "Creditor", "country": "US", "routing_number": "021000021",
          "account_number": "123456789"}',
       'seed', status, CASE status WHEN 'returned' THEN 3 WHEN 'processing' THEN 0 ELSE 2 END,
       at, at + interval '1 hour'
FROM seed;

CREATE TEMP TABLE seed_history AS
SELECT id, 0 AS seq, 'processing' AS status, at FROM seed
UNION ALL SELECT id, 1, 'submitted', at + interval '1 minute' FROM seed
          WHERE status IN ('settled', 'returned')
UNION ALL SELECT id, 2, CASE status WHEN 'returned' THEN 'settled' ELSE status END,
                 at + interval '1 hour' FROM seed WHERE status <> 'processing'
UNION ALL SELECT id, 3, 'returned', at + interval '1 day' FROM seed WHERE status = 'returned';
INSERT INTO payment_status_history (payment_id, seq, status, at)
SELECT id, seq, status, at FROM seed_history;
INSERT INTO events (id, tenant_id, type, payment_id, data, created_at)
SELECT 'evt_' || substr(h.id, 5) || '_' || lpad(h.seq::text, 2, '0'), 'ten_' || (s.k % ${tenants}),
       'payment.' || h.status, h.id,
       jsonb_build_object('payment_id', h.id, 'status', h.status, 'amount', s.amount,
                          'currency', 'USD', 'rail', 'ach'), h.at
FROM seed_history h JOIN seed s ON s.id = h.id;
INSERT INTO webhook_deliveries (event_id, endpoint_id, attempts, last_status, delivered_at,
                                updated_at)
SELECT e.id, 'we_' || substr(e.tenant_id, 5), 1, 200, e.created_at, e.created_at FROM events e;
INSERT INTO idempotency_keys (tenant_id, key, method_path, fingerprint, response_status,
                              response_body, created_at)
SELECT 'ten_' || (k % ${tenants}), 'key-' || i, 'POST /v1/payments', md5(id), 202,
       jsonb_build_object('id', id, 'status', 'processing'), at
FROM seed;
INSERT INTO ach_entries (payment_id, trace_number, window_id, file_id, effective_date,
                         settled_on, created_at, updated_at)
SELECT id, '${odfi}' || lpad((i % 10000000)::text, 7, '0'), to_char(at, 'YYYYMMDD"T1430"'),
       '091000019-' || to_char(at, 'YYMMDD') || '-1430-A', at::date, at::date, at, at
FROM seed WHERE status IN ('settled', 'returned');

-- money: a deposit per customer first, then per payment its hold and its post or void, and
-- a return
INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, currency, code,
                              kind, pending_id, created_at)
SELECT 'dep_' || k, 'acc_sys_funding_usd_s' || lpad((k % 16)::text, 2, '0'), 'acc_' || k,
       1000000000, 'USD', 'deposit', 'single', NULL,
       now() - make_interval(days => ${n} / ${rate} + 1)
FROM generate_series(0, ${c} - 1) k
UNION ALL
SELECT id || ':hold', 'acc_' || k, 'acc_sys_settlement_ach_usd_s' || lpad((i % 16)::text, 2, '0'),
       amount, 'USD', 'payment_hold', 'pending', NULL, at + interval '30 seconds'
FROM seed WHERE status <> 'processing'
UNION ALL
SELECT id || CASE status WHEN 'failed' THEN ':void' ELSE ':post' END,
       'acc_' || k, 'acc_sys_settlement_ach_usd_s' || lpad((i % 16)::text, 2, '0'), amount,
       'USD', CASE status WHEN 'failed' THEN 'payment_void' ELSE 'payment_post' END,
       CASE status WHEN 'failed' THEN 'void_pending' ELSE 'post_pending' END, id || ':hold',
       at + interval '1 hour'
FROM seed WHERE status IN ('settled', 'returned', 'failed')
UNION ALL
SELECT id || ':return', 'acc_sys_settlement_ach_usd_s' || lpad((i % 16)::text, 2, '0'),
       'acc_' || k, amount, 'USD', 'payment_return', 'single', NULL, at + interval '1 day'
FROM seed WHERE status = 'returned';

INSERT INTO ledger_entries (account_id, version, transfer_id, leg, debits_pending_delta,
    debits_posted_delta, credits_pending_delta, credits_posted_delta, debits_pending,
    debits_posted, credits_pending, credits_posted, created_at)
SELECT account_id, row_number() OVER w, transfer_id, leg, dpe, dpo, cpe, cpo,
       sum(dpe) OVER w, sum(dpo) OVER w, sum(cpe) OVER w, sum(cpo) OVER w, created_at
FROM (
    SELECT t.debit_account_id AS account_id, t.id AS transfer_id, 'debit' AS leg, t.created_at,
           CASE t.kind WHEN 'pending' THEN t.amount WHEN 'single' THEN 0 ELSE -t.amount END
               AS dpe,
           CASE WHEN t.kind IN ('single', 'post_pending') THEN t.amount ELSE 0 END AS dpo,
           0::bigint AS cpe, 0::bigint AS cpo
    FROM ledger_transfers t
    UNION ALL
    SELECT t.credit_account_id, t.id, 'credit', t.created_at, 0, 0,
           CASE t.kind WHEN 'pending' THEN t.amount WHEN 'single' THEN 0 ELSE -t.amount END,
           CASE WHEN t.kind IN ('single', 'post_pending') THEN t.amount ELSE 0 END
    FROM ledger_transfers t
) legs
WINDOW w AS (PARTITION BY account_id ORDER BY created_at, transfer_id
             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);

-- (the load runs with triggers off: the ids the transfers' trigger would record)
INSERT INTO ledger_transfer_ids (id, pending_id, created_at)
SELECT id, pending_id, created_at FROM ledger_transfers;

UPDATE ledger_accounts a
   SET debits_pending = e.dpe, debits_posted = e.dpo, credits_pending = e.cpe,
       credits_posted = e.cpo, version = e.n
  FROM (SELECT account_id, sum(debits_pending_delta) dpe, sum(debits_posted_delta) dpo,
               sum(credits_pending_delta) cpe, sum(credits_posted_delta) cpo, count(*) n
          FROM ledger_entries GROUP BY account_id) e
 WHERE a.id = e.account_id;
""")


# One hour of new money movements on top of the history, for the incremental verification:
# ${m} payments at ${per_second}/s over the customers, each a hold and its post, whose
# entries continue each account's chain (versions and balances) from its current row.
HOUR = Template("""
CREATE TEMP TABLE hour AS
SELECT i, 'pay_h' || lpad(i::text, 11, '0') AS id, i % ${c} AS k,
       'ten_' || ((i % ${c}) % ${tenants}) AS tenant_id,
       now() - make_interval(secs => (${m} - i)::float / ${per_second}) AS at,
       100 + i % 9000 AS amount
FROM generate_series(1, ${m}) i;

CREATE TEMP TABLE hour_transfers AS
SELECT id || ':hold' AS id, 'acc_' || k AS debit_account_id,
       'acc_sys_settlement_ach_usd_s' || lpad((i % 16)::text, 2, '0') AS credit_account_id,
       amount, 'pending' AS kind, NULL AS pending_id, 'payment_hold' AS code, at AS created_at
FROM hour
UNION ALL
SELECT id || ':post', 'acc_' || k,
       'acc_sys_settlement_ach_usd_s' || lpad((i % 16)::text, 2, '0'), amount, 'post_pending',
       id || ':hold', 'payment_post', at + interval '1 second'
FROM hour;
INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, currency, code,
                              kind, pending_id, created_at)
SELECT id, debit_account_id, credit_account_id, amount, 'USD', code, kind, pending_id,
       created_at
FROM hour_transfers;
INSERT INTO ledger_transfer_ids (id, pending_id, created_at)
SELECT id, pending_id, created_at FROM hour_transfers;

CREATE TEMP TABLE hour_legs AS
SELECT account_id, transfer_id, leg, created_at, dpe, dpo, cpe, cpo,
       row_number() OVER w AS n, sum(dpe) OVER w AS sdpe, sum(dpo) OVER w AS sdpo,
       sum(cpe) OVER w AS scpe, sum(cpo) OVER w AS scpo
FROM (
    SELECT t.debit_account_id AS account_id, t.id AS transfer_id, 'debit' AS leg, t.created_at,
           CASE t.kind WHEN 'pending' THEN t.amount ELSE -t.amount END AS dpe,
           CASE t.kind WHEN 'post_pending' THEN t.amount ELSE 0 END AS dpo,
           0::bigint AS cpe, 0::bigint AS cpo
    FROM hour_transfers t
    UNION ALL
    SELECT t.credit_account_id, t.id, 'credit', t.created_at, 0, 0,
           CASE t.kind WHEN 'pending' THEN t.amount ELSE -t.amount END,
           CASE t.kind WHEN 'post_pending' THEN t.amount ELSE 0 END
    FROM hour_transfers t
) legs
WINDOW w AS (PARTITION BY account_id ORDER BY created_at, transfer_id
             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);
INSERT INTO ledger_entries (account_id, version, transfer_id, leg, debits_pending_delta,
    debits_posted_delta, credits_pending_delta, credits_posted_delta, debits_pending,
    debits_posted, credits_pending, credits_posted, created_at)
SELECT l.account_id, a.version + l.n, l.transfer_id, l.leg, l.dpe, l.dpo, l.cpe, l.cpo,
       a.debits_pending + l.sdpe, a.debits_posted + l.sdpo, a.credits_pending + l.scpe,
       a.credits_posted + l.scpo, l.created_at
FROM hour_legs l JOIN ledger_accounts a ON a.id = l.account_id;
UPDATE ledger_accounts a
   SET debits_pending = a.debits_pending + s.dpe, debits_posted = a.debits_posted + s.dpo,
       credits_pending = a.credits_pending + s.cpe, credits_posted = a.credits_posted + s.cpo,
       version = a.version + s.n
  FROM (SELECT account_id, sum(dpe) dpe, sum(dpo) dpo, sum(cpe) cpe, sum(cpo) cpo,
               count(*) n
          FROM hour_legs GROUP BY account_id) s
 WHERE a.id = s.account_id;
""")


def _audit_rows(
    conn: psycopg.Connection[Any],
    chunk: int = 50_000,
    *,
    source: str = "payments",
    head: tuple[int, str] = (0, audit.GENESIS),
) -> int:
    """One `payment.initiated` record per payment of `source` (a table with id, tenant_id,
    account_id, amount, created_at), chained after `head`, loaded with COPY in chunks."""
    seq, prev = head
    last: tuple[Any, str] | None = None
    while True:
        query = f"SELECT id, tenant_id, account_id, amount, created_at FROM {source}"  # noqa: S608 (a table name of this module)
        if last is not None:
            query += " WHERE (created_at, id) > (%s, %s)"
        rows = conn.execute(
            (query + " ORDER BY created_at, id LIMIT %s").encode(),
            (*last, chunk) if last is not None else (chunk,),
        ).fetchall()
        if not rows:
            return seq
        with conn.cursor().copy(
            "COPY audit_log (seq, at, tenant_id, actor, action, subject, detail,"
            " idempotency_key, prev_hash, hash) FROM STDIN"
        ) as copy:
            for payment_id, tenant_id, account_id, amount, created_at in rows:
                seq += 1
                at = created_at.astimezone(UTC)
                detail = {
                    "account_id": account_id,
                    "amount": amount,
                    "currency": "USD",
                    "rail": "ach",
                }
                entry = {
                    "seq": seq,
                    "at": at.isoformat(),
                    "tenant_id": tenant_id,
                    "actor": "seed",
                    "action": "payment.initiated",
                    "subject": payment_id,
                    "detail": detail,
                }
                digest = audit.entry_hash(prev, entry)
                copy.write_row(
                    (
                        seq,
                        at,
                        tenant_id,
                        "seed",
                        "payment.initiated",
                        payment_id,
                        Jsonb(detail),
                        f"{payment_id}:initiated",
                        prev,
                        digest,
                    )
                )
                prev = digest
        last = (rows[-1][4], rows[-1][0])


def seed(dsn: str, n: int) -> None:
    """Load `n` payments and everything they leave behind; then VACUUM ANALYZE."""
    customers = CUSTOMERS
    with psycopg.connect(dsn) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute("SET work_mem = '128MB'")
        sql = SEED.substitute(
            n=n,
            c=customers,
            tenants=TENANTS,
            last_tenant=TENANTS - 1,
            rate=PAYMENTS_PER_DAY,
            odfi=ODFI,
        )
        # the months of the past being loaded (the migration made only the current ones)
        conn.execute(
            "SELECT partitions_ensure(now() - make_interval(days => %s), now())",
            [n // PAYMENTS_PER_DAY + 2],
        )
        conn.execute(sql.encode())  # no parameters: `%` is SQL's modulo
        _audit_rows(conn)
        conn.commit()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def seed_hour(dsn: str, m: int) -> None:
    """Add one hour of new ledger movements and audit records (`m` payments) on top."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET work_mem = '128MB'")
        sql = HOUR.substitute(m=m, c=CUSTOMERS, tenants=TENANTS, per_second=m / 3600)
        conn.execute(sql.encode())
        conn.execute(
            "CREATE TEMP VIEW hour_payments AS SELECT id, tenant_id, 'acc_' || k AS account_id,"
            " amount, at AS created_at FROM hour"
        )
        head = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        assert head is not None
        _audit_rows(conn, source="hour_payments", head=(head[0], head[1]))
        conn.commit()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")


@dataclass
class Figures:
    """What one size measured, by metric name (milliseconds, or bytes for storage)."""

    size: int
    seed_seconds: float = 0.0
    reads: dict[str, float] = field(default_factory=dict)
    writes: dict[str, float] = field(default_factory=dict)
    verify: dict[str, float] = field(default_factory=dict)
    incremental: dict[str, float] = field(default_factory=dict)
    storage: dict[str, float] = field(default_factory=dict)


Read = Callable[[AsyncConnection], Awaitable[Any]]


async def insert_status_event(
    conn: AsyncConnection, payment: Any, seq: int, status: str, at: datetime
) -> None:
    """The `payment.<status>` event the platform writes with a status change."""
    await insert_event(
        conn,
        event_id=payment_event_id(payment.id, seq),
        tenant_id=payment.tenant_id,
        type=f"payment.{status}",
        data=payment_status_event_data(payment, status, None),
        at=at,
        payment_id=payment.id,
    )


async def _reads(conn: AsyncConnection, n: int) -> dict[str, Read]:
    """Each read, as the code issues it, with parameters from the seed: a payment of two
    days ago (tenant 0's), its day, its ACH file and trace numbers near its own."""
    busy_account = "acc_7"
    probe_index = max(CUSTOMERS, (n - 2 * PAYMENTS_PER_DAY) // CUSTOMERS * CUSTOMERS)
    probe = f"pay_{probe_index:012d}"
    entry = (
        await conn.execute(
            text(
                "SELECT file_id, created_at FROM ach_entries WHERE payment_id <= :p"
                " ORDER BY payment_id DESC LIMIT 1"
            ),
            {"p": probe},
        )
    ).one()
    file_id = entry.file_id
    # the payment's creation: what the API bounds its history's read by
    probe_created = (
        await conn.execute(text("SELECT created_at FROM payments WHERE id = :p"), {"p": probe})
    ).scalar_one()
    day = entry.created_at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    traces = [f"{ODFI}{i % 10_000_000:07d}" for i in range(probe_index, probe_index + 10)]

    def run(statement: Any, params: dict[str, Any] | None = None) -> Read:
        async def read(conn: AsyncConnection) -> Any:
            return (await conn.execute(statement, params or {})).all()

        return read

    # what the API's event list reads: the events within their retention
    window = event_window(Settings().retention.event_seconds, datetime.now(UTC))

    async def entries_page(conn: AsyncConnection) -> Any:
        return await account_entries(conn, busy_account, limit=11)

    async def page_after_cursor(conn: AsyncConnection) -> Any:
        cursor = (await conn.execute(payment_cursor_query("ten_0", probe))).scalar_one()
        return (
            await conn.execute(payments_page_query("ten_0", limit=10, after=(cursor, probe)))
        ).all()

    return {
        "GET /v1/payments/{id}": run(payment_query("ten_0", probe)),
        "GET /v1/payments/{id} history": run(history_query([probe], probe_created)),
        "GET /v1/payments": run(payments_page_query("ten_0", limit=10)),
        "GET /v1/payments?starting_after=": page_after_cursor,
        "GET /v1/payments?status=returned": run(
            payments_page_query("ten_0", limit=10, status="returned")
        ),
        "GET /v1/payments?account_id=": run(
            payments_page_query("ten_7", limit=10, account_id=busy_account)
        ),
        "GET /v1/payments?account_id= (no payments)": run(
            payments_page_query("ten_0", limit=10, account_id="acc_empty")
        ),
        "GET /v1/payments?status=returned (a tenant with some)": run(
            payments_page_query("ten_1", limit=10, status="returned")
        ),
        "GET /v1/events": run(events_page_query("ten_0", limit=10, window=window)),
        "GET /v1/events?payment_id=": run(
            events_page_query("ten_0", limit=10, payment_id=probe, window=window)
        ),
        "GET /v1/events?type=payment.returned": run(
            events_page_query("ten_0", limit=10, type="payment.returned", window=window)
        ),
        "GET /v1/events?type=payment.returned (a tenant with some)": run(
            events_page_query("ten_1", limit=10, type="payment.returned", window=window)
        ),
        "GET /v1/accounts/{id}/entries": entries_page,
        "ACH settlement notice (file, traces)": run(
            settle_file_entries(file_id, traces, day.date())
        ),
        "ACH returns (traces)": run(trace_entries_query(traces)),
        "reconciliation: a day's bookings": run(
            LEDGER_BOOKINGS, ledger_bookings_params(day.date().isoformat(), "ach")
        ),
        "ops: payments list --status in_review": run(
            payments_list_query(status="in_review", older_than_minutes=30, limit=20)
        ),
        "ops: payments list": run(
            payments_list_query(status=None, older_than_minutes=None, limit=20)
        ),
        "gauge: open payments": run(OPEN_PAYMENTS),
    }


async def measure_reads(engine: AsyncEngine, n: int) -> dict[str, float]:
    """p50 (ms) of each read over READ_RUNS runs, after one warm-up run."""
    result = {}
    async with engine.connect() as conn:
        for name, read in (await _reads(conn, n)).items():
            await read(conn)
            samples = []
            for _ in range(READ_RUNS):
                started = time.perf_counter()
                await read(conn)
                samples.append((time.perf_counter() - started) * 1000)
            result[name] = statistics.median(samples)
    return result


async def _record_status(conn: AsyncConnection, payment_id: str, seq: int, status: str) -> None:
    at = datetime.now(UTC)
    payment = (await conn.execute(payment_by_id(payment_id))).one()
    await conn.execute(
        pg_insert(payment_status_history)
        .values(payment_id=payment_id, seq=seq, status=status, at=at)
        .on_conflict_do_nothing()
    )
    await conn.execute(
        status_update(payment_id, seq, {"status": status, "status_seq": seq, "updated_at": at})
    )
    await insert_status_event(conn, payment, seq, status, at)


async def measure_writes(engine: AsyncEngine, n: int) -> dict[str, float]:
    """Median (ms) of each step of a payment's write path, and their sum, for fresh payments
    of a busy customer on top of the history."""
    steps: dict[str, list[float]] = {}

    async def timed(name: str, step: Callable[[], Awaitable[Any]]) -> None:
        started = time.perf_counter()
        await step()
        steps.setdefault(name, []).append((time.perf_counter() - started) * 1000)

    customer = 7
    for j in range(WRITE_PAYMENTS):
        payment_id = f"pay_bench_{n}_{j:04d}"

        async def initiate(payment_id: str = payment_id) -> None:
            async with engine.begin() as conn:
                row = (
                    await conn.execute(
                        pg_insert(payments)
                        .values(
                            id=payment_id,
                            tenant_id=f"ten_{customer % TENANTS}",
                            account_id=f"acc_{customer}",
                            customer_id=f"cus_{customer}",
                            amount=100,
                            currency="USD",
                            rail="ach",
                            creditor={"name": "Creditor"},
                            metadata={},
                            initiated_by="bench",
                            status="processing",
                            status_seq=0,
                        )
                        .on_conflict_do_nothing()
                        .returning(*payments.c)
                    )
                ).one()
                await conn.execute(
                    payment_status_history.insert().values(
                        payment_id=payment_id, seq=0, status="processing", at=row.created_at
                    )
                )
                await insert_status_event(conn, row, 0, "processing", row.created_at)
                await audit.append_in(
                    conn,
                    actor="bench",
                    action="payment.initiated",
                    subject=payment_id,
                    tenant_id=row.tenant_id,
                    detail={"amount": 100},
                    idempotency_key=f"{payment_id}:initiated",
                    not_before=row.created_at,
                )

        async def velocity(payment_id: str = payment_id) -> None:
            async with engine.connect() as conn:
                params = {
                    "tenant": f"ten_{customer % TENANTS}",
                    "customer": f"cus_{customer}",
                    "currency": "USD",
                    "payment": payment_id,
                }
                (await conn.execute(RECENT_PAYMENTS, params)).one()

        def ledger_step(kind: TransferKind, step: str, payment_id: str = payment_id) -> Any:
            async def move() -> None:
                hold = f"{payment_id}:hold"
                await create_transfer(
                    engine,
                    Transfer(
                        id=hold if kind is TransferKind.PENDING else f"{payment_id}:{step}",
                        debit_account_id=f"acc_{customer}"
                        if kind is TransferKind.PENDING
                        else None,
                        credit_account_id=(
                            "acc_sys_settlement_ach_usd_s00"
                            if kind is TransferKind.PENDING
                            else None
                        ),
                        amount=100 if kind is TransferKind.PENDING else None,
                        currency="USD" if kind is TransferKind.PENDING else None,
                        code=f"payment_{step}",
                        kind=kind,
                        pending_id=None if kind is TransferKind.PENDING else hold,
                    ),
                )

            return move

        def record(seq: int, status: str, payment_id: str = payment_id) -> Any:
            async def write() -> None:
                async with engine.begin() as conn:
                    await _record_status(conn, payment_id, seq, status)

            return write

        async def ach_entry(payment_id: str = payment_id, j: int = j) -> None:
            async with engine.begin() as conn:
                await conn.execute(
                    UPSERT_ACH_ENTRY,
                    {
                        "p": payment_id,
                        "trace": f"{ODFI}{9_000_000 + j:07d}",
                        "window": "bench",
                        "file": f"bench-{n}",
                        "effective": datetime.now(UTC).date(),
                    },
                )

        await timed("initiate (payment, history, event, audit)", initiate)
        await timed("velocity limits", velocity)
        await timed("ledger hold", ledger_step(TransferKind.PENDING, "hold"))
        await timed("ACH entry", ach_entry)
        await timed("record status submitted", record(1, "submitted"))
        await timed("ledger post", ledger_step(TransferKind.POST_PENDING, "post"))
        await timed("record status settled", record(2, "settled"))
    medians = {name: statistics.median(samples) for name, samples in steps.items()}
    medians["whole write path"] = sum(medians.values())
    return medians


async def measure_verify(engine: AsyncEngine) -> dict[str, float]:
    """Full ledger and audit verifications (ms); both must pass."""
    started = time.perf_counter()
    ledger_report = await verify_ledger(engine)
    ledger_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    audit_report = await audit.verify(engine)
    audit_ms = (time.perf_counter() - started) * 1000
    if not ledger_report.ok or not audit_report.ok:
        raise SystemExit(
            f"seed fails verification: {ledger_report.problems} {audit_report.problems}"
        )
    figures = {"one snapshot: ledger": ledger_ms, "one snapshot: audit": audit_ms}
    # what `payments ledger verify --full` / `audit verify --full` run: the FullVerification
    # workflow's chunks, here in this process (the workflow adds a few round trips to
    # Temporal per activity of ten chunks)
    chunk = FullVerifyInput().chunk_size
    for kind in ("ledger", "audit"):
        started = time.perf_counter()
        outcome = await run_to_end(engine, kind, chunk, actor="bench")
        figures[f"chunked ({chunk:,} rows per chunk): {kind}"] = (
            time.perf_counter() - started
        ) * 1000
        if not outcome.ok:
            raise SystemExit(f"seed fails the chunked {kind} verification: {outcome.problems}")
    return figures


async def measure_incremental(engine: AsyncEngine, dsn: str, m: int) -> dict[str, float]:
    """Checkpoint the history (full runs), add an hour of `m` payments, then time the
    incremental ledger and audit verifications of that hour (ms), each writing its
    checkpoint as the CLI does, and once more with nothing new."""
    for full in (verify_books, verify_audit_trail):
        if not (await full(engine, full=True, actor="bench")).ok:
            raise SystemExit("the history fails verification")
    seed_hour(dsn, m)
    figures: dict[str, float] = {}
    for label in ("one hour", "nothing new"):
        for name, run in (("ledger verify", verify_books), ("audit verify", verify_audit_trail)):
            started = time.perf_counter()
            outcome = await run(engine, full=False, actor="bench")
            figures[f"{name}, {label}"] = (time.perf_counter() - started) * 1000
            if not outcome.ok or outcome.mode != "incremental":
                raise SystemExit(f"incremental {name} failed: {outcome.problems}")
        figures[f"ledger + audit, {label}"] = (
            figures[f"ledger verify, {label}"] + figures[f"audit verify, {label}"]
        )
    return figures


async def measure_storage(engine: AsyncEngine, n: int) -> dict[str, float]:
    """Bytes per payment of each growing table, indexes and TOAST included."""
    async with engine.connect() as conn:
        return {
            table: (
                await conn.execute(
                    # a partitioned table's size is its partitions'
                    text(
                        "SELECT coalesce((SELECT sum(pg_total_relation_size(relid))"
                        " FROM pg_partition_tree(CAST(:t AS regclass))),"
                        " pg_total_relation_size(CAST(:t AS regclass)))"
                    ),
                    {"t": table},
                )
            ).scalar_one()
            / n
            for table in GROWING
        }


async def bench_size(postgres: EmbeddedPostgres, n: int, hour: int) -> Figures:
    """Seed a fresh database with `n` payments and measure it."""
    figures = Figures(n)
    name = f"volume_{n}"
    admin = postgres.url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0]
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = postgres.url.rsplit("/", 1)[0] + f"/{name}"
    upgrade(Settings().updated({"database.url": url}))
    started = time.perf_counter()
    seed(f"{admin}/{name}", n)
    figures.seed_seconds = time.perf_counter() - started
    engine = create_async_engine(url, pool_size=2, max_overflow=0)
    try:
        figures.verify = await measure_verify(engine)
        figures.reads = await measure_reads(engine, n)
        figures.writes = await measure_writes(engine, n)
        figures.storage = await measure_storage(engine, n)
        figures.incremental = await measure_incremental(engine, f"{admin}/{name}", hour)
    finally:
        await engine.dispose()
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    return figures


def print_table(title: str, unit: str, rows: dict[str, list[float]], sizes: list[int]) -> None:
    """One section: a metric per line, a column per size, then largest/smallest."""
    header = f"{title} ({unit})"
    widths = max(len(header), *(len(name) for name in rows)) + 2
    print()
    print(header.ljust(widths) + "".join(f"{size:>12,}" for size in sizes) + f"{'ratio':>9}")
    for name, values in rows.items():
        ratio = values[-1] / values[0] if values[0] else float("nan")
        cells = "".join(
            f"{value:>12.2f}" if value < 1000 else f"{value:>12,.0f}" for value in values
        )
        print(name.ljust(widths) + cells + f"{ratio:>9.2f}")


async def main(sizes: list[int], hour: int) -> None:
    """Start a private PostgreSQL, measure each size, print the tables."""
    data = Path(tempfile.mkdtemp(prefix="volume-bench-"))
    postgres = EmbeddedPostgres(data / "postgres", free_port())
    postgres.start()
    try:
        results = []
        for n in sizes:
            print(f"seeding and measuring {n:,} payments ...", flush=True)
            figures = await bench_size(postgres, n, hour)
            print(f"  seeded in {figures.seed_seconds:.1f} s", flush=True)
            results.append(figures)
    finally:
        postgres.stop()
        shutil.rmtree(data, ignore_errors=True)  # a 1M run leaves gigabytes
    for title, unit, attribute in (
        ("reads: p50", "ms", "reads"),
        ("write path per payment: median per step", "ms", "writes"),
        ("verification, full", "ms", "verify"),
        (f"verification, incremental ({hour:,} new payments)", "ms", "incremental"),
        ("storage per payment", "bytes", "storage"),
    ):
        names = list(getattr(results[0], attribute))
        rows = {name: [getattr(f, attribute)[name] for f in results] for name in names}
        print_table(title, unit, rows, sizes)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="10000,100000",
        help="payments per run, comma-separated (e.g. 10000,100000,1000000)",
    )
    parser.add_argument(
        "--hour-payments",
        type=int,
        default=HOUR_PAYMENTS,
        help="new payments the incremental verification checks (an hour at 10/s)",
    )
    parser.add_argument(
        "--payments-per-day",
        type=int,
        default=PAYMENTS_PER_DAY,
        help="the seed's rate: fewer a day is a longer past (more months) for the same size",
    )
    args = parser.parse_args()
    PAYMENTS_PER_DAY = args.payments_per_day
    sizes = [int(size) for size in args.sizes.split(",")]
    if min(sizes) < CUSTOMERS:
        parser.error(f"sizes start at {CUSTOMERS:,} payments (one per customer)")
    asyncio.run(main(sizes, args.hour_payments))
