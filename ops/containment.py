"""`payments` commands that contain a breach (docs/runbooks/breach-*.md): rotate or revoke
API keys by key, principal or tenant; rotate, end and disable webhook secrets and
endpoints; generate secrets; re-wrap data keys under a new payload master key and check
what still needs the old one.

Each prints one line per thing it changed (never a secret, except the new one it made and
must hand over) and exits 1 when there was nothing to act on.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import secrets
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from kernel.db import dispose_engines, get_engine
from kernel.settings import get_settings

ACTOR = "ops-cli"
# `payload-keys check --wait`: how often the check looks again
CHECK_INTERVAL_SECONDS = 2.0
# ... and how long "nothing needs it" must keep holding before `--wait` believes it: Temporal
# lists workflows from its visibility store, which trails the start of a run. A run a Schedule
# started from its old input just before the re-wrap (under the old key) may not be listed
# yet at the first look, and was not in a drill (it was, open, at the next check).
SETTLE_SECONDS = 6.0


def add_key_commands(key_commands: Any) -> None:
    """`payments keys rotate|revoke` (revoke by key, principal or tenant)."""
    rotate = key_commands.add_parser(
        "rotate",
        help="a new key with the old one's principal, scopes and rate limit; prints it as the"
        " last line. The old key stays valid until `payments keys revoke` (the overlap)",
    )
    rotate.add_argument("key_id")
    rotate.add_argument("--operator", default=ACTOR, help="who asks (audited)")
    revoke = key_commands.add_parser(
        "revoke",
        help="revoke at once: one key, every key of a principal (--tenant and --principal:"
        " disables the principal), or every key of a tenant (--tenant alone)",
    )
    revoke.add_argument("key_id", nargs="?")
    revoke.add_argument("--tenant", help="every key of this tenant")
    revoke.add_argument("--principal", help="with --tenant: every key of this principal")
    revoke.add_argument("--reason", default=None, help="a reference (incident id); audited")
    revoke.add_argument("--operator", default=ACTOR, help="who asks (audited)")


def add_commands(commands: Any) -> None:
    """`payments webhooks …`, `payments payload-keys …` and `payments secrets generate`."""
    hooks = commands.add_parser("webhooks", help="a tenant's webhook endpoints (ops)")
    hook_commands = hooks.add_subparsers(dest="webhook_command", required=True)
    listing = hook_commands.add_parser("list", help="a tenant's endpoints (never secrets)")
    listing.add_argument("--tenant", required=True)
    for name, text in (
        (
            "rotate-secret",
            "a new secret (printed as the last line); the old one is still"
            " signed with for the overlap",
        ),
        ("end-overlap", "stop signing with the previous secret now"),
        ("disable", "stop every delivery to the endpoint"),
    ):
        command = hook_commands.add_parser(name, help=text)
        command.add_argument("endpoint_id")
        command.add_argument("--tenant", required=True)
        command.add_argument("--operator", default=ACTOR, help="who asks (audited)")
        if name == "rotate-secret":
            command.add_argument(
                "--overlap-seconds",
                type=float,
                default=None,
                help="default PAYMENTS_WEBHOOK_SECRET_ROTATION_OVERLAP_SECONDS",
            )

    payload = commands.add_parser("payload-keys", help="payload encryption master keys")
    payload_commands = payload.add_subparsers(dest="payload_command", required=True)
    generate = payload_commands.add_parser(
        "generate", help="a new master key, `<id>:<base64>`, for PAYMENTS_PAYLOAD_KEYS"
    )
    generate.add_argument("key_id")
    payload_commands.add_parser(
        "rewrap",
        help="wrap every data key, and re-encrypt every schedule's input, under the current"
        " master key (PAYMENTS_PAYLOAD_KEY_ID)",
    )
    check = payload_commands.add_parser(
        "check",
        help="what still needs a master key (data keys, schedules, open workflows); exit 1"
        " while anything does",
    )
    check.add_argument("key_id")
    check.add_argument(
        "--wait", type=float, default=0.0, help="look again until unused, at most this long (s)"
    )

    secret = commands.add_parser("secrets", help="secrets for settings")
    secret_commands = secret.add_subparsers(dest="secret_command", required=True)
    secret_commands.add_parser(
        "generate", help="a random 256-bit secret (callback, submission, review token)"
    )


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


async def _with_engine(work: Callable[[], Awaitable[int]]) -> int:
    from services.errors import ServiceError

    try:
        return await work()
    except ServiceError as err:
        return _fail(f"{err.code}: {err.detail}")
    except ValueError as err:
        return _fail(str(err))
    finally:
        await dispose_engines()


async def _keys(args: argparse.Namespace) -> int:
    from services.credentials import revoke_api_keys, rotate_api_key

    engine = get_engine(get_settings())
    if args.key_command == "rotate":
        rotated = await rotate_api_key(engine, args.key_id, actor=args.operator)
        print(f"new key {rotated.new_key_id} replaces {rotated.old_key_id} (still valid)")
        print(rotated.key)
        return 0
    if (args.key_id is None) == (args.tenant is None):
        return _fail("name one key, or --tenant (with --principal for one principal)")
    revoked = await revoke_api_keys(
        engine,
        actor=args.operator,
        key_id=args.key_id,
        tenant_id=args.tenant,
        principal=args.principal,
        reason=args.reason,
    )
    for key_id in revoked:
        print(f"revoked {key_id}")
    if not revoked:
        return _fail("no active key matched")
    return 0


async def _webhooks(args: argparse.Namespace) -> int:
    from services.credentials import (
        disable_endpoint,
        end_secret_overlap,
        list_endpoints,
        rotate_endpoint_secret,
    )

    settings = get_settings()
    engine = get_engine(settings)
    if args.webhook_command == "list":
        for row in await list_endpoints(engine, args.tenant):
            state = f"disabled {row.disabled_at:%Y-%m-%d %H:%M}" if row.disabled_at else "enabled"
            overlap = row.previous_secret_expires_at
            until = f"  previous secret until {overlap:%Y-%m-%d %H:%M:%S}" if overlap else ""
            print(f"{row.id}  {row.url}  {state}{until}")
        return 0
    where = {"tenant_id": args.tenant, "endpoint_id": args.endpoint_id, "actor": args.operator}
    if args.webhook_command == "rotate-secret":
        row = await rotate_endpoint_secret(
            engine, settings, overlap_seconds=args.overlap_seconds, **where
        )
        print(
            f"{row.id}: new secret; the previous one is signed with until "
            f"{row.previous_secret_expires_at:%Y-%m-%d %H:%M:%S%z}"
        )
        print(row.secret)
        return 0
    if args.webhook_command == "end-overlap":
        await end_secret_overlap(engine, **where)
        print(f"{args.endpoint_id}: signed with its current secret only")
        return 0
    if await disable_endpoint(engine, **where):
        print(f"{args.endpoint_id}: disabled")
        return 0
    return _fail(f"{args.endpoint_id} is disabled already")


async def _payload_keys(args: argparse.Namespace) -> int:
    from kernel.temporal_client import connect
    from services.payload_keys import rewrap, usage

    settings = get_settings()
    engine = get_engine(settings)
    client = await connect(settings, wait_seconds=10)
    if args.payload_command == "rewrap":
        report = await rewrap(engine, client, settings, actor=ACTOR)
        print(
            f"under {settings.codec.payload_key_id}: {report.data_keys} data key(s) re-wrapped,"
            f" {len(report.schedules)} schedule(s) re-encrypted {report.schedules}"
        )
        return 0
    loop = asyncio.get_running_loop()
    until = loop.time() + args.wait
    unused_since: float | None = None
    while True:
        found = await usage(engine, client, args.key_id)
        now = loop.time()
        if not found.unused:
            unused_since = None
            if now >= until:
                break
        elif args.wait <= 0 or (unused_since is not None and now - unused_since >= SETTLE_SECONDS):
            break
        elif unused_since is None:
            unused_since = now
        await asyncio.sleep(CHECK_INTERVAL_SECONDS)
    if found.unused:
        print(f"{args.key_id}: nothing needs it any more; remove it from PAYMENTS_PAYLOAD_KEYS")
        return 0
    print(
        f"{args.key_id} is still needed: {found.data_keys} data key(s),"
        f" schedules {found.schedules}, {len(found.workflows)} open workflow(s)"
        f" {found.workflows[:20]}"
    )
    return 1


def run(args: argparse.Namespace) -> int | None:
    """Run the command if it is one of this module's; None if it is not."""
    if args.command == "keys" and args.key_command in ("rotate", "revoke"):
        return asyncio.run(_with_engine(lambda: _keys(args)))
    if args.command == "webhooks":
        return asyncio.run(_with_engine(lambda: _webhooks(args)))
    if args.command == "payload-keys" and args.payload_command == "generate":
        print(f"{args.key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}")
        return 0
    if args.command == "payload-keys":
        return asyncio.run(_with_engine(lambda: _payload_keys(args)))
    if args.command == "secrets":
        print(secrets.token_urlsafe(32))
        return 0
    return None
