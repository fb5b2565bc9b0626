"""A four-eyes review sent straight to Temporal, around the API, decides nothing (#16).

Whoever can reach Temporal can send the `review` update with any reviewer name. Sent in
plaintext (the temporal CLI) it is rejected by the payload codec's refusal; sent by someone
who also holds the payload keys, the workflow accepts a review only with a token the API
(or the CLI) minted for the authenticated principal; a refused one is audited and leaves
the money held."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from sqlalchemy import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from kernel.codec import UNENCRYPTED_PAYLOAD
from kernel.db import dispose_engines, get_engine
from kernel.tables import audit_log
from kernel.temporal_client import connect
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
                select(audit_log.c.actor, audit_log.c.detail)
                .where(audit_log.c.subject == payment_id, audit_log.c.action == "review.refused")
                # in the order they were refused (rows of a partitioned table, in several
                # chains, come back in no particular order)
                .order_by(audit_log.c.at, audit_log.c.seq)
            )
        ).all()
    await dispose_engines()
    return [(row.actor, row.detail) for row in rows]


async def encrypted_review(stack: Stack, payment_id: str, review: dict[str, str]) -> str:
    """The same review sent by someone who also holds the payload keys (a Temporal client
    with the codec): it reaches the workflow, whose token check refuses it; returns the
    failure's type."""
    client = await connect(stack.settings)
    handle = client.get_workflow_handle(payment_id)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update("review", review)
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError), cause
    return str(cause.type)


async def test_a_review_sent_straight_to_temporal_is_refused_and_the_api_still_decides(
    tenant: Tenant, stack: Stack
) -> None:
    account = await funded_account(tenant, 5_000)
    payment = await pay(
        tenant.partner, payment_body(account["id"], 900, name="Banco Nacional de Cuba")
    )
    await wait_for_status(tenant.partner, payment["id"], {"in_review"})

    # plaintext JSON, as the temporal CLI sends it: refused before any handler sees it (the
    # codec expects encrypted payloads; the update is rejected, the workflow carries on)
    printed = await temporal_cli_review(
        stack, payment["id"], {"decision": "approve", "reviewer": "mallory"}
    )
    assert UNENCRYPTED_PAYLOAD in printed
    # with the payload keys but without the API's token: refused by the workflow, audited
    assert (
        await encrypted_review(stack, payment["id"], {"decision": "approve", "reviewer": "mallory"})
        == "review_token_invalid"
    )
    # a token lifted from elsewhere does not help either: it is bound to its claims
    await encrypted_review(
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


async def test_a_plaintext_start_fails_the_workflow_visibly_and_wedges_nothing(
    stack: Stack,
) -> None:
    """A workflow started around the API with plaintext input (a client without the codec,
    as the temporal CLI is) fails at once with `UnencryptedPayload`: no workflow task is
    retried forever, and the worker goes on serving."""
    plain = await Client.connect(
        stack.settings.temporal.address, namespace=stack.settings.temporal.namespace
    )
    workflow_id = f"pay_plaintext{uuid.uuid4().hex[:12]}"
    await plain.start_workflow(
        "Payment",
        {"payment_id": workflow_id},
        id=workflow_id,
        task_queue=stack.settings.temporal.task_queue,
    )
    client = await connect(stack.settings)
    with pytest.raises(WorkflowFailureError) as failed:
        await client.get_workflow_handle(workflow_id).result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == UNENCRYPTED_PAYLOAD
    # one workflow task, completed with the failure: nothing was retried
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    kinds = [event.event_type for event in history.events]
    assert kinds.count(EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED) == 0
    assert kinds[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
