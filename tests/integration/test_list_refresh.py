"""Watch-list refresh through the real worker: new versions are recorded, every worker screens
with them, and customers named only on the newer list are flagged."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from temporalio.client import Client

from compliance.lists import load_ofac
from kernel.db import dispose_engines, get_engine
from kernel.tables import audit_log, events, watch_list_versions
from kernel.temporal_client import connect
from ops.devstack import SANCTIONS_2021, Stack
from tests.integration.helpers import (
    Tenant,
    create_customer,
    funded_account,
    pay,
    payment_body,
    wait_for_status,
)
from workflows.list_refresh import ListRefreshWorkflow, RescreenCustomersWorkflow
from workflows.models import ListRefreshInput, ListRefreshResult

SANCTIONS_2019 = SANCTIONS_2021.parent / "ofac-2019"
# listed in the 2021 edition (SDN 23253, MAGNIT program), absent from the 2019 one
NEWLY_LISTED = "Gennady Vyacheslavovich Karlov"


@pytest.fixture
def source() -> Iterator[Path]:
    """A list source directory the test fills with one edition, then the next."""
    parent = Path(tempfile.mkdtemp(prefix="lists-"))
    directory = parent / "ofac"
    directory.mkdir()
    yield directory
    shutil.rmtree(parent, ignore_errors=True)


def publish(edition: Path, source: Path) -> tuple[str, int]:
    """Copy an OFAC edition into the source directory; return its version and size."""
    for name in ("sdn.csv", "alt.csv", "add.csv"):
        shutil.copyfile(edition / name, source / name)
    loaded = load_ofac(source)
    return loaded.version, len(loaded.entities)


async def refresh(client: Client, stack: Stack, sanctions_source: str) -> ListRefreshResult:
    """Run one refresh (as the schedule would) and wait for the re-screening it started."""
    result = await client.execute_workflow(
        ListRefreshWorkflow.run,
        ListRefreshInput(sanctions_source=sanctions_source, rescreen_page_size=50),
        id=f"list-refresh-test-{uuid.uuid4().hex[:8]}",
        task_queue=stack.settings.temporal.task_queue,
    )
    if result.rescreen_workflow_id:
        await client.get_workflow_handle_for(
            RescreenCustomersWorkflow.run, result.rescreen_workflow_id
        ).result()
    return result


async def current_version(stack: Stack, list_name: str) -> tuple[str, str, int]:
    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(watch_list_versions)
                .where(watch_list_versions.c.list_name == list_name)
                .order_by(watch_list_versions.c.id.desc())
                .limit(1)
            )
        ).one()
    await dispose_engines()
    return row.version, row.source, row.entities


async def test_new_list_version_is_recorded_and_newly_listed_customers_are_flagged(
    tenant: Tenant, stack: Stack, source: Path
) -> None:
    client = await connect(stack.settings)
    try:
        v2019, size2019 = publish(SANCTIONS_2019, source)
        first = await refresh(client, stack, str(source))
        assert first.versions["OFAC-SDN"] == v2019
        assert "OFAC-SDN" in first.changed
        assert first.rescreen_workflow_id
        assert await current_version(stack, "OFAC-SDN") == (v2019, str(source), size2019)
        unchanged = await refresh(client, stack, str(source))
        assert (unchanged.changed, unchanged.rescreen_workflow_id) == ([], "")

        # onboarded while the 2019 edition is current: nothing to find
        karlov = await create_customer(tenant.partner, name=NEWLY_LISTED)
        ada = await create_customer(tenant.partner)
        assert karlov["kyc"]["status"] == "approved"
        assert karlov["kyc"]["list_versions"]["OFAC-SDN"] == v2019
        assert karlov["kyc"]["hits"] == []

        v2021, size2021 = publish(SANCTIONS_2021, source)
        second = await refresh(client, stack, str(source))
        assert second.changed == ["OFAC-SDN"]
        assert await current_version(stack, "OFAC-SDN") == (v2021, str(source), size2021)

        flagged = (await tenant.partner.get(f"/v1/customers/{karlov['id']}")).json()["kyc"]
        assert flagged["watchlist_flagged_at"] is not None
        assert flagged["list_versions"]["OFAC-SDN"] == v2021
        assert [(h["list"], h["entity_id"], h["list_version"]) for h in flagged["hits"]] == [
            ("OFAC-SDN", "23253", v2021)
        ]
        # a flag asks compliance to look; it does not change the KYC decision by itself
        assert flagged["status"] == "approved"
        clear = (await tenant.partner.get(f"/v1/customers/{ada['id']}")).json()["kyc"]
        assert clear["watchlist_flagged_at"] is None
        assert clear["list_versions"]["OFAC-SDN"] == v2021

        engine = get_engine(stack.settings)
        async with engine.connect() as conn:
            audited = (
                await conn.execute(
                    select(audit_log.c.action, audit_log.c.detail).where(
                        audit_log.c.subject == karlov["id"],
                        audit_log.c.action == "customer.watchlist_hit",
                    )
                )
            ).all()
            announced = (
                await conn.execute(
                    select(events.c.type, events.c.data).where(
                        events.c.tenant_id == tenant.tenant_id,
                        events.c.type == "customer.watchlist_hit",
                    )
                )
            ).all()
        await dispose_engines()
        assert len(audited) == 1
        assert audited[0].detail["list_versions"]["OFAC-SDN"] == v2021
        assert [event.data["customer_id"] for event in announced] == [karlov["id"]]
        assert announced[0].data["new_hits"][0]["entity_id"] == "23253"

        # the payment screening runs on the new edition too
        account = await funded_account(tenant, 1_000)
        payment = await pay(tenant.partner, payment_body(account["id"], 10, name=NEWLY_LISTED))
        held = await wait_for_status(tenant.partner, payment["id"], {"in_review"})
        assert {hit["list_version"] for hit in held["screening_hits"]} == {v2021}
        # a hit's review ends it (a cancel may not: the review decides)
        rejected = await tenant.ops.post(
            f"/v1/payments/{payment['id']}/review", json={"decision": "reject", "note": "listed"}
        )
        assert rejected.status_code == 200, rejected.text
    finally:
        # back to the configured edition, so later tests see the platform as configured
        await refresh(client, stack, str(stack.settings.lists.sanctions_dir))


async def test_workers_load_a_version_another_worker_recorded(
    tenant: Tenant, stack: Stack, source: Path
) -> None:
    client = await connect(stack.settings)
    v2019, size = publish(SANCTIONS_2019, source)
    # recorded as another worker's refresh would: this worker has not read the source itself
    engine = get_engine(stack.settings)
    async with engine.begin() as conn:
        await conn.execute(
            insert(watch_list_versions).values(
                list_name="OFAC-SDN",
                kind="sanctions",
                version=v2019,
                source=str(source),
                entities=size,
                refresh_id=f"elsewhere/{uuid.uuid4().hex}",
            )
        )
    await dispose_engines()
    try:
        # workers compare versions every few seconds (list_version_check_seconds)
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            customer = await create_customer(tenant.partner)
            if customer["kyc"]["list_versions"]["OFAC-SDN"] == v2019:
                break
            assert asyncio.get_running_loop().time() < deadline, "the worker kept its old lists"
            await asyncio.sleep(1)
    finally:
        await refresh(client, stack, str(stack.settings.lists.sanctions_dir))
    # and back: the configured edition is current again everywhere
    again = await create_customer(tenant.partner)
    assert again["kyc"]["list_versions"]["OFAC-SDN"] == load_ofac(SANCTIONS_2021).version
