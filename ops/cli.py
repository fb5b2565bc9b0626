"""The `payments` command for ops: payments (find, show, retry, cancel, review), API keys,
customer erasure, ledger and audit verification, retention purge, archives of old months,
database migrations, backups and point-in-time restore, the heal that follows a restore, and
breach containment (key rotation and revocation, webhook secrets, payload master keys), and
payment batch files sent through the API (`payments batches submit FILE`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kernel.api_keys import (
    SCOPES,
    KeyInfo,
    create_key,
    ensure_tenant,
    list_keys,
)
from kernel.db import dispose_engines, get_engine
from kernel.environment import Uses, require_safe_secrets
from kernel.settings import describe, get_settings
from kernel.temporal_client import exit_without_finalizing
from ops import containment

if TYPE_CHECKING:
    from ops.backup import Backups


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
    return _verdict(kind, outcome.mode, outcome.checked, outcome.problems, outcome.checkpoint_id)


def _verdict(
    kind: str, mode: str, checked: str, problems: list[str], checkpoint_id: int | None
) -> int:
    """Print a verification's outcome (OK, or FAIL naming the first problem); exit status."""
    what = "ledger" if kind == "ledger" else "audit trail"
    if not problems:
        sound = "every currency sums to zero" if kind == "ledger" else "hash chain intact"
        print(f"OK: {what} verified, {mode} ({checked}); {sound}; checkpoint {checkpoint_id}")
        return 0
    print(f"FAIL: {problems[0]}")
    for problem in problems[1:]:
        print(f"also: {problem}")
    print(f"checked {mode}: {checked}")
    return 1


def progress_bar(done: int, total: int, what: str, width: int = 30) -> str:
    """`[#####.....]  50% ledger: 1000/2000 rows` (a total of 0 reads as complete)."""
    share = 1.0 if total <= 0 else min(done / total, 1.0)
    filled = round(share * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {share:4.0%} {what}: {done}/{total} rows"


async def _verify_full(kind: str, chunk_size: int) -> int:
    """Start the full verification of `kind` as a workflow (or attach to the one running)
    and draw its progress until it ends."""
    from temporalio.client import WorkflowFailureError
    from temporalio.common import WorkflowIDConflictPolicy

    from kernel.temporal_client import connect
    from workflows.full_verification import FullVerificationWorkflow, full_verification_id
    from workflows.models import FullVerifyInput

    settings = get_settings()
    client = await connect(settings, wait_seconds=10)
    handle = await client.start_workflow(
        FullVerificationWorkflow.run,
        FullVerifyInput(kind=kind, chunk_size=chunk_size, actor="ops-cli"),
        id=full_verification_id(kind),
        task_queue=settings.temporal.task_queue,
        # one at a time: a second command follows the run already going
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    outcome = asyncio.ensure_future(handle.result())
    # the bar goes to stderr: stdout carries the verdict alone, as without --full
    interactive = sys.stderr.isatty()
    shown, done, total, phase = "", 0, 0, ""
    while not outcome.done():
        with contextlib.suppress(Exception):  # between runs (continue-as-new) it may not answer
            state = await handle.query(FullVerificationWorkflow.progress)
            done, total, phase = state.rows_done, state.rows_total, state.phase or "starting"
        line = progress_bar(done, total, f"{kind} {phase}")
        if line != shown:
            # a terminal redraws one line; a log gets a line per change
            print(
                f"\r{line}" if interactive else line,
                end="" if interactive else "\n",
                file=sys.stderr,
                flush=True,
            )
            shown = line
        await asyncio.wait([outcome], timeout=0.5)
    try:
        result = outcome.result()
    except WorkflowFailureError as err:
        print(f"\nerror: the full verification failed: {err.cause}", file=sys.stderr)
        return 2
    final = progress_bar(total if result.ok else done, total, f"{kind} done")
    print(f"\r{final}" if interactive else final, file=sys.stderr)
    return _verdict(kind, "full", result.checked, result.problems, result.checkpoint_id)


async def _archive(args: argparse.Namespace) -> int:
    from datetime import date
    from pathlib import Path

    from services import archive
    from services.partitions import PARTITIONED, live_partitions

    engine = get_engine(get_settings())
    try:
        if args.archive_command == "list":
            async with engine.connect() as conn:
                for table in PARTITIONED:
                    months = await live_partitions(conn, table)
                    listed = ", ".join(f"{p.month:%Y-%m} (~{p.estimated_rows})" for p in months)
                    print(f"{table:<24} {listed}")
            return 0
        directory = Path(args.dir)
        if args.archive_command == "verify":
            problems = await archive.verify_archive(engine, directory)
            for problem in problems:
                print(f"FAIL: {problem}")
            if not problems:
                print(f"OK: every archived month in {directory} matches its manifest and chains")
            return 1 if problems else 0
        year, month = (int(part) for part in args.month.split("-"))
        run = (
            archive.archive_ledger_month
            if args.archive_command == "ledger"
            else archive.archive_audit_month
        )
        try:
            result = await run(engine, date(year, month, 1), directory)
        except archive.ArchiveRefusedError as refused:
            print(f"refused: {refused}", file=sys.stderr)
            return 1
        for written in result.files:
            print(f"wrote {written.name}: {written.rows} rows, sha256 {written.sha256}")
        print(f"manifest {result.manifest}; {args.archive_command} {args.month} detached")
        return 0
    finally:
        await dispose_engines()


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


def _backups() -> Backups:
    from ops.backup import Backups
    from ops.embedded_pg import EmbeddedPostgres

    settings = get_settings()
    postgres = EmbeddedPostgres(settings.data_dir / "postgres", settings.database.embedded_port)
    return Backups(settings.data_dir / "backups", postgres)


def _utc(value: str) -> datetime:
    """An ISO 8601 time; one without a zone is UTC (argparse reports a bad one)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _record_restore(detail: dict[str, Any]) -> None:
    from kernel import audit

    try:
        await audit.append(
            get_engine(get_settings()),
            actor="ops-cli",
            action="database.restored",
            subject=detail["base_backup"],
            detail=detail,
        )
    finally:
        await dispose_engines()


def _backup(args: argparse.Namespace) -> int:
    from ops.backup import BackupError, restore_record
    from ops.devstack import free_port

    if get_settings().env != "dev":
        # it drives the local server of `make dev` and the tests; a production database is
        # backed up and restored by its platform (CloudNativePG, a managed service)
        print(
            "error: `payments backup` drives the embedded PostgreSQL of `make dev`; in"
            " production use the database platform's PITR (docs/backups.md), then"
            " `payments heal`",
            file=sys.stderr,
        )
        return 2
    backups = _backups()
    try:
        if args.backup_command == "create":
            made = backups.create()
            print(f"created {made.id} ({made.size_bytes / 1e6:.1f} MB) at {made.finished_at}")
        elif args.backup_command == "list":
            for backup in backups.list():
                print(
                    f"{backup.id}  finished {backup.finished_at}  {backup.size_bytes / 1e6:.1f} MB"
                )
            print(f"WAL archive: {backups.wal_dir}")
        elif args.backup_command == "verify":
            chosen = [b for b in backups.list() if args.id in (None, b.id)]
            if not chosen:
                print("error: no such backup", file=sys.stderr)
                return 1
            for backup in chosen:
                print(f"{backup.id}: {backups.verify(backup)}")
        else:
            restored = backups.restore(args.to, probe_port=free_port())
            detail = restore_record(restored)
            # the chain goes on from the restored head; this record names both heads
            asyncio.run(_record_restore(detail))
            print(
                f"restored {restored.backup.id} to {restored.target.isoformat()} in"
                f" {restored.seconds:.1f}s; audit head {detail['restored_head_seq']}"
                f" (lost head: {detail['lost_head_seq']}); last commit kept"
                f" {detail['last_commit_kept']}, last commit lost {detail['last_commit_lost']}"
            )
            print(f"next: payments heal --since {restored.target.isoformat()}")
    except BackupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


async def _heal(since: datetime) -> int:
    from kernel.temporal_client import connect
    from ops.heal import heal

    settings = get_settings()
    try:
        temporal = await connect(settings, wait_seconds=10)
        report = await heal(get_engine(settings), temporal, settings, since)
    finally:
        await dispose_engines()
    print("\n".join(report.lines()))
    return 0


# the commands that talk to Temporal, and so encrypt or decrypt its payloads
TEMPORAL_COMMANDS = frozenset(
    {"show", "retry", "cancel", "review", "reconcile", "customers", "heal"}
)


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
    containment.add_key_commands(key_commands)

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
        "--full",
        action="store_true",
        help="recompute the whole ledger, not just what is new: a resumable workflow that"
        " reads it in chunks (attaches to the one running), with a progress bar",
    )
    ledger_verify.add_argument(
        "--chunk-size", type=int, default=5_000, help="with --full: rows per chunk"
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
        "--full",
        action="store_true",
        help="recompute the whole chain, not just what is new: a resumable workflow that"
        " reads it in chunks (attaches to the one running), with a progress bar",
    )
    audit_verify.add_argument(
        "--chunk-size", type=int, default=5_000, help="with --full: records per chunk"
    )

    archive_p = commands.add_parser(
        "archive", help="monthly partitions: list them, archive old months, verify archives"
    )
    archive_commands = archive_p.add_subparsers(dest="archive_command", required=True)
    archive_commands.add_parser("list", help="the months still in the database, per table")
    for what, about in (
        ("ledger", "the ledger's transfers and entries"),
        ("audit", "the audit log's records"),
    ):
        archived = archive_commands.add_parser(
            what,
            help=f"write a month of {about} to compressed files with a manifest (row counts,"
            " checksums, chain anchors), then detach it from the database (oldest month first,"
            " once verified)",
        )
        archived.add_argument("--month", required=True, help="YYYY-MM")
        archived.add_argument("--dir", required=True, help="where the archive files go")
    archive_verify = archive_commands.add_parser(
        "verify",
        help="read archive files back: checksums, row counts, and the chains across them to"
        " the database's anchors; exit 1 on any difference",
    )
    archive_verify.add_argument("--dir", required=True)

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

    backup = commands.add_parser(
        "backup", help="base backups and point-in-time restore (docs/backups.md)"
    )
    backup_commands = backup.add_subparsers(dest="backup_command", required=True)
    backup_commands.add_parser("create", help="take a base backup now")
    backup_commands.add_parser("list", help="the base backups, oldest first")
    verify_backup = backup_commands.add_parser(
        "verify", help="check backups against their manifests (pg_verifybackup)"
    )
    verify_backup.add_argument("id", nargs="?", default=None, help="default: every backup")
    restore = backup_commands.add_parser(
        "restore",
        help="replace the database with its state at --to (the current data directory is"
        " kept beside it); appends a database.restored audit record; then run `payments heal`",
    )
    restore.add_argument("--to", required=True, type=_utc, help="ISO 8601 time (UTC when no zone)")
    heal_p = commands.add_parser(
        "heal",
        help="after a restore: re-drive every payment Temporal knows better than the"
        " database, or mark it action_required (ledger_out_of_sync) (docs/runbooks/restore.md)",
    )
    heal_p.add_argument("--since", required=True, type=_utc, help="the restore point (ISO 8601)")

    commands.add_parser(
        "settings", help="every setting: its environment variable, section path and value"
    )

    containment.add_commands(commands)
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
    full_verify = args.command in ("audit", "ledger") and args.full
    if args.command in TEMPORAL_COMMANDS or full_verify:
        uses: tuple[Uses, ...] = (Uses.TEMPORAL,)
        if args.command == "review":
            uses = (Uses.TEMPORAL, Uses.REVIEWS)
        elif args.command == "heal":  # it also reads the bank's statements, signed
            uses = (Uses.TEMPORAL, Uses.BANK_SUBMISSIONS)
        require_safe_secrets(get_settings(), "payments", uses)
    if args.command == "keys" and args.key_command == "list":
        for info in asyncio.run(_list_keys(args.tenant)):
            state = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "active"
            print(
                f"{info.id}  psk_{info.prefix}_…  {info.principal:<20} "
                f"{','.join(info.scopes):<40} {state}"
            )
        return 0
    if args.command == "payload-keys" and args.payload_command in ("rewrap", "check"):
        # they decrypt and encrypt Temporal's payloads; `generate` needs no secret at all
        require_safe_secrets(get_settings(), "payments", (Uses.TEMPORAL,))
        exit_without_finalizing(containment.run(args) or 0)
    contained = containment.run(args)
    if contained is not None:
        return contained
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
    if full_verify:
        if args.chunk_size < 1:
            print("error: --chunk-size must be at least 1", file=sys.stderr)
            return 2
        exit_without_finalizing(asyncio.run(_verify_full(args.command, args.chunk_size)))
    if args.command in ("audit", "ledger"):
        return asyncio.run(_verify(args.command, args.full))
    if args.command == "archive":
        return asyncio.run(_archive(args))
    if args.command == "purge":
        return asyncio.run(_purge())
    if args.command == "customers" and args.customer_command == "hold":
        return asyncio.run(_read_hold(args.customer_id, args.operator, args.purpose))
    if args.command == "customers":
        exit_without_finalizing(asyncio.run(_erase(args.customer_id, args.operator, args.reason)))
    if args.command == "backup":
        return _backup(args)
    if args.command == "heal":
        exit_without_finalizing(asyncio.run(_heal(args.since)))
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
