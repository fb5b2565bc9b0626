"""The `payments` CLI against the stack's database, and the health endpoints."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg

from ops.devstack import Stack, settings_env
from tests.integration.helpers import (
    Tenant,
    decision_and_effect,
    funded_account,
    pay,
    payment_body,
    wait_for_status,
)


def test_keys_create_prints_a_working_key_last(stack: Stack) -> None:
    cli = Path(sys.executable).parent / "payments"
    done = subprocess.run(
        [
            str(cli),
            "keys",
            "create",
            "--tenant",
            "ten_cli",
            "--name",
            "cli-carol",
            "--scopes",
            "payments:read,payments:write",
        ],
        env=settings_env(stack.settings),
        capture_output=True,
        text=True,
        check=True,
    )
    key = done.stdout.strip().splitlines()[-1]
    assert key.startswith("psk_")
    response = httpx.get(
        f"{stack.settings.api.url}/v1/payments", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200
    assert response.json() == {"object": "list", "data": [], "has_more": False}
    audited = subprocess.run(
        [str(cli), "audit", "verify"],
        env=settings_env(stack.settings),
        capture_output=True,
        text=True,
        check=True,
    )
    assert audited.returncode == 0
    with psycopg.connect(
        f"postgresql://postgres@127.0.0.1:{stack.settings.database.embedded_port}/payments"
    ) as conn:
        row = conn.execute(
            "SELECT detail FROM audit_log WHERE action = 'api_key.created' AND subject = %s",
            (key.rsplit("_", 1)[0],),
        ).fetchone()
    assert row is not None and row[0]["principal"] == "cli-carol"


def test_keys_create_refuses_unknown_scopes(stack: Stack) -> None:
    cli = Path(sys.executable).parent / "payments"
    done = subprocess.run(
        [str(cli), "keys", "create", "--tenant", "ten_cli", "--name", "x", "--scopes", "root"],
        env=settings_env(stack.settings),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "scopes must be" in done.stderr


def test_health_and_readiness(stack: Stack) -> None:
    assert httpx.get(f"{stack.settings.api.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{stack.settings.api.url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "temporal": "ok"}}
    spec = httpx.get(f"{stack.settings.api.url}/openapi.json").json()
    assert {
        "/v1/payments",
        "/v1/payments/{payment_id}/review",
        "/v1/customers",
        "/v1/accounts/{account_id}",
        "/v1/deposits",
    } <= set(spec["paths"])


def test_ledger_verify_reports_ok_after_real_traffic(stack: Stack) -> None:
    cli = Path(sys.executable).parent / "payments"
    done = subprocess.run(
        [str(cli), "ledger", "verify"],
        env=settings_env(stack.settings),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("OK: ledger verified")


def test_worker_serves_prometheus_metrics(stack: Stack) -> None:
    url = f"http://127.0.0.1:{stack.settings.worker.metrics_port}/metrics"
    body = httpx.get(url, timeout=5).text
    assert "temporal_" in body  # the SDK's own series (pollers, task latencies, ...)


async def test_metrics_carry_business_and_request_series(tenant: Tenant, stack: Stack) -> None:
    account = await funded_account(tenant, 1_000)
    payment = await pay(tenant.partner, payment_body(account["id"], 10))
    await wait_for_status(tenant.partner, payment["id"], {"settled"})
    worker = httpx.get(f"http://127.0.0.1:{stack.settings.worker.metrics_port}/metrics").text
    assert "payments_status_transitions" in worker
    assert 'status="settled"' in worker and 'rail="sepa"' in worker
    assert "payments_ledger_transfers" in worker and 'step="post"' in worker
    assert "temporal_activity_execution_latency" in worker  # step latencies, per activity
    api = httpx.get(f"{stack.settings.api.internal_url}/metrics").text
    assert 'api_requests_total{method="POST",route="/v1/payments",status="202"}' in api
    assert 'route="/v1/payments/{payment_id}"' in api  # templates, never raw ids
    assert payment["id"] not in api
    assert "api_request_duration_seconds_bucket" in api


async def test_ops_cli_finds_shows_and_reviews_a_payment(tenant: Tenant, stack: Stack) -> None:
    account = await funded_account(tenant, 1_000)
    payment = await pay(
        tenant.partner, payment_body(account["id"], 10, name="Banco Nacional de Cuba")
    )
    await wait_for_status(tenant.partner, payment["id"], {"in_review"})
    cli = str(Path(sys.executable).parent / "payments")
    env = settings_env(stack.settings)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([cli, *args], env=env, capture_output=True, text=True)

    listed = run("list", "--status", "in_review")
    assert payment["id"] in listed.stdout, listed.stderr
    shown = run("show", payment["id"])
    assert "scheduled screen_parties" in shown.stdout, shown.stderr
    assert "in_review" in shown.stdout
    own = run("review", payment["id"], "--decision", "approve", "--reviewer", "partner-app")
    assert own.returncode != 0 and "four_eyes" in (own.stderr + own.stdout).lower().replace(
        "-", "_"
    )
    approved = run("review", payment["id"], "--decision", "approve", "--reviewer", "olga")
    assert approved.returncode == 0, approved.stderr
    assert "is now processing" in approved.stdout
    # audited with the transition it caused, not by the CLI after the fact
    record, change = await decision_and_effect(stack, payment["id"], "payment.review.approve")
    assert (record.actor, change.status) == ("olga", "processing")
    final = await wait_for_status(tenant.partner, payment["id"], {"settled"})
    assert final["status"] == "settled"


async def test_activity_log_lines_carry_tenant_payment_workflow_and_activity_ids(
    tenant: Tenant, stack: Stack
) -> None:
    import json as jsonlib

    account = await funded_account(tenant, 1_000)
    payment = await pay(tenant.partner, payment_body(account["id"], 10))
    await wait_for_status(tenant.partner, payment["id"], {"settled"})
    lines = []
    for _ in range(50):
        text = (stack.log_dir / "worker.log").read_text(errors="replace")
        lines = [
            jsonlib.loads(line)
            for line in text.splitlines()
            if payment["id"] in line and "payment status recorded" in line
        ]
        if len(lines) >= 2:
            break
        await asyncio.sleep(0.1)
    assert lines, "no status log lines for the payment"
    line = lines[-1]
    assert line["payment_id"] == line["workflow_id"] == payment["id"]
    assert line["tenant_id"] == tenant.tenant_id
    assert line["activity_type"] == "record_payment_status"
    assert line["activity_id"]
