"""Temporal stores only ciphertext: no name, IBAN or account number in a raw history."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from ops.devstack import Stack
from tests.integration.helpers import (
    TERMINAL,
    Tenant,
    funded_account,
    pay,
    payment_body,
    wait_for_status,
)

IBAN = "GB33BUKB20201555555555"


async def test_raw_history_has_no_plaintext_and_the_codec_server_decodes_it(
    tenant: Tenant, stack: Stack
) -> None:
    creditor = f"Zebulon Quixote {uuid.uuid4().hex[:6]}"
    account = await funded_account(tenant, 5_000)
    payment = await pay(
        tenant.partner,
        {
            **payment_body(account["id"], 100),
            "creditor": {"name": creditor, "country": "GB", "iban": IBAN},
        },
    )
    await wait_for_status(tenant.partner, payment["id"], TERMINAL)
    shown = subprocess.run(
        [
            str(Path(sys.executable).parent / "temporal"),
            "workflow",
            "show",
            "--address",
            stack.settings.temporal.address,
            "-w",
            payment["id"],
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert payment["id"] in shown  # it is the right history
    for secret in (creditor, IBAN, "Ada Lovelace", "Invoice 42"):
        assert secret not in shown, secret
    history = json.loads(shown)
    started = history["events"][0]["workflowExecutionStartedEventAttributes"]
    request = json.dumps({"payloads": started["input"]["payloads"]})
    url = f"{stack.settings.api.url}/codec/decode"
    async with httpx.AsyncClient() as client:
        anonymous = await client.post(
            url, content=request, headers={"Content-Type": "application/json"}
        )
        partner = await tenant.partner.post(
            url, content=request, headers={"Content-Type": "application/json"}
        )
        ops = await tenant.ops.post(
            url, content=request, headers={"Content-Type": "application/json"}
        )
        preflight = await client.options(
            url,
            headers={
                "Origin": stack.settings.codec.ui_origin,
                "Access-Control-Request-Method": "POST",
            },
        )
    assert anonymous.status_code == 401
    assert partner.status_code == 403
    assert ops.status_code == 200, ops.text
    decoded = ops.json()["payloads"][0]
    plain = base64.b64decode(decoded["data"]).decode()
    assert creditor in plain and IBAN in plain
    assert preflight.headers["access-control-allow-origin"] == stack.settings.codec.ui_origin
