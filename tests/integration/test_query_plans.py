"""Every query on a payment's path and every read filter reads what it returns, not history.

A private database is seeded with a few thousand payments (and their history, events, ledger
transfers and entries, audit records, ACH entries) spread over two months, then each query
the API, the workers and the ops commands run is executed under `EXPLAIN ANALYZE` with the
whole-table strategies (sequential scans, merge and hash joins) disabled. A query fails if a
scan of a growing table in its plan is a Seq Scan or reads more rows than a small budget: the
seed gives every history-dependent plan thousands of rows to read, and every
history-independent one a few dozen at most.

The statements come from the modules that run them (query constants and query builders),
so the test checks what really runs. The full verifications (`payments ledger verify --full`,
`payments audit verify --full`) read everything, but a chunk at a time: each chunk's queries
are here, and must read their chunk, not history. Not covered here: the ledger's PL/pgSQL
functions (their statements look transfers up by primary key or by the unique
`pending_id`), the one-snapshot verifications (`services.verification` with `full`), and
the incremental ledger check's queries over its temporary tables (measured by
bench/volume.py instead).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, create_engine, text

from activities.ledger import ACTION_REASONS, OPEN_PAYMENTS
from activities.limits import RECENT_PAYMENTS
from activities.notify import event_query
from activities.payment_records import payment_by_id, status_update
from activities.rails import ACH_ENTRY, UPSERT_ACH_ENTRY
from activities.reconciliation import (
    LEDGER_BOOKINGS,
    PAYMENTS_BY_REFERENCE,
    PRENOTES_BY_TRACE,
    REJECTED_REVERSALS_BY_TRACE,
    credited_deposits_query,
    ledger_bookings_params,
)
from api.idempotency import key_query, takeover_statement
from api.pagination import cursor_query
from api.routers.batches import batch_query, items_page_query
from api.routers.counterparties import counterparties_page_query
from api.routers.deposits import deposits_page_query
from api.routers.payments import (
    history_query,
    payment_cursor_query,
    payment_query,
    payments_page_query,
)
from api.routers.rails import (
    expired_receipts,
    receipt_query,
    receipt_statement,
    settle_file_entries,
    trace_entries_query,
)
from api.routers.webhooks import event_cursor_query, event_window, events_page_query
from kernel.audit import (
    ARCHIVE_ANCHOR,
    CHAINS,
    LAST_LINK,
    last_link_query,
    link_query,
    recent_since,
    recorded_query,
    records_after_query,
    records_chunk_query,
)
from kernel.checkpoints import latest_query
from kernel.tables import deposits
from ledger import full
from ledger.engine import account_entries_query, recent_entries_query, recent_months_start
from ops.devstack import Stack
from ops.migrate import upgrade
from services.batches import item_counts_query
from services.counterparties import rescreen_page_query
from services.erasure import open_payments_query
from services.payment_actions import payments_list_query
from services.retention import (
    deliveries_of_statement,
    due_payment_details_query,
    expired_events_query,
    expired_keys_query,
)
from tests.integration.query_plans import explain, history_scans, table_of

# a history-independent query reads at most its page (limit + 1), a payment's status
# history, a customer's last day or a day's bookings: a few dozen rows in this seed
ROW_BUDGET = 200
# At this seed's size the planner may find walking a whole table (sequentially, or as the
# sorted or hashed side of a join) as cheap as looking up the few rows needed; with a large
# table it would not. These strategies are off, so the test sees the plan a large database
# gets; a query that has no other way still reads history, and fails.
WHOLE_TABLE_STRATEGIES = ("enable_seqscan", "enable_mergejoin", "enable_hashjoin")
PAYMENTS = 6000
# rows a purge deletes per transaction here (a fraction of the budget)
PURGE_BATCH = 100
# rows per chunk of a full verification here (a chunk's transfers read twice as many entries)
CHUNK = 50
PROBE = "pay_probe_00001"  # the probe customer's newest payment
PROBE_CUSTOMER = "cus_a_probe"
PROBE_ACCOUNT = "acc_a_probe"
EMPTY_ACCOUNT = "acc_a_empty"  # an account of the tenant without payments

SEED = f"""
-- the months of the seed's past (the migration made only the current one and those ahead)
SELECT partitions_ensure(now() - interval '4 months', now());
INSERT INTO tenants (id, name) VALUES ('ten_a', 'A'), ('ten_b', 'B');
INSERT INTO customers (id, tenant_id, type, name, country, kyc_status, kyc_risk_tier)
SELECT 'cus_' || t || '_' || c, 'ten_' || t, 'individual', 'Customer ' || c, 'US',
       'approved', 'low'
FROM unnest(ARRAY['a', 'b']) t, generate_series(0, 99) c
UNION ALL SELECT '{PROBE_CUSTOMER}', 'ten_a', 'individual', 'Probe', 'US', 'approved', 'low';
INSERT INTO ledger_accounts (id, tenant_id, customer_id, currency, kind,
                             debits_must_not_exceed_credits)
SELECT 'acc' || substr(id, 4), tenant_id, id, 'USD', 'customer', true FROM customers
UNION ALL SELECT '{EMPTY_ACCOUNT}', 'ten_a', '{PROBE_CUSTOMER}', 'USD', 'customer', true;

-- a sixth of the payments in the last 24 hours, the rest over the two months before; three
-- quarters of them the probe tenant's; open statuses only among the recent ones
INSERT INTO payments (id, tenant_id, account_id, customer_id, amount, currency, rail, creditor,
                      initiated_by, status, status_seq, created_at, updated_at)
SELECT 'pay_' || lpad(i::text, 11, '0'), tenant, 'acc' || substr(customer, 4), customer,
       100 + i, 'USD', 'ach', '{{}}', 'seed', status, 1, created, created + interval '1 hour'
FROM (
    SELECT i,
           CASE WHEN i % 4 = 0 THEN 'ten_b' ELSE 'ten_a' END AS tenant,
           'cus_' || CASE WHEN i % 4 = 0 THEN 'b' ELSE 'a' END || '_' || (i % 100) AS customer,
           CASE WHEN i % 6 = 0 THEN now() - make_interval(mins => i % 1400)
                ELSE now() - interval '1 day' - make_interval(mins => i * 14) END AS created,
           CASE WHEN i % 6 = 0 AND i % 40 = 0 THEN 'processing'
                WHEN i % 6 = 0 AND i % 41 = 0 THEN 'in_review'
                WHEN i % 50 = 1 THEN 'returned'
                WHEN i % 37 = 0 THEN 'failed'
                ELSE 'settled' END AS status
    FROM generate_series(1, {PAYMENTS}) i
) p;
INSERT INTO payments (id, tenant_id, account_id, customer_id, amount, currency, rail, creditor,
                      initiated_by, status, status_seq, created_at, updated_at)
SELECT 'pay_probe_' || lpad(i::text, 5, '0'), 'ten_a', '{PROBE_ACCOUNT}', '{PROBE_CUSTOMER}',
       1000, 'USD', 'ach', '{{}}', 'seed', 'settled', 1,
       now() - make_interval(hours => i * i), now() - make_interval(hours => i * i)
FROM generate_series(1, 40) i;

INSERT INTO payment_status_history (payment_id, seq, status, at)
SELECT id, 0, 'processing', created_at FROM payments
UNION ALL SELECT id, 1, status, updated_at FROM payments;
INSERT INTO events (id, tenant_id, type, payment_id, data, created_at)
SELECT 'evt_' || substr(id, 5) || '_0' || seq, p.tenant_id, 'payment.' || h.status, id,
       '{{}}', h.at
FROM payment_status_history h JOIN payments p ON p.id = h.payment_id;
INSERT INTO webhook_endpoints (id, tenant_id, url, secret)
VALUES ('we_a', 'ten_a', 'https://example.com/hook', 'secret');
INSERT INTO webhook_deliveries (event_id, endpoint_id, attempts, last_status, delivered_at)
SELECT id, 'we_a', 1, 200, created_at FROM events WHERE tenant_id = 'ten_a';
INSERT INTO idempotency_keys (tenant_id, key, method_path, fingerprint, response_status,
                              created_at)
SELECT tenant_id, 'key-' || id, 'POST /v1/payments', 'f', 202, created_at FROM payments;
INSERT INTO ach_entries (payment_id, trace_number, window_id, file_id, effective_date,
                         settled_on, created_at)
SELECT id, '02100002' || lpad(substr(id, 5)::bigint::text, 7, '0'),
       to_char(created_at, 'YYYYMMDD'),
       '021000021-' || to_char(created_at, 'YYMMDD') || '-1430-A', created_at::date,
       CASE WHEN status IN ('settled', 'returned') THEN updated_at::date END, created_at
FROM payments WHERE id NOT LIKE 'pay_probe_%';
-- a deposit per payment, credited when made (a tenth of them EUR: another rail's account)
INSERT INTO deposits (id, tenant_id, account_id, amount, currency, created_by, created_at,
                      credited_at, bank_reference)
SELECT 'dep_' || substr(id, 5), tenant_id, account_id, 100,
       CASE WHEN substr(id, 5)::bigint % 10 = 0 THEN 'EUR' ELSE 'USD' END, 'seed', created_at,
       created_at, 'BNK-' || substr(id, 5)
FROM payments WHERE id NOT LIKE 'pay_probe_%';

-- a hold and its posting per payment that moved money, a return for the returned ones
INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, currency, code,
                              kind, pending_id, created_at)
SELECT id || ':hold', account_id, 'acc_sys_settlement_ach_usd', amount, 'USD', 'payment_hold',
       'pending', NULL, created_at
FROM payments WHERE status IN ('settled', 'returned', 'submitted')
UNION ALL
SELECT id || ':post', account_id, 'acc_sys_settlement_ach_usd', amount, 'USD', 'payment_post',
       'post_pending', id || ':hold', updated_at
FROM payments WHERE status IN ('settled', 'returned')
UNION ALL
SELECT id || ':return', 'acc_sys_settlement_ach_usd', account_id, amount, 'USD',
       'payment_return', 'single', NULL, updated_at + interval '1 day'
FROM payments WHERE status = 'returned';
INSERT INTO ledger_entries (account_id, version, transfer_id, leg, debits_pending_delta,
    debits_posted_delta, credits_pending_delta, credits_posted_delta, debits_pending,
    debits_posted, credits_pending, credits_posted, created_at)
SELECT account_id, row_number() OVER (PARTITION BY account_id ORDER BY created_at, id),
       id, leg, 0, 0, 0, 0, 0, 0, 0, 0, created_at
FROM (SELECT debit_account_id AS account_id, id, 'debit' AS leg, created_at
      FROM ledger_transfers
      UNION ALL
      SELECT credit_account_id, id, 'credit', created_at FROM ledger_transfers) legs;

-- saved counterparties over the same two months, alternately SEPA and ACH
INSERT INTO counterparties (id, tenant_id, rail, type, name, country, iban, routing_number,
                            account_number, verification_method, screening_decision,
                            screened_at, created_by, created_at, updated_at)
SELECT 'cpt_' || lpad(i::text, 11, '0'), CASE WHEN i % 4 = 0 THEN 'ten_b' ELSE 'ten_a' END,
       CASE WHEN i % 2 = 0 THEN 'sepa' ELSE 'ach' END, 'individual', 'Payee ' || i, 'US',
       CASE WHEN i % 2 = 0 THEN 'DE89370400440532013000' END,
       CASE WHEN i % 2 = 1 THEN '021000021' END, CASE WHEN i % 2 = 1 THEN '12345678' END,
       CASE WHEN i % 2 = 0 THEN 'vop' ELSE 'prenote' END, 'clear',
       now() - make_interval(mins => i * 20), 'seed',
       now() - make_interval(mins => i * 20), now() - make_interval(mins => i * 20)
FROM generate_series(1, {PAYMENTS // 2}) i;
-- a prenote entry for a tenth of the ACH counterparties
INSERT INTO ach_entries (payment_id, trace_number, window_id, file_id, effective_date,
                         created_at)
SELECT id, '09100001' || lpad(substr(id, 5)::bigint::text, 7, '0'),
       to_char(created_at, 'YYYYMMDD'),
       '091000019-' || to_char(created_at, 'YYMMDD') || '-1430-A', created_at::date, created_at
FROM counterparties WHERE rail = 'ach' AND substr(id, 5)::bigint % 10 = 1;

INSERT INTO audit_log (seq, at, tenant_id, actor, action, subject, detail, idempotency_key,
                       prev_hash, hash)
SELECT row_number() OVER (ORDER BY created_at, id), created_at, tenant_id, 'seed',
       'payment.initiated', id, '{{}}', id || ':initiated', 'h' || id, 'h' || id || '+'
FROM payments;
-- and each payment's screening in its tenant's chain (migration 0029)
INSERT INTO audit_log (seq, at, chain, tenant_id, actor, action, subject, detail,
                       idempotency_key, prev_hash, hash)
SELECT row_number() OVER (PARTITION BY tenant_id ORDER BY created_at, id), created_at,
       tenant_id, tenant_id, 'seed', 'screening.completed', id, '{{}}', id || ':screening',
       's' || id, 's' || id || '+'
FROM payments;

-- the bank's callbacks acted on, one per payment, over the two months (most past pruning)
INSERT INTO rail_callback_receipts (event_id, received_at)
SELECT 'evt_bank_' || id, updated_at FROM payments;
"""  # noqa: S608 (constants of this module, no input)


@pytest.fixture(scope="module")
def seeded(database: Stack) -> Iterator[Callable[[], Connection]]:
    """A private database with the seed, analyzed; yields a connection factory."""
    port = database.settings.database.embedded_port
    name = f"plans_{uuid.uuid4().hex[:12]}"
    admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/{name}"
    upgrade(database.settings.updated({"database.url": url}))
    engine = create_engine(url)
    with engine.begin() as conn:
        # a bulk load: the ledger's and the audit chain's integrity triggers check what the
        # code writes; these rows only need the shape the plans see
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.connection.cursor().execute(SEED)  # no parameters: `%` is SQL's modulo
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    yield engine.connect
    engine.dispose()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _transfer_from_end(conn: Connection, back: int) -> str:
    """The id of the transfer `back` places before the last (a final chunk's cursor)."""
    return str(
        conn.execute(
            text("SELECT id FROM ledger_transfers ORDER BY id DESC OFFSET :n LIMIT 1"), {"n": back}
        ).scalar_one()
    )


def _chunk_end(conn: Connection, after: str) -> str:
    """The last transfer of the chunk after `after`."""
    return str(conn.execute(full.TRANSFERS_BOUND, {"after": after, "n": CHUNK}).one().last)


def _chunk_accounts(conn: Connection, after: str) -> tuple[str, str]:
    """The account a chunk of entries after (`after`, 1) ends on (its upper bound)."""
    return after, str(
        conn.execute(
            text(
                "SELECT account_id FROM ledger_entries WHERE (account_id, version) > (:a, 1)"
                " ORDER BY account_id, version OFFSET :n LIMIT 1"
            ),
            {"a": after, "n": CHUNK - 1},
        ).scalar_one()
    )


def _ends(ids: list[str]) -> dict[str, Any]:
    """A chunk's account end states, as the full check passes them (arrays)."""
    return {
        "ids": ids,
        "versions": [1] * len(ids),
        "dps": [0] * len(ids),
        "dpos": [0] * len(ids),
        "cps": [0] * len(ids),
        "cpos": [0] * len(ids),
    }


def _day_bounds(days_ago: int) -> dict[str, datetime]:
    start = (datetime.now(UTC) - timedelta(days=days_ago)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return {"start": start, "end": start + timedelta(days=1)}


def _keyset_of(conn: Connection, payment_id: str) -> tuple[Any, str]:
    created_at = conn.execute(
        text("SELECT created_at FROM payments WHERE id = :p"), {"p": payment_id}
    ).scalar_one()
    return created_at, payment_id


def _file_of(conn: Connection, payment_id: str) -> str:
    return str(
        conn.execute(
            text("SELECT file_id FROM ach_entries WHERE payment_id = :p"), {"p": payment_id}
        ).scalar_one()
    )


def _transfer_at(conn: Connection, transfer_id: str) -> datetime:
    """A transfer's created_at, as the id table names it."""
    at: datetime = conn.execute(
        text("SELECT created_at FROM ledger_transfers WHERE id = :id"), {"id": transfer_id}
    ).scalar_one()
    return at


# name -> (statement, parameters) for every query under test, given a connection (for
# keyset positions read from the seed)
Probe = Callable[[Connection], tuple[Any, dict[str, Any]]]
NOW = datetime.now(UTC)
THIS_MONTH = datetime(NOW.year, NOW.month, 1, tzinfo=UTC)
NEXT_MONTH = (THIS_MONTH + timedelta(days=32)).replace(day=1)
WINDOW = event_window(30 * 24 * 3600.0, NOW)

PROBES: dict[str, Probe] = {
    # a payment's path (workers and the API's POST)
    "limits: velocity (RECENT_PAYMENTS)": lambda c: (
        RECENT_PAYMENTS,
        {"tenant": "ten_a", "customer": PROBE_CUSTOMER, "currency": "USD", "payment": PROBE},
    ),
    "records: payment by id": lambda c: (payment_by_id(PROBE), {}),
    "records: status update": lambda c: (
        status_update(PROBE, 9, {"status": "settled", "status_seq": 9, "updated_at": NOW}),
        {},
    ),
    "notify: event by id": lambda c: (event_query("evt_probe_00001_01"), {}),
    "rails: ACH entry of a payment": lambda c: (ACH_ENTRY, {"p": "pay_00000000007"}),
    "rails: ACH entry upsert": lambda c: (
        UPSERT_ACH_ENTRY,
        {
            "p": "pay_00000000007",
            "trace": "021000020000007",
            "window": "w1",
            "file": "f1",
            "effective": NOW.date(),
        },
    ),
    "rails callback: settlement notice (file, traces)": lambda c: (
        settle_file_entries(
            _file_of(c, "pay_00000000007"),
            ["021000020000007", "021000020000008"],
            NOW.date(),
        ),
        {},
    ),
    "rails callback: returns (traces)": lambda c: (
        trace_entries_query(["021000020000007", "021000020000008"]),
        {},
    ),
    "rails callback: receipt seen": lambda c: (receipt_query("evt_bank_pay_00000000007"), {}),
    "rails callback: receipt recorded": lambda c: (receipt_statement("evt_bank_new", NOW), {}),
    "rails callback: expired receipts pruned": lambda c: (expired_receipts(NOW, 300.0), {}),
    "idempotency: key record": lambda c: (key_query("ten_a", "key-pay_00000000007"), {}),
    "idempotency: takeover": lambda c: (
        takeover_statement("ten_a", "key-pay_00000000007", "f", 60.0),
        {},
    ),
    "audit: last link": lambda c: (LAST_LINK, {}),
    "audit: last link of a tenant's chain": lambda c: (last_link_query("ten_a"), {}),
    "audit: a key's record since its payment's creation": lambda c: (
        recorded_query("pay_00000000007:initiated", NOW - timedelta(days=1)),
        {},
    ),
    "audit: last link of a tenant's chain, the recent months": lambda c: (
        last_link_query("ten_a", since=recent_since(NOW)),
        {},
    ),
    "audit verify: the tenants' chains (skip scan)": lambda c: (CHAINS, {}),
    "audit: key recorded": lambda c: (recorded_query("pay_00000000007:initiated"), {}),
    "ledger gauge: open payments (OPEN_PAYMENTS)": lambda c: (OPEN_PAYMENTS, {}),
    "ledger gauge: waiting for ops, by reason (ACTION_REASONS)": lambda c: (ACTION_REASONS, {}),
    "reconciliation: payments behind unposted SEPA debits": lambda c: (
        PAYMENTS_BY_REFERENCE["sepa"],
        {"refs": ["pay_00000000007", "pay_00000000008"]},
    ),
    "reconciliation: payments behind unposted ACH debits": lambda c: (
        PAYMENTS_BY_REFERENCE["ach"],
        {"refs": ["021000020000007", "021000020000008"]},
    ),
    "reconciliation: a day's bookings (LEDGER_BOOKINGS)": lambda c: (
        LEDGER_BOOKINGS,
        ledger_bookings_params(_day_bounds(10)["start"].date().isoformat(), "ach"),
    ),
    "reconciliation: prenotes among a statement's zero-amount entries": lambda c: (
        PRENOTES_BY_TRACE,
        {"refs": ["091000010000011", "091000010000021", "021000020000007"]},
    ),
    "reconciliation: rejected reversals among a statement's entries": lambda c: (
        REJECTED_REVERSALS_BY_TRACE,
        {"refs": ["091000010000011", "091000010000021", "021000020000007"]},
    ),
    "re-screening: a page of counterparties": lambda c: (
        rescreen_page_query("cpt_00000001000", 200),
        {},
    ),
    "GET counterparties": lambda c: (counterparties_page_query("ten_a", limit=10), {}),
    "GET counterparties?rail=ach": lambda c: (
        counterparties_page_query("ten_a", limit=10, rail="ach"),
        {},
    ),
    "GET counterparties: page after cursor": lambda c: (
        counterparties_page_query(
            "ten_a",
            limit=10,
            after=(
                c.execute(
                    text("SELECT created_at FROM counterparties WHERE id = 'cpt_00000001001'")
                ).scalar_one(),
                "cpt_00000001001",
            ),
        ),
        {},
    ),
    "reconciliation: a day's credited deposits": lambda c: (
        credited_deposits_query("USD", **_day_bounds(10)),
        {},
    ),
    # reads
    "GET payment": lambda c: (payment_query("ten_a", PROBE), {}),
    "GET payment: status history": lambda c: (history_query([PROBE]), {}),
    "GET payment: status history since its creation": lambda c: (
        history_query([PROBE], _keyset_of(c, PROBE)[0]),
        {},
    ),
    "GET payments": lambda c: (payments_page_query("ten_a", limit=10), {}),
    "GET payments: cursor": lambda c: (payment_cursor_query("ten_a", "pay_00000000007"), {}),
    "GET payments: page after cursor": lambda c: (
        payments_page_query(
            "ten_a",
            limit=10,
            after=_keyset_of(c, "pay_00000003001"),
        ),
        {},
    ),
    "GET payments: page histories": lambda c: (
        history_query([f"pay_{i:011d}" for i in range(1, 12)]),
        {},
    ),
    "GET payments?status=returned": lambda c: (
        payments_page_query("ten_a", limit=10, status="returned"),
        {},
    ),
    "GET payments?status=in_review": lambda c: (
        payments_page_query("ten_a", limit=10, status="in_review"),
        {},
    ),
    "GET payments?account_id= (busy account)": lambda c: (
        payments_page_query("ten_a", limit=10, account_id="acc_a_7"),
        {},
    ),
    "GET payments?account_id= (no payments)": lambda c: (
        payments_page_query("ten_a", limit=10, account_id=EMPTY_ACCOUNT),
        {},
    ),
    "GET payments?account_id= (another tenant's)": lambda c: (
        payments_page_query("ten_a", limit=10, account_id="acc_b_4"),
        {},
    ),
    "GET payments?batch_id=": lambda c: (
        payments_page_query("ten_a", limit=10, batch_id="bat_probe"),
        {},
    ),
    "GET payments?schedule_id=": lambda c: (
        payments_page_query("ten_a", limit=10, schedule_id="psch_probe"),
        {},
    ),
    "GET payment batch": lambda c: (batch_query("ten_a", "bat_probe"), {}),
    "GET payment batch: counts by status": lambda c: (item_counts_query("bat_probe"), {}),
    "GET payment batch items: page after cursor": lambda c: (
        items_page_query("bat_probe", limit=10, after_index=20),
        {},
    ),
    "GET deposits": lambda c: (deposits_page_query("ten_a", limit=10), {}),
    "GET deposits: cursor": lambda c: (cursor_query(deposits, "ten_a", "dep_00000000007"), {}),
    "GET deposits?status=pending_review": lambda c: (
        deposits_page_query("ten_a", limit=10, status="pending_review"),
        {},
    ),
    "GET deposits?status=credited": lambda c: (
        deposits_page_query("ten_a", limit=10, status="credited"),
        {},
    ),
    "GET events": lambda c: (events_page_query("ten_a", limit=10), {}),
    "GET events: cursor": lambda c: (event_cursor_query("ten_a", "evt_00000000007_01"), {}),
    "GET events?payment_id=": lambda c: (
        events_page_query("ten_a", limit=10, payment_id=PROBE),
        {},
    ),
    "GET events?type= (rare)": lambda c: (
        events_page_query("ten_a", limit=10, type="payment.returned"),
        {},
    ),
    "GET events?type= (absent)": lambda c: (
        events_page_query("ten_a", limit=10, type="payment.canceled"),
        {},
    ),
    "GET events?type=&payment_id=": lambda c: (
        events_page_query("ten_a", limit=10, type="payment.settled", payment_id=PROBE),
        {},
    ),
    "GET account entries": lambda c: (account_entries_query("acc_a_7", 11, None), {}),
    "GET account entries: the recent months": lambda c: (
        recent_entries_query("acc_a_7", None, 11, recent_months_start(NOW)),
        {},
    ),
    "GET events (the retention window)": lambda c: (
        events_page_query("ten_a", limit=10, window=WINDOW),
        {},
    ),
    "GET events: cursor (the retention window)": lambda c: (
        event_cursor_query("ten_a", "evt_00000000007_01", window=WINDOW),
        {},
    ),
    "GET events?type= (absent, the retention window)": lambda c: (
        events_page_query("ten_a", limit=10, type="payment.canceled", window=WINDOW),
        {},
    ),
    "GET account entries: page": lambda c: (account_entries_query("acc_a_7", 11, 20), {}),
    # ops commands
    "ops: payments list": lambda c: (
        payments_list_query(status=None, older_than_minutes=None, limit=20),
        {},
    ),
    "ops: payments list --status in_review --older-than 30": lambda c: (
        payments_list_query(status="in_review", older_than_minutes=30, limit=20),
        {},
    ),
    "ops: payments list --status settled": lambda c: (
        payments_list_query(status="settled", older_than_minutes=None, limit=20),
        {},
    ),
    # incremental verification: the last checkpoint, its anchor, the records after it
    "verify: latest checkpoint": lambda c: (latest_query("audit"), {}),
    "audit verify: the checkpoint's anchor": lambda c: (link_query(PAYMENTS - 10), {}),
    "audit verify: records after the anchor": lambda c: (
        records_after_query(PAYMENTS - 10),
        {},
    ),
    # full verification, a chunk at a time (the ledger's cursor mid-way through the entries
    # and the transfers; the last chunks, open-ended, from near the end)
    "full verify: the progress total": lambda c: (full.SIZES, {}),
    "full verify: a chunk of entries": lambda c: (
        full.ENTRIES_CHUNK,
        {
            "account": "acc_a_7",
            "version": 1,
            "dp": 0,
            "dpo": 0,
            "cp": 0,
            "cpo": 0,
            "n": CHUNK,
            "run_key": "full-verification-ledger/r1",
        },
    ),
    "full verify: the accounts of a chunk": lambda c: (
        full.ACCOUNTS_RANGE,
        {
            **_ends(["acc_a_7", "acc_a_70"]),
            "low": _chunk_accounts(c, "acc_a_7")[0],
            "high": _chunk_accounts(c, "acc_a_7")[1],
        },
    ),
    "full verify: the accounts after the last chunk": lambda c: (
        full.ACCOUNTS_REST,
        {**_ends(["acc_sys_settlement_ach_usd"]), "low": "acc_b_99"},
    ),
    "full verify: a chunk's transfers": lambda c: (
        full.TRANSFERS_BOUND,
        {"after": "pay_00000003001:hold", "n": CHUNK},
    ),
    "full verify: a chunk of transfers and their legs": lambda c: (
        full.TRANSFERS_RANGE,
        {"after": "pay_00000003001:hold", "high": _chunk_end(c, "pay_00000003001:hold")},
    ),
    "full verify: the last chunk of transfers": lambda c: (
        full.TRANSFERS_REST,
        {"after": _transfer_from_end(c, CHUNK - 1)},
    ),
    "full verify: the run's start cut": lambda c: (
        full.START_CUT,
        {"run_key": "full-verification-ledger/r1"},
    ),
    "full verify: the run's states become the verified ones": lambda c: (
        full.ADOPT_STATES,
        {"run_key": "full-verification-ledger/r1", "checkpoint_id": 1},
    ),
    "full verify: a chunk of audit records": lambda c: (
        records_chunk_query(PAYMENTS // 2, CHUNK),
        {},
    ),
    # erasure: a customer's payments that are not final yet
    "erasure: open payments of the customer": lambda c: (open_payments_query(PROBE_CUSTOMER), {}),
    # the lookups the ledger's functions and checks make of the partitioned tables (0022):
    # one index probe per live month, none reads the months' rows
    "ledger function: a transfer by id, across the months": lambda c: (
        text("SELECT * FROM ledger_transfers WHERE id = :id"),
        {"id": "pay_00000000007:hold"},
    ),
    "ledger function: a hold's resolution, across the months": lambda c: (
        text("SELECT kind FROM ledger_transfers WHERE pending_id = :id"),
        {"id": "pay_00000000007:hold"},
    ),
    "ledger check: an account's newest entry, across the months": lambda c: (
        text(
            "SELECT version FROM ledger_entries WHERE account_id = :a ORDER BY version DESC LIMIT 1"
        ),
        {"a": "acc_a_7"},
    ),
    "ledger check: an entry's predecessor, across the months": lambda c: (
        text("SELECT * FROM ledger_entries WHERE account_id = :a AND version = :v"),
        {"a": "acc_a_7", "v": 3},
    ),
    # 0032: the same lookups with their month named (the id table's created_at, the
    # statement's months): one month's partition each
    "ledger function: a transfer's month from the id table": lambda c: (
        text("SELECT created_at FROM ledger_transfer_ids WHERE id = :id"),
        {"id": "pay_00000000007:hold"},
    ),
    "ledger function: a transfer by id in its month": lambda c: (
        text("SELECT * FROM ledger_transfers WHERE id = :id AND created_at = :at"),
        {"id": "pay_00000000007:hold", "at": _transfer_at(c, "pay_00000000007:hold")},
    ),
    "ledger function: a hold's resolution from the id table": lambda c: (
        text("SELECT id, created_at FROM ledger_transfer_ids WHERE pending_id = :id"),
        {"id": "pay_00000000007:hold"},
    ),
    "ledger check: an entry at a version, this month": lambda c: (
        text(
            "SELECT * FROM ledger_entries WHERE account_id = :a AND version = :v"
            " AND created_at >= :since AND created_at < :until"
        ),
        {"a": "acc_a_7", "v": 3, "since": THIS_MONTH, "until": NEXT_MONTH},
    ),
    "ledger check: a version taken twice, from last month on": lambda c: (
        text(
            "SELECT count(*) FROM ledger_entries WHERE account_id = :a AND version = :v"
            " AND created_at >= :since"
        ),
        {"a": "acc_a_7", "v": 3, "since": recent_months_start(NOW)},
    ),
    # archives (migration 0022): where the full audit verification starts
    "audit verify --full: the archive's anchor": lambda c: (ARCHIVE_ANCHOR, {}),
    # retention: one batch of the purge, oldest first (most of the seed has expired)
    "purge: a batch of expired idempotency records": lambda c: (
        expired_keys_query(NOW - timedelta(days=1), PURGE_BATCH),
        {},
    ),
    "purge: a batch of expired events": lambda c: (
        expired_events_query(NOW - timedelta(days=30), PURGE_BATCH),
        {},
    ),
    "purge: a batch of closed payments past their details' retention": lambda c: (
        due_payment_details_query(NOW - timedelta(days=5 * 365), PURGE_BATCH),
        {},
    ),
    "purge: the deliveries of a batch of events": lambda c: (
        deliveries_of_statement([f"evt_{i:011d}_01" for i in range(1, PURGE_BATCH + 1)]),
        {},
    ),
}


@pytest.mark.parametrize("name", list(PROBES))
def test_query_reads_what_it_returns_not_history(
    name: str, seeded: Callable[[], Connection]
) -> None:
    with seeded() as conn, conn.begin() as transaction:
        for strategy in WHOLE_TABLE_STRATEGIES:
            conn.execute(text(f"SET LOCAL {strategy} = off"))
        statement, params = PROBES[name](conn)
        plan = explain(conn, statement, params)
        transaction.rollback()  # EXPLAIN ANALYZE ran the writes too
    offending = history_scans(plan, ROW_BUDGET)
    assert not offending, f"{name} reads history:\n  " + "\n  ".join(map(str, offending))


def _months_planned(plan: dict[str, Any]) -> set[str]:
    """The monthly partitions a plan reads."""
    found = {plan["Relation Name"]} if "Relation Name" in plan else set()
    for child in plan.get("Plans", []):
        found |= _months_planned(child)
    return {relation for relation in found if table_of(relation) != relation}


# the reads that name their months (0032): at most the window's months, never every month
WINDOWED = (
    "GET account entries: the recent months",
    "GET events (the retention window)",
    "GET events: cursor (the retention window)",
    "GET events?type= (absent, the retention window)",
    "ledger function: a transfer by id in its month",
    "ledger check: an entry at a version, this month",
)


@pytest.mark.parametrize("name", WINDOWED)
def test_a_windowed_read_plans_only_its_months(name: str, seeded: Callable[[], Connection]) -> None:
    with seeded() as conn, conn.begin() as transaction:
        statement, params = PROBES[name](conn)
        plan = explain(conn, statement, params)
        transaction.rollback()
    # a 30-day window (or last month on) spans at most three months; the seed has eight
    assert len(_months_planned(plan)) <= 3, sorted(_months_planned(plan))


def test_the_month_count_sees_a_read_over_every_month(
    seeded: Callable[[], Connection],
) -> None:
    with seeded() as conn, conn.begin() as transaction:
        plan = explain(conn, events_page_query("ten_a", limit=10, type="payment.canceled"))
        transaction.rollback()
    assert len(_months_planned(plan)) > 3


def test_the_check_sees_a_seq_scan(seeded: Callable[[], Connection]) -> None:
    """A sequential scan of a growing table fails the check."""
    with seeded() as conn, conn.begin() as transaction:
        plan = explain(conn, text("SELECT count(*) FROM payments WHERE amount > 0"))
        transaction.rollback()
    assert [scan.node for scan in history_scans(plan, ROW_BUDGET)] == ["Seq Scan"]


def test_the_check_sees_an_index_scan_that_filters_history(
    seeded: Callable[[], Connection],
) -> None:
    """The seed is big enough that an index serving only part of a query (here the tenant's
    newest-first order, not the amount) reads past the budget and fails the check."""
    with seeded() as conn, conn.begin() as transaction:
        for strategy in WHOLE_TABLE_STRATEGIES:
            conn.execute(text(f"SET LOCAL {strategy} = off"))
        plan = explain(
            conn,
            payments_page_query("ten_a", limit=10).where(text("amount = 7")),
        )
        transaction.rollback()
    offending = history_scans(plan, ROW_BUDGET)
    assert [scan.table for scan in offending] == ["payments"]
    assert offending[0].node != "Seq Scan"
    assert offending[0].rows_read > 10 * ROW_BUDGET
