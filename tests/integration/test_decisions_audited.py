"""Reviews, cancels and retries are audited in the transaction of their effect, whichever door
they came through: the API, the CLI, or a signal sent straight to Temporal (the Web UI)."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.client import Client
from temporalio.common import RawValue
from temporalio.converter import PayloadConverter

from ops.devstack import Stack
from tests.integration.helpers import (
    TERMINAL,
    Tenant,
    decision_and_effect,
    funded_account,
    pay,
    payment_body,
    wait_for_status,
)


async def in_review(t: Tenant, *, hit: bool = True) -> dict[str, Any]:
    """A payment held in review: for a screening hit, or (`hit=False`) over the low tier's
    daily amount limit, a review a cancel may end (a hit's review only the review ends)."""
    if hit:
        account = await funded_account(t, 5_000)
        body = payment_body(account["id"], 900, name="Banco Nacional de Cuba")
    else:
        account = await funded_account(t, 6_000_000)
        body = payment_body(account["id"], 5_000_001)
    payment = await pay(t.partner, body)
    await wait_for_status(t.partner, payment["id"], {"in_review"})
    return payment


async def test_an_api_review_is_audited_with_the_transition_it_causes(
    tenant: Tenant, stack: Stack
) -> None:
    payment = await in_review(tenant)
    decided = await tenant.ops.post(
        f"/v1/payments/{payment['id']}/review", json={"decision": "reject", "note": "true match"}
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "rejected"
    record, change = await decision_and_effect(stack, payment["id"], "payment.review.reject")
    assert (record.actor, record.tenant_id) == ("ops-olga", tenant.tenant_id)
    assert record.detail["note"] == "true match"
    assert record.detail["hits"][0]["entity_id"] == "306"
    assert (change.status, record.detail["status"]) == ("rejected", "rejected")


async def test_an_api_cancel_is_audited_with_the_cancellation(tenant: Tenant, stack: Stack) -> None:
    payment = await in_review(tenant, hit=False)
    canceled = await tenant.partner.post(
        f"/v1/payments/{payment['id']}/cancel", json={"reason": "duplicate order"}
    )
    assert canceled.status_code == 202, canceled.text
    assert (await wait_for_status(tenant.partner, payment["id"], TERMINAL))["status"] == "canceled"
    record, change = await decision_and_effect(stack, payment["id"], "payment.cancel")
    assert (record.actor, record.detail["reason"]) == ("partner-app", "duplicate order")
    assert change.status == "canceled"


async def test_a_cancel_signalled_straight_through_temporal_is_audited(
    tenant: Tenant, stack: Stack
) -> None:
    payment = await in_review(tenant, hit=False)
    # a client without the codec (plain JSON, as the temporal CLI sends it): the signal is
    # dropped, the codec refusing unencrypted payloads (kernel/codec.py)
    client = await Client.connect(
        stack.settings.temporal.address, namespace=stack.settings.temporal.namespace
    )
    handle = client.get_workflow_handle(payment["id"])
    await handle.signal("cancel", {"requested_by": "mallory", "reason": "plaintext"})
    # as the Web UI sends it: the arguments encrypted by the codec server (its /codec/encode,
    # with the ops user's credentials), no API in between
    plain = PayloadConverter.default.to_payloads(
        [{"requested_by": "ops-ulrich", "reason": "asked by phone"}]
    )
    encoded = await tenant.ops.post(
        "/codec/encode",
        content=json_format.MessageToJson(Payloads(payloads=plain)),
        headers={"Content-Type": "application/json"},
    )
    assert encoded.status_code == 200, encoded.text
    [sealed] = json_format.Parse(encoded.text, Payloads()).payloads
    await handle.signal("cancel", RawValue(sealed))
    final = await wait_for_status(tenant.partner, payment["id"], TERMINAL)
    assert final["status"] == "canceled"
    record, change = await decision_and_effect(stack, payment["id"], "payment.cancel")
    assert (record.actor, record.detail["reason"]) == ("ops-ulrich", "asked by phone")
    assert change.status == "canceled"
