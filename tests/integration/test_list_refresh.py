"""Watch-list refresh through a real worker: new versions are recorded, every worker screens
with them, customers named only on the newer list are flagged; versions that shrink, miss a
pinned digest or come through a redirect to another host are refused, and screening stays on
the current version (#17).

The sources are settings, never workflow inputs: each test runs the refresh on a worker of
its own (in this process, on a task queue of its own, on the stack's PostgreSQL and Temporal)
whose settings name the source the test publishes into. Versions it records reach the stack's
worker and API the way they reach every worker: through `watch_list_versions`.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import shutil
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities.list_refresh import ListRefreshActivities
from compliance.lists import load_ofac
from kernel.db import dispose_engines, get_engine
from kernel.settings import Settings
from kernel.tables import audit_log, events, watch_list_versions
from kernel.temporal_client import connect
from ops.devstack import SANCTIONS_2021, Stack, free_port
from services.watch_lists import ListRefusedError, RefusalReason, WatchLists
from tests.integration.helpers import (
    Tenant,
    create_customer,
    funded_account,
    pay,
    payment_body,
    wait_for_status,
)
from workflows.list_refresh import (
    ListRefreshWorkflow,
    RescreenCounterpartiesWorkflow,
    RescreenCustomersWorkflow,
    rescreen_workflow_id,
)
from workflows.models import ListRefreshInput, ListRefreshResult
from workflows.queues import queue_for

SANCTIONS_2019 = SANCTIONS_2021.parent / "ofac-2019"
# listed in the 2021 edition (SDN 23253, MAGNIT program), absent from the 2019 one
NEWLY_LISTED = "Gennady Vyacheslavovich Karlov"
KARLOV_ID = "23253"
OFAC_FILES = ("sdn.csv", "alt.csv", "add.csv")


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
    for name in OFAC_FILES:
        shutil.copyfile(edition / name, source / name)
    loaded = load_ofac(source)
    return loaded.version, len(loaded.entities)


def publish_half(edition: Path, source: Path, *, dropping: set[str]) -> tuple[str, int]:
    """Publish `edition` with every other SDN entry, and without the ids in `dropping`: a
    truncated or tampered list (alt.csv and add.csv as published)."""
    publish(edition, source)
    with (edition / "sdn.csv").open(newline="", encoding="utf-8", errors="surrogateescape") as f:
        rows = [row for row in csv.reader(f) if row and row[0].strip().isdigit()]
    kept = [row for i, row in enumerate(rows) if i % 2 == 0 and row[0] not in dropping]
    with (source / "sdn.csv").open(
        "w", newline="", encoding="utf-8", errors="surrogateescape"
    ) as f:
        csv.writer(f).writerows(kept)
    loaded = load_ofac(source)
    return loaded.version, len(loaded.entities)


# --- a list worker with settings of its own --------------------------------------------------


@pytest.fixture(scope="module")
def metrics_port() -> int:
    """The Prometheus port of this module's Temporal runtime (the list workers' metrics)."""
    return free_port()


@pytest.fixture(scope="module")
def runtime(metrics_port: int) -> Runtime:
    """A Temporal runtime exporting the activities' metrics, as a worker process does."""
    address = f"127.0.0.1:{metrics_port}"
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))


@dataclass
class ListWorker:
    """A worker running the refresh workflow and its activities with `settings`."""

    client: Client
    settings: Settings
    lists: WatchLists

    async def refresh(self, request: ListRefreshInput | None = None) -> ListRefreshResult:
        """Run one refresh (as the schedule would) and wait for the re-screening it started."""
        result = await self.client.execute_workflow(
            ListRefreshWorkflow.run,
            request or ListRefreshInput(rescreen_page_size=50),
            id=f"list-refresh-test-{uuid.uuid4().hex[:8]}",
            task_queue=self.settings.temporal.task_queue,
        )
        if result.rescreen_workflow_id:
            await self.client.get_workflow_handle_for(
                RescreenCustomersWorkflow.run, result.rescreen_workflow_id
            ).result()
            # the refresh step started the counterparties' re-screening too
            await self.client.get_workflow_handle_for(
                RescreenCounterpartiesWorkflow.run,
                rescreen_workflow_id(result.versions, "counterparties"),
            ).result()
        return result


@contextlib.asynccontextmanager
async def list_worker(stack: Stack, runtime: Runtime, **changes: Any) -> AsyncIterator[ListWorker]:
    """A worker whose settings are the stack's, with `changes` to the lists section (a source,
    the guards).

    It starts with the lists the stack is configured with, which is the current version:
    what it refreshes from is the source its settings name.
    """
    queue = f"list-guard-{uuid.uuid4().hex[:8]}"
    own = stack.settings.updated(
        {
            "temporal.task_queue": queue,
            **{f"lists.{name}": value for name, value in changes.items()},
        }
    )
    client = await connect(own, runtime=runtime)
    engine = get_engine(own)
    lists = await WatchLists.load(engine, stack.settings)
    activities = ListRefreshActivities(engine, lists, client, own)
    async with (
        Worker(
            client,
            task_queue=queue_for(queue, "payments"),
            workflows=[
                ListRefreshWorkflow,
                RescreenCustomersWorkflow,
                RescreenCounterpartiesWorkflow,
            ],
        ),
        Worker(
            client,
            task_queue=queue_for(queue, "compliance"),
            activities=[
                activities.refresh_watch_lists,
                activities.rescreen_customers_page,
                activities.rescreen_counterparties_page,
            ],
        ),
    ):
        yield ListWorker(client, own, lists)
    await dispose_engines()


async def stack_screens_with(tenant: Tenant, version: str) -> None:
    """Wait until the stack's worker screens with `version` of OFAC-SDN: workers compare the
    recorded versions with theirs every few seconds (list_version_check_seconds)."""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        customer = await create_customer(tenant.partner)
        if customer["kyc"]["list_versions"]["OFAC-SDN"] == version:
            return
        assert asyncio.get_running_loop().time() < deadline, "the worker kept its old lists"
        await asyncio.sleep(1)


async def restore_configured_lists(stack: Stack, runtime: Runtime, tenant: Tenant) -> None:
    """Back to the stack's configured edition, so later tests see the platform as configured."""
    async with list_worker(stack, runtime) as worker:
        result = await worker.refresh()
    assert result.refused == {}, result
    await stack_screens_with(tenant, load_ofac(SANCTIONS_2021).version)


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
    tenant: Tenant, stack: Stack, source: Path, runtime: Runtime
) -> None:
    v2019, size2019 = publish(SANCTIONS_2019, source)
    # the 2019 edition has 17.8% fewer entries than the 2021 one the stack runs on: inside the
    # default shrink guard (20%); the 2021 edition is pinned by its digest
    pinned = load_ofac(SANCTIONS_2021).digest
    worker_settings = {"sanctions_source": str(source), "sanctions_sha256": ""}
    try:
        async with list_worker(stack, runtime, **worker_settings) as worker:
            first = await worker.refresh()
            assert first.versions["OFAC-SDN"] == v2019
            assert "OFAC-SDN" in first.changed
            assert first.rescreen_workflow_id
            assert first.refused == {}
            assert await current_version(stack, "OFAC-SDN") == (v2019, str(source), size2019)
            unchanged = await worker.refresh()
            assert (unchanged.changed, unchanged.rescreen_workflow_id) == ([], "")

        # onboarded while the 2019 edition is current: nothing to find
        await stack_screens_with(tenant, v2019)
        karlov = await create_customer(tenant.partner, name=NEWLY_LISTED)
        ada = await create_customer(tenant.partner)
        # a saved counterparty with the same name: clear when saved, flagged after the update
        saved = await tenant.partner.post(
            "/v1/counterparties",
            json={
                "type": "individual",
                "name": NEWLY_LISTED,
                "country": "RU",
                "iban": "DE89370400440532013000",
            },
        )
        assert saved.status_code == 201, saved.text
        counterparty = saved.json()
        assert counterparty["screening"]["decision"] == "clear"
        assert karlov["kyc"]["status"] == "approved"
        assert karlov["kyc"]["list_versions"]["OFAC-SDN"] == v2019
        assert karlov["kyc"]["hits"] == []

        v2021, size2021 = publish(SANCTIONS_2021, source)
        async with list_worker(
            stack, runtime, **{**worker_settings, "sanctions_sha256": pinned}
        ) as worker:
            second = await worker.refresh()
        assert (second.changed, second.refused) == (["OFAC-SDN"], {})
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
        rescreened = (await tenant.partner.get(f"/v1/counterparties/{counterparty['id']}")).json()[
            "screening"
        ]
        assert rescreened["decision"] != "clear"
        assert [(h["list"], h["entity_id"]) for h in rescreened["hits"]] == [("OFAC-SDN", "23253")]
        async with engine.connect() as conn:
            updated = (
                await conn.execute(
                    select(events.c.data).where(
                        events.c.tenant_id == tenant.tenant_id,
                        events.c.type == "counterparty.updated",
                    )
                )
            ).all()
        await dispose_engines()
        assert [(e.data["counterparty_id"], e.data["changed"]) for e in updated] == [
            (counterparty["id"], ["screening"])
        ]
        assert [event.data["customer_id"] for event in announced] == [karlov["id"]]
        assert announced[0].data["new_hits"][0]["entity_id"] == "23253"

        # the payment screening runs on the new edition too
        await stack_screens_with(tenant, v2021)
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
        await restore_configured_lists(stack, runtime, tenant)


async def test_workers_load_a_version_another_worker_recorded(
    tenant: Tenant, stack: Stack, source: Path, runtime: Runtime
) -> None:
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
        await stack_screens_with(tenant, v2019)
    finally:
        await restore_configured_lists(stack, runtime, tenant)
    # and back: the configured edition is current again everywhere
    again = await create_customer(tenant.partner)
    assert again["kyc"]["list_versions"]["OFAC-SDN"] == load_ofac(SANCTIONS_2021).version


# --- refused versions (#17) -----------------------------------------------------------------


async def last_refusal(stack: Stack) -> dict[str, Any]:
    """The latest audited refusal."""
    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        detail: dict[str, Any] = (
            await conn.execute(
                select(audit_log.c.detail)
                .where(audit_log.c.action == "watch_lists.refused")
                .order_by(audit_log.c.seq.desc())
                .limit(1)
            )
        ).scalar_one()
    await dispose_engines()
    return detail


def refused_count(metrics_port: int, kind: str, reason: str) -> float:
    """`payments_list_refresh_refused{kind,reason}` as Prometheus scrapes it (0 if absent)."""
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("payments_list_refresh_refused{") and (
            f'kind="{kind}"' in line and f'reason="{reason}"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_a_list_cut_by_half_is_refused_and_screening_stays_on_the_current_version(
    tenant: Tenant, stack: Stack, source: Path, runtime: Runtime, metrics_port: int
) -> None:
    current = load_ofac(SANCTIONS_2021)
    # the source loses half its entries, the newly listed name and Banco Nacional de Cuba
    # among them
    before = refused_count(metrics_port, "sanctions", "shrink")
    async with list_worker(stack, runtime, sanctions_source=str(source)) as worker:
        half_version, half_size = publish_half(SANCTIONS_2021, source, dropping={KARLOV_ID, "306"})
        assert half_size * 2 <= len(current.entities)
        result = await worker.refresh()
        assert (result.changed, result.refused) == ([], {"sanctions": "shrink"})
        assert result.rescreen_workflow_id == ""
        assert result.versions["OFAC-SDN"] == current.version
        # this worker's own lists: still the current edition, and a dropped name still hits
        lists = await worker.lists.current(force=True)
        assert lists.versions["OFAC-SDN"] == current.version
        hits = lists.sanctions.screen(NEWLY_LISTED, party_type="individual")
        assert KARLOV_ID in {hit.entity_id for hit in hits if hit.decision != "clear"}
        # a worker started now, on a source that serves the refused version, screens with
        # the recorded one (its snapshot), not with what the source serves
        started = await WatchLists.load(get_engine(worker.settings), worker.settings)
        assert started.loaded.versions["OFAC-SDN"] == current.version
        hits = started.loaded.sanctions.screen(NEWLY_LISTED, party_type="individual")
        assert KARLOV_ID in {hit.entity_id for hit in hits if hit.decision != "clear"}
    assert await current_version(stack, "OFAC-SDN") == (
        current.version,
        str(SANCTIONS_2021),
        len(current.entities),
    )
    # the API and the stack's worker screen with the current edition
    answer = (await tenant.partner.post("/v1/screenings", json={"name": NEWLY_LISTED})).json()
    assert current.version in answer["list_versions"]
    assert [(h["entity_id"], h["list_version"]) for h in answer["hits"]][:1] == [
        (KARLOV_ID, current.version)
    ]
    customer = await create_customer(tenant.partner, name=NEWLY_LISTED)
    assert customer["kyc"]["list_versions"]["OFAC-SDN"] == current.version
    assert KARLOV_ID in {hit["entity_id"] for hit in customer["kyc"]["hits"]}
    # audited with the reason and both sizes, and counted for the alert
    refusal = await last_refusal(stack)
    assert refusal["reason"] == "shrink"
    assert refusal["kind"] == "sanctions"
    assert refusal["found"] == {
        "list": "OFAC-SDN",
        "version": half_version,
        "sha256": load_ofac(source).digest,
        "entities": half_size,
    }
    assert refusal["current"] == {"version": current.version, "entities": len(current.entities)}
    assert refused_count(metrics_port, "sanctions", "shrink") == before + 1


async def test_a_version_that_misses_the_pinned_digest_is_refused(
    stack: Stack, source: Path, runtime: Runtime, metrics_port: int
) -> None:
    current = load_ofac(SANCTIONS_2021)
    # a new version (another directory name) of the right size, pinned to another edition
    publish(SANCTIONS_2021, source)
    pinned = load_ofac(SANCTIONS_2019).digest
    before = refused_count(metrics_port, "sanctions", "digest_mismatch")
    async with list_worker(
        stack, runtime, sanctions_source=str(source), sanctions_sha256=pinned.upper()
    ) as worker:
        result = await worker.refresh()
    assert (result.changed, result.refused) == ([], {"sanctions": "digest_mismatch"})
    assert result.versions["OFAC-SDN"] == current.version
    assert (await current_version(stack, "OFAC-SDN"))[0] == current.version
    refusal = await last_refusal(stack)
    assert refusal["reason"] == "digest_mismatch"
    assert refusal["found"]["sha256"] == current.digest
    assert pinned in refusal["detail"]
    assert refused_count(metrics_port, "sanctions", "digest_mismatch") == before + 1


class ListServer:
    """A loopback HTTP server: serves an OFAC edition under /lists/<edition>/, redirects
    /moved/… to /lists/… on itself and /away/… to `away` (another host); logs every path."""

    def __init__(self, host: str, edition: Path, away: str = "") -> None:
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.paths.append(self.path)
                _, prefix, rest = self.path.split("/", 2)
                if prefix == "moved":
                    self._redirect(f"/lists/{rest}")
                elif prefix == "away":
                    self._redirect(f"{away}/lists/{rest}")
                elif prefix == "lists" and (edition / rest.rsplit("/", 1)[-1]).is_file():
                    body = (edition / rest.rsplit("/", 1)[-1]).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_error(404)

            def _redirect(self, location: str) -> None:
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def __enter__(self) -> ListServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._http.shutdown()
        self._http.server_close()


async def test_a_source_that_redirects_to_another_host_is_refused(
    stack: Stack, runtime: Runtime, metrics_port: int
) -> None:
    current = load_ofac(SANCTIONS_2021)
    before = refused_count(metrics_port, "sanctions", "cross_host_redirect")
    # both on loopback: 127.0.0.2 is another host to a source configured on 127.0.0.1
    with (
        ListServer("127.0.0.2", SANCTIONS_2019) as elsewhere,
        ListServer("127.0.0.1", SANCTIONS_2021, away=elsewhere.url) as publisher,
    ):
        # a redirect within the publisher's host is followed (the same edition: no change)
        moved_source = f"{publisher.url}/moved/ofac-2021"
        async with list_worker(stack, runtime, sanctions_source=moved_source) as worker:
            moved = await worker.refresh()
        assert (moved.changed, moved.refused) == ([], {})
        assert publisher.paths[:2] == ["/moved/ofac-2021/sdn.csv", "/lists/ofac-2021/sdn.csv"]

        # the other host's edition would pass every other guard: refused for where it is
        away_source = f"{publisher.url}/away/ofac-2021"
        async with list_worker(stack, runtime, sanctions_source=away_source) as worker:
            away = await worker.refresh()
            lists = await worker.lists.current(force=True)
        assert (away.changed, away.refused) == ([], {"sanctions": "cross_host_redirect"})
        assert away.versions["OFAC-SDN"] == current.version
        assert lists.versions["OFAC-SDN"] == current.version
        assert elsewhere.paths == [], "the redirect to another host was followed"
    assert (await current_version(stack, "OFAC-SDN"))[0] == current.version
    refusal = await last_refusal(stack)
    assert (refusal["reason"], refusal["source"], refusal["found"]) == (
        "cross_host_redirect",
        away_source,
        None,
    )
    assert "127.0.0.2" in refusal["detail"]
    assert refused_count(metrics_port, "sanctions", "cross_host_redirect") == before + 1


async def test_a_refresh_whose_input_names_a_source_is_refused(
    stack: Stack, source: Path, runtime: Runtime, metrics_port: int
) -> None:
    current = load_ofac(SANCTIONS_2021)
    publish(SANCTIONS_2019, source)
    before = refused_count(metrics_port, "sanctions", "source_override")
    async with list_worker(stack, runtime) as worker:
        result = await worker.refresh(ListRefreshInput(sanctions_source=str(source)))
    assert (result.changed, result.refused) == ([], {"sanctions": "source_override"})
    assert result.versions["OFAC-SDN"] == current.version
    assert (await current_version(stack, "OFAC-SDN"))[0] == current.version
    refusal = await last_refusal(stack)
    assert (refusal["reason"], refusal["source"]) == ("source_override", str(source))
    assert refused_count(metrics_port, "sanctions", "source_override") == before + 1


async def test_a_process_never_starts_on_an_unrecorded_version_the_guards_refuse(
    database: Stack, isolated_database_url: str, source: Path
) -> None:
    # a fresh installation: no version recorded, so nothing to fall back on
    half_version, half_size = publish_half(SANCTIONS_2021, source, dropping=set())

    def settings(**lists: Any) -> Settings:
        changes = {f"lists.{name}": value for name, value in lists.items()}
        return database.settings.updated({"database.url": isolated_database_url, **changes})

    floor = settings(sanctions_source=str(source), sanctions_min_entities=half_size + 1)
    with pytest.raises(ListRefusedError) as below:
        await WatchLists.load(get_engine(floor), floor)
    assert below.value.reason == RefusalReason.BELOW_FLOOR
    pinned = settings(sanctions_sha256=load_ofac(SANCTIONS_2019).digest)
    with pytest.raises(ListRefusedError) as mismatch:
        await WatchLists.load(get_engine(pinned), pinned)
    assert mismatch.value.reason == RefusalReason.DIGEST_MISMATCH
    # within the guards it starts on what the source serves
    fine = settings(sanctions_source=str(source))
    started = await WatchLists.load(get_engine(fine), fine)
    assert started.loaded.versions["OFAC-SDN"] == half_version
    await dispose_engines()
