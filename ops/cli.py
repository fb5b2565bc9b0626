"""The `payments` command for ops: payments (find, show, retry, cancel, review), API keys,
customer erasure, ledger and audit verification, retention purge, database migrations, and
payment batch files sent through the API (`payments batches submit FILE`)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from kernel.api_keys import (
    SCOPES,
    KeyInfo,
    create_key,
    ensure_tenant,
    list_keys,
    revoke_key,
)
from kernel.db import dispose_engines, get_engine
from kernel.environment import Uses, require_safe_secrets
from kernel.settings import describe, get_settings
from kernel.temporal_client import exit_without_finalizing


async def _create_key(tenant: str, name: str, scopes: list[str], rate: int | None) -> str:
    from services.unit_of_work import UnitOfWork

    try:
        async with UnitOfWork(get_engine(get_settings())) as uow:
            await ensure_tenant(uow.conn, tenant)
            key = await create_key(
                uow.conn,
                tenant_id=tenant,
                principal=name,
                scopes=scopes,
                rate_limit_per_second=rate,
            )
            # who may move money is a decision the auditor reads: the key's prefix, never
            # secret; it commits with the key
            uow.audit(
                actor="ops-cli",
                action="api_key.created",
                subject=key.rsplit("_", 1)[0],
                detail={
                    "principal": name,
                    "scopes": sorted(scopes),
                    "rate_limit_per_second": rate,
                },
                tenant_id=tenant,
            )
        return key
    finally:
        await dispose_engines()


async def _list_keys(tenant: str) -> list[KeyInfo]:
    try:
        async with get_engine(get_settings()).connect() as conn:
            return await list_keys(conn, tenant)
    finally:
        await dispose_engines()


async def _revoke_key(key_id: str) -> bool:
    from services.unit_of_work import UnitOfWork

    try:
        async with UnitOfWork(get_engine(get_settings())) as uow:
            revoked = await revoke_key(uow.conn, key_id)
            if revoked:  # audited with the revocation, like the creation
                uow.audit(actor="ops-cli", action="api_key.revoked", subject=key_id)
        return revoked
    finally:
        await dispose_engines()


async def _ops(args: argparse.Namespace) -> int:
    from services import payment_actions as ops
    from services.errors import ServiceError

    settings = get_settings()
    if args.command == "list":
        rows = await ops.list_payments(
            settings, status=args.status, older_than_minutes=args.older_than, limit=args.limit
        )
        for row in rows:
            print(ops.format_row(row))
        print(f"{len(rows)} payment(s)")
        return 0
    if args.command == "show":
        found = await ops.timeline(settings, args.payment_id)
        if found is None:
            print(f"error: no payment {args.payment_id}", file=sys.stderr)
            return 1
        print(ops.format_row(found.payment))
        if found.payment.failure_code:
            print(f"failure: {found.payment.failure_code}: {found.payment.failure_message}")
        for change in found.history:
            print(f"  {change.at:%Y-%m-%d %H:%M:%S.%f}  {change.status}")
        print("workflow:")
        for step in found.activities:
            print(f"  {step}")
        return 0
    try:
        if args.command == "retry":
            await ops.signal_retry(settings, args.payment_id, args.operator)
        elif args.command == "cancel":
            await ops.signal_cancel(settings, args.payment_id, args.operator, args.reason)
        else:
            status = await ops.review(
                settings, args.payment_id, args.decision, args.reviewer, args.note
            )
            print(f"{args.payment_id} is now {status}")
            return 0
    except ServiceError as err:
        print(f"error: {err.code}: {err.detail}", file=sys.stderr)
        return 1
    print(f"sent {args.command} to {args.payment_id}")
    return 0


async def _reconcile(statement_date: str, rails: list[str]) -> int:
    from services import payment_actions as ops

    lines = await ops.reconcile(get_settings(), statement_date, rails)
    await dispose_engines()
    print("\n".join(lines))
    return 1 if any(line.startswith("  ") for line in lines) else 0


async def _verify(kind: str, full: bool) -> int:
    from services.verification import verify_audit_trail, verify_books

    run = verify_books if kind == "ledger" else verify_audit_trail
    try:
        outcome = await run(get_engine(get_settings()), full=full, actor="ops-cli")
    finally:
        await dispose_engines()
    what = "ledger" if kind == "ledger" else "audit trail"
    if outcome.ok:
        sound = "every currency sums to zero" if kind == "ledger" else "hash chain intact"
        print(
            f"OK: {what} verified, {outcome.mode} ({outcome.checked}); {sound}; "
            f"checkpoint {outcome.checkpoint_id}"
        )
        return 0
    print(f"FAIL: {outcome.problems[0]}")
    for problem in outcome.problems[1:]:
        print(f"also: {problem}")
    print(f"checked {outcome.mode}: {outcome.checked}")
    return 1


async def _purge() -> int:
    from services.retention import purge_expired

    settings = get_settings()
    try:
        report = await purge_expired(get_engine(settings), settings)
    finally:
        await dispose_engines()
    counts = ", ".join(f"{n} {table}" for table, n in report.as_dict().items())
    print(f"purged {counts}")
    return 0


async def _erase(customer_id: str, operator: str, reason: str | None) -> int:
    from kernel.temporal_client import connect
    from services.erasure import erase_customer
    from services.errors import ServiceError

    settings = get_settings()
    try:
        temporal = await connect(settings, wait_seconds=10)
        report = await erase_customer(
            get_engine(settings),
            temporal,
            settings,
            customer_id=customer_id,
            actor=operator,
            reason=reason,
        )
    except ServiceError as err:
        print(f"error: {err.code}: {err.detail}", file=sys.stderr)
        return 1
    finally:
        await dispose_engines()
    hold = (
        f"legal hold until {report.legal_hold_until:%Y-%m-%d}"
        if report.legal_hold_until
        else "no legal hold"
    )
    what = "was already erased" if report.already else "erased"
    print(
        f"{customer_id} {what} at {report.erased_at:%Y-%m-%d %H:%M:%S}: {report.payments} "
        f"payment(s), {report.keys_shredded} data key(s) shredded, {hold}"
    )
    return 0


async def _read_hold(customer_id: str, operator: str, purpose: str) -> int:
    import json

    from services.erasure import read_legal_hold
    from services.errors import ServiceError

    settings = get_settings()
    try:
        record = await read_legal_hold(
            get_engine(settings),
            settings,
            customer_id=customer_id,
            actor=operator,
            purpose=purpose,
        )
    except ServiceError as err:
        print(f"error: {err.code}: {err.detail}", file=sys.stderr)
        return 1
    finally:
        await dispose_engines()
    print(json.dumps(record, indent=2, sort_keys=True))
    return 0


# the commands that talk to Temporal, and so encrypt or decrypt its payloads
TEMPORAL_COMMANDS = frozenset({"show", "retry", "cancel", "review", "reconcile", "customers"})


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `payments` console script."""
    parser = argparse.ArgumentParser(prog="payments", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    keys = commands.add_parser("keys", help="API keys")
    key_commands = keys.add_subparsers(dest="key_command", required=True)
    create = key_commands.add_parser("create", help="create a key; prints it as the last line")
    create.add_argument("--tenant", required=True)
    create.add_argument("--name", required=True, help="the principal using the key")
    create.add_argument("--scopes", required=True, help=f"comma-separated: {sorted(SCOPES)}")
    create.add_argument("--rate-limit", type=int, default=None, help="requests per second")
    listing = key_commands.add_parser("list", help="a tenant's keys (never their secrets)")
    listing.add_argument("--tenant", required=True)
    revoke = key_commands.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id")

    db = commands.add_parser("db", help="database")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply migrations")

    ledger = commands.add_parser("ledger", help="the ledger")
    ledger_commands = ledger.add_subparsers(dest="ledger_command", required=True)
    ledger_verify = ledger_commands.add_parser(
        "verify",
        help="check the entries written since the last checkpoint (--full: every balance"
        " from all entries); write a checkpoint when sound, exit 1 on any discrepancy",
    )
    ledger_verify.add_argument(
        "--full", action="store_true", help="recompute the whole ledger, not just what is new"
    )

    listing_p = commands.add_parser("list", help="payments, newest first (find stuck ones)")
    listing_p.add_argument("--status", help="e.g. action_required, in_review")
    listing_p.add_argument("--older-than", type=float, help="minutes since the last change")
    listing_p.add_argument("--limit", type=int, default=50)
    show = commands.add_parser("show", help="a payment's timeline: statuses and workflow steps")
    show.add_argument("payment_id")
    retry = commands.add_parser("retry", help="retry the rail for a payment in action_required")
    retry.add_argument("payment_id")
    retry.add_argument("--operator", default="ops-cli", help="who asks (audited)")
    cancel = commands.add_parser("cancel", help="cancel a payment before submission")
    cancel.add_argument("payment_id")
    cancel.add_argument("--operator", required=True)
    cancel.add_argument("--reason", default="")
    review = commands.add_parser("review", help="decide a payment in review (four-eyes)")
    review.add_argument("payment_id")
    review.add_argument("--decision", choices=["approve", "reject"], required=True)
    review.add_argument("--reviewer", required=True)
    review.add_argument("--note", default="")

    audit_p = commands.add_parser("audit", help="the audit trail")
    audit_commands = audit_p.add_subparsers(dest="audit_command", required=True)
    audit_verify = audit_commands.add_parser(
        "verify",
        help="recompute the hash chain after the last checkpoint (--full: from its start);"
        " write a checkpoint when intact, exit 1 on any break",
    )
    audit_verify.add_argument(
        "--full", action="store_true", help="recompute the whole chain, not just what is new"
    )

    commands.add_parser(
        "purge",
        help="delete idempotency records, events and webhook deliveries past their retention;"
        " erase closed payments' details past theirs; shred ended legal holds",
    )

    customers_p = commands.add_parser("customers", help="customers")
    customer_commands = customers_p.add_subparsers(dest="customer_command", required=True)
    erase = customer_commands.add_parser(
        "erase",
        help="erase a customer's personal data (refused while it has open payments or a"
        " balance); what AML law requires is kept sealed until its legal hold ends",
    )
    erase.add_argument("customer_id")
    erase.add_argument("--operator", default="ops-cli", help="who asks (audited)")
    erase.add_argument(
        "--reason", default=None, help="a reference (ticket id), never personal data"
    )
    hold = customer_commands.add_parser(
        "hold",
        help="print an erased customer's legal hold (AML records) for compliance; audited",
    )
    hold.add_argument("customer_id")
    hold.add_argument("--operator", required=True, help="who reads it (audited)")
    hold.add_argument("--purpose", required=True, help="why: a case or request reference")

    recon = commands.add_parser(
        "reconcile", help="reconcile a day's bank statements with the ledger; exit 1 on any gap"
    )
    recon.add_argument("--date", required=True, help="statement date, YYYY-MM-DD")
    recon.add_argument("--rail", action="append", choices=["sepa", "ach"], help="default: both")

    commands.add_parser(
        "settings", help="every setting: its environment variable, section path and value"
    )

    batches_p = commands.add_parser("batches", help="payment batches through the API")
    batch_commands = batches_p.add_subparsers(dest="batch_command", required=True)
    submit = batch_commands.add_parser(
        "submit",
        help="send a batch file (.json, .csv or pain.001 .xml) and show its progress until"
        " every item has finished",
    )
    submit.add_argument("file")
    submit.add_argument(
        "--api-key",
        default=os.environ.get("API_KEY", ""),
        help="a key with payments:write (default: $API_KEY)",
    )
    submit.add_argument("--api-url", default=None, help="default: the configured API URL")
    submit.add_argument(
        "--idempotency-key", default=None, help="default: a digest of the file (resend = replay)"
    )
    submit.add_argument(
        "--skip-invalid", action="store_true", help="accept the valid items, list the others"
    )
    submit.add_argument("--no-follow", action="store_true", help="return once it is accepted")

    commands.add_parser("dev", help="run the whole platform locally (what `make dev` runs)")

    args = parser.parse_args(argv)
    if args.command in TEMPORAL_COMMANDS:
        uses = (Uses.TEMPORAL, Uses.REVIEWS) if args.command == "review" else (Uses.TEMPORAL,)
        require_safe_secrets(get_settings(), "payments", uses)
    if args.command == "keys" and args.key_command == "list":
        for info in asyncio.run(_list_keys(args.tenant)):
            state = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "active"
            print(
                f"{info.id}  psk_{info.prefix}_…  {info.principal:<20} "
                f"{','.join(info.scopes):<40} {state}"
            )
        return 0
    if args.command == "keys" and args.key_command == "revoke":
        if asyncio.run(_revoke_key(args.key_id)):
            print(f"revoked {args.key_id}")
            return 0
        print(f"error: no active key {args.key_id}", file=sys.stderr)
        return 1
    if args.command == "keys":
        scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
        try:
            key = asyncio.run(_create_key(args.tenant, args.name, scopes, args.rate_limit))
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"created key for {args.name} in tenant {args.tenant} with scopes {scopes}")
        print(key)
        return 0
    if args.command in ("list", "show", "retry", "cancel", "review"):
        exit_without_finalizing(asyncio.run(_ops(args)))
    if args.command == "reconcile":
        exit_without_finalizing(asyncio.run(_reconcile(args.date, args.rail or ["sepa", "ach"])))
    if args.command in ("audit", "ledger"):
        return asyncio.run(_verify(args.command, args.full))
    if args.command == "purge":
        return asyncio.run(_purge())
    if args.command == "customers" and args.customer_command == "hold":
        return asyncio.run(_read_hold(args.customer_id, args.operator, args.purpose))
    if args.command == "customers":
        exit_without_finalizing(asyncio.run(_erase(args.customer_id, args.operator, args.reason)))
    if args.command == "batches":
        from pathlib import Path

        from ops.batch_upload import submit as submit_batch

        if not args.api_key:
            print("error: pass --api-key or set API_KEY", file=sys.stderr)
            return 2
        return submit_batch(
            Path(args.file),
            api_url=args.api_url or get_settings().api.url,
            api_key=args.api_key,
            idempotency_key=args.idempotency_key,
            skip_invalid=args.skip_invalid,
            follow=not args.no_follow,
        )
    if args.command == "settings":
        for variable, path, value in describe(get_settings()):
            print(f"{variable:<48} {path:<40} {value}")
        return 0
    if args.command == "db":
        from ops.migrate import upgrade

        upgrade()
        print("database is at the newest revision")
        return 0
    from ops.devstack import main as dev_main

    dev_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
