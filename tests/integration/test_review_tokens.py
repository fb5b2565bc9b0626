"""A four-eyes review sent straight to Temporal, around the API, decides nothing (#16).

Whoever can reach Temporal can send the `review` update with any reviewer name. The workflow
accepts a review only with a token the API (or the CLI) minted for the authenticated
principal; a refused one is audited and leaves the money held."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import select

from kernel.db import dispose_engines, get_engine
from kernel.tables import audit_log
from ops.devstack import Stack, binary
from tests.integration.helpers import (
    TERMINAL,
    Tenant,
    balances,
    funded_account,
    pay,
    payment_body,
    wait_for_status,
)


async def temporal_cli_review(stack: Stack, payment_id: str, review: dict[str, str]) -> str:
    """`temporal workflow update execute` with plaintext JSON, as anyone with Temporal access
    could send it; returns what the CLI printed."""
    process = await asyncio.create_subprocess_exec(
        binary("temporal"),
        "workflow",
        "update",
        "execute",
        "--address",
        stack.settings.temporal.address,
        "--namespace",
        stack.settings.temporal.namespace,
        "--workflow-id",
        payment_id,
        "--name",
        "review",
        "--input",
        json.dumps(review),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode != 0, out
    return out.decode(errors="replace")


async def refused_reviews(stack: Stack, payment_id: str) -> list[tuple[str, dict[str, str]]]:
    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(audit_log.c.actor, audit_log.c.detail).where(
                    audit_log.c.subject == payment_id, audit_log.c.action == "review.refused"
                )
            )
        ).all()
    await dispose_engines()
    return [(row.actor, row.detail) for row in rows]


async def test_a_review_sent_straight_to_temporal_is_refused_and_the_api_still_decides(
    tenant: Tenant, stack: Stack
) -> None:
    account = await funded_account(tenant, 5_000)
    payment = await pay(
        tenant.partner, payment_body(account["id"], 900, name="Banco Nacional de Cuba")
    )
    await wait_for_status(tenant.partner, payment["id"], {"in_review"})

    printed = await temporal_cli_review(
        stack, payment["id"], {"decision": "approve", "reviewer": "mallory"}
    )
    # the reason travels encrypted (failure messages go through the payload codec): the CLI
    # sees the failure's type; the audit record below carries the reason
    assert "review_token_invalid" in printed
    # a token lifted from elsewhere does not help either: it is bound to its claims
    await temporal_cli_review(
        stack,
        payment["id"],
        {
            "decision": "approve",
            "reviewer": "mallory",
            "reviewer_id": f"{tenant.tenant_id}:ops-olga",
            "token": "rv1.9999999999." + "0" * 64,
        },
    )

    held = (await tenant.partner.get(f"/v1/payments/{payment['id']}")).json()
    assert held["status"] == "in_review"
    # the money stays held: reserved, not spent, not released
    assert (await balances(tenant.partner, account["id"]))["available"] == 5_000 - 900
    refused = await refused_reviews(stack, payment["id"])
    assert [actor for actor, _ in refused] == ["mallory", "mallory"]
    assert refused[0][1]["reason"].startswith("no review token")
    assert refused[1][1]["reason"].startswith("review token does not match")

    # the door that authenticates: a second ops principal approves (a false positive)
    approved = await tenant.ops.post(
        f"/v1/payments/{payment['id']}/review", json={"decision": "approve", "note": "not them"}
    )
    assert approved.status_code == 200, approved.text
    final = await wait_for_status(tenant.partner, payment["id"], TERMINAL)
    assert final["status"] == "settled"
