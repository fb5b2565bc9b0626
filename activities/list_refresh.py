"""Watch-list activities: refreshed on a schedule, customers re-screened, payments screened.

The lists themselves (sources, versions, a process's loaded matchers) are
services/watch_lists.py, shared with the API.

* `ListRefreshActivities.refresh_watch_lists` loads the configured sources, records versions
  that changed and pass the guards (the refresh workflow then starts a re-screening), refuses
  (audits, logs, counts) those that do not, and `rescreen_customers_page` screens a
  page of customers again, flagging hits they did not have before.
* `ReloadingScreening` serves the payment screening activity with the current lists.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.metrics import count
from activities.screening import ScreeningActivities
from compliance.lists import StaticWatchList
from kernel.codec import FieldSealer, data_key_store
from kernel.settings import Settings
from kernel.tables import customers, watch_list_versions
from services.counterparties import rescreen_page
from services.erasure import sealed_hits
from services.events import DeliveryStarter
from services.unit_of_work import UnitOfWork
from services.watch_lists import (
    ListGuards,
    ListRefusedError,
    ListSources,
    LoadedLists,
    Published,
    RefusalReason,
    StoredVersion,
    WatchLists,
    fetch_pep,
    fetch_sanctions,
    has_snapshot,
    screen_customer_row,
    store_snapshot,
    stored_versions,
)
from workflows.list_refresh import (
    SCHEDULE_ID,
    ListRefreshWorkflow,
    RescreenCounterpartiesWorkflow,
    rescreen_workflow_id,
)
from workflows.models import (
    CustomerScreeningResult,
    ListRefreshInput,
    ListRefreshResult,
    RescreenInput,
    RescreenPageInput,
    RescreenPageResult,
    ScreeningHit,
    ScreeningInput,
    ScreeningResult,
)

__all__ = [
    "ListRefreshActivities",
    "ReloadingScreening",
    "WatchLists",  # the workers import it from here
    "ensure_list_refresh_schedule",
]

log = structlog.get_logger()
# one refresh at a time records versions (a transaction-scoped advisory lock)
_REFRESH_LOCK = 7_406_392_122


# --- activities -------------------------------------------------------------------------------


class ReloadingScreening:
    """The payment screening activity (`screen_parties`), always on the current lists."""

    def __init__(self, lists: WatchLists, engine: AsyncEngine) -> None:
        self._lists = lists
        self._engine = engine

    @activity.defn(name="screen_parties")
    async def screen_parties(self, request: ScreeningInput) -> ScreeningResult:
        """Screen a payment's parties (see `ScreeningActivities.screen_parties`)."""
        matcher = (await self._lists.current()).sanctions
        return await ScreeningActivities(matcher, self._engine).screen_parties(request)


def _hit_keys(hits: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(hit["list_name"], hit["entity_id"]) for hit in hits}


def _read_or_refusal(
    fetch: Callable[[str], Published], source: str
) -> tuple[Published, StaticWatchList] | ListRefusedError:
    """The files at `source` and the list they hold, or the refusal their download ran into
    (a cross-host redirect); other errors propagate and the activity is retried."""
    try:
        published = fetch(source)
    except ListRefusedError as error:
        return error
    return published, published.load()


@dataclass(frozen=True)
class Refusal:
    """A list version (or source) a refresh refused, and what it would have replaced."""

    kind: str
    source: str
    reason: RefusalReason
    detail: str
    found: StaticWatchList | None = None
    current: StoredVersion | None = None

    def audit(self, uow: UnitOfWork, refresh_id: str) -> None:
        """Record the refusal in the audit chain, with the refresh it belongs to."""
        uow.audit(
            actor="list-refresh",
            action="watch_lists.refused",
            subject=None,
            detail={
                "kind": self.kind,
                "source": self.source,
                "reason": self.reason.value,
                "detail": self.detail,
                "refresh_id": refresh_id,
                "found": None
                if self.found is None
                else {
                    "list": self.found.name,
                    "version": self.found.version,
                    "sha256": self.found.digest,
                    "entities": len(self.found.entities),
                },
                "current": None
                if self.current is None
                else {"version": self.current.version, "entities": self.current.entities},
            },
            idempotency_key=f"{refresh_id}:refused:{self.kind}",
        )

    def announce(self) -> None:
        """Log it and count it: `payments_list_refresh_refused{kind,reason}` drives the
        ListRefreshRefused alert (deploy/prometheus/alerts.yml)."""
        log.error(
            "watch list refresh refused a new version; screening stays on the current one",
            kind=self.kind,
            reason=self.reason.value,
            detail=self.detail,
            current=None if self.current is None else self.current.version,
        )
        count(
            "payments_list_refresh_refused",
            "New watch-list versions refused by the refresh guards",
            kind=self.kind,
            reason=self.reason.value,
        )


class ListRefreshActivities:
    """Refreshes the lists from their sources and re-screens customers against them."""

    def __init__(
        self, engine: AsyncEngine, lists: WatchLists, client: Client, settings: Settings
    ) -> None:
        self._engine = engine
        self._lists = lists
        self._settings = settings
        self._client = client
        self._deliveries = DeliveryStarter(client, settings)
        # a hit's explanation quotes the customer's name: sealed under its data key, so an
        # erasure shreds it and the audit chain still verifies
        self._sealer = FieldSealer(data_key_store(settings))

    @activity.defn(name="refresh_watch_lists")
    async def refresh_watch_lists(self, request: ListRefreshInput) -> ListRefreshResult:
        """Load the configured sources; record every list whose version differs from the
        current one and passes the guards (`ListGuards`); audit and count every refusal.

        A refused version is not recorded, so every worker and the API keep screening with
        the current one. Idempotent per refresh (workflow run): a retry finds the rows it
        already recorded, and a refusal's audit record once.
        """
        info = activity.info()
        refresh_id = f"{info.workflow_id}/{info.workflow_run_id}"
        sources = ListSources.configured(self._settings)
        if request.sanctions_source or request.pep_source:
            return await self._refuse_source_override(request, refresh_id)
        sanctions, pep = await asyncio.gather(
            asyncio.to_thread(_read_or_refusal, fetch_sanctions, sources.sanctions),
            asyncio.to_thread(_read_or_refusal, fetch_pep, sources.pep),
        )
        found = [("sanctions", sanctions, sources.sanctions), ("pep", pep, sources.pep)]
        versions: dict[str, str] = {}
        read: dict[str, StaticWatchList] = {}
        refused: dict[str, Refusal] = {}
        async with UnitOfWork(self._engine) as uow:
            conn = uow.conn
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _REFRESH_LOCK})
            already = set(
                (
                    await conn.execute(
                        select(watch_list_versions.c.list_name).where(
                            watch_list_versions.c.refresh_id == refresh_id
                        )
                    )
                ).scalars()
            )
            stored = await stored_versions(conn)
            changed: list[str] = []
            for kind, fetched, source in found:
                if isinstance(fetched, ListRefusedError):
                    refused[kind] = Refusal(kind, source, fetched.reason, fetched.detail)
                    continue
                published, lst = fetched
                read[kind] = lst
                entry = stored.get(lst.name)
                if lst.name in already:  # this refresh recorded it before a retry
                    changed.append(lst.name)
                    versions[lst.name] = lst.version
                    continue
                if entry is not None and entry.version == lst.version:
                    versions[lst.name] = lst.version
                    # versions recorded before snapshots existed (0018) get theirs now
                    if not await has_snapshot(conn, lst.name, lst.version):
                        await store_snapshot(conn, lst, published)
                    continue
                try:
                    ListGuards.configured(self._settings, kind).check(
                        lst, entry.entities if entry is not None else None
                    )
                except ListRefusedError as error:
                    refused[kind] = Refusal(kind, source, error.reason, error.detail, lst, entry)
                    continue
                changed.append(lst.name)
                versions[lst.name] = lst.version
                await conn.execute(
                    insert(watch_list_versions).values(
                        list_name=lst.name,
                        kind=kind,
                        version=lst.version,
                        source=source,
                        entities=len(lst.entities),
                        refresh_id=refresh_id,
                    )
                )
                # every process loads the recorded version from these, never from a source
                # that may have moved on (to a refused version, say)
                await store_snapshot(conn, lst, published)
            # a refused list stays on its current version: that is what screening uses
            for entry_name, entry in stored.items():
                if entry.kind in refused:
                    versions.setdefault(entry_name, entry.version)
            changed.sort()
            if changed:
                uow.audit(
                    actor="list-refresh",
                    action="watch_lists.updated",
                    subject=None,
                    detail={"versions": versions, "changed": changed, "sources": asdict(sources)},
                    idempotency_key=f"{refresh_id}:watch_lists",
                )
            for refusal in refused.values():
                refusal.audit(uow, refresh_id)
        for refusal in refused.values():
            refusal.announce()
        if changed:
            # this worker has the lists in hand: screen with them now, not at the next check
            # (with a refusal, the next check reconciles list by list instead)
            if not refused and self._lists.loaded.versions != versions:
                self._lists.adopt(
                    await asyncio.to_thread(
                        LoadedLists.build, read["sanctions"], read["pep"], sources
                    )
                )
            log.info("watch lists updated", versions=versions, changed=changed)
            count("watch_list_updates", "Watch-list versions adopted")
            await self._start_counterparty_rescreen(versions)
        return ListRefreshResult(
            versions, changed, refused={kind: r.reason.value for kind, r in refused.items()}
        )

    async def _refuse_source_override(
        self, request: ListRefreshInput, refresh_id: str
    ) -> ListRefreshResult:
        """A refresh whose input names a source loads nothing: sources are settings."""
        named = {"sanctions": request.sanctions_source, "pep": request.pep_source}
        refused = {
            kind: Refusal(
                kind,
                source,
                RefusalReason.SOURCE_OVERRIDE,
                "the workflow input named a source; sources are settings"
                " (PAYMENTS_SANCTIONS_SOURCE, PAYMENTS_PEP_SOURCE)",
            )
            for kind, source in named.items()
            if source
        }
        async with UnitOfWork(self._engine) as uow:
            stored = await stored_versions(uow.conn)
            for refusal in refused.values():
                refusal.audit(uow, refresh_id)
        for refusal in refused.values():
            refusal.announce()
        return ListRefreshResult(
            {name: entry.version for name, entry in stored.items()},
            [],
            refused={kind: r.reason.value for kind, r in refused.items()},
        )

    async def _start_counterparty_rescreen(self, versions: dict[str, str]) -> None:
        """Start the re-screening of every saved counterparty against these versions (its id
        derives from them: a retry, or another refresh seeing the same update, joins it)."""
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self._client.start_workflow(
                RescreenCounterpartiesWorkflow.run,
                RescreenInput(versions),
                id=rescreen_workflow_id(versions, "counterparties"),
                task_queue=self._settings.temporal.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )

    @activity.defn(name="rescreen_counterparties_page")
    async def rescreen_counterparties_page(self, request: RescreenPageInput) -> RescreenPageResult:
        """Screen the next page of counterparties again; flag those with new hits."""
        lists = await self._lists.current(force=True)
        screened, flagged = await rescreen_page(
            self._engine,
            self._deliveries,
            lists,
            run_key=request.run_key,
            after_id=request.after_id,
            page_size=request.page_size,
        )
        if flagged:
            count("counterparties_watchlist_flagged", "Counterparties flagged by a list update")
            log.warning("counterparties flagged by a list update", counterparties=flagged)
        return RescreenPageResult(
            last_id=screened[-1] if screened else request.after_id,
            screened=len(screened),
            flagged=len(flagged),
            list_versions=lists.versions,
            done=len(screened) < request.page_size,
        )

    @activity.defn(name="rescreen_customers_page")
    async def rescreen_customers_page(self, request: RescreenPageInput) -> RescreenPageResult:
        """Screen the next page of customers again; flag those with hits they did not have."""
        lists = await self._lists.current(force=True)
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(customers)
                    .where(customers.c.id > request.after_id)
                    .order_by(customers.c.id)
                    .limit(request.page_size)
                )
            ).all()
        now = datetime.now(UTC)
        results: list[tuple[Any, CustomerScreeningResult, list[ScreeningHit]]] = []
        for row in rows:
            screening = screen_customer_row(lists, row)
            known = _hit_keys(row.screening_hits)
            hits = screening.hits
            new = [hit for hit in hits if (hit.list_name, hit.entity_id) not in known]
            results.append((row, screening, new))
            await asyncio.sleep(0)  # screening is CPU: let the worker's other tasks run
        flagged = [(row, screening, new) for row, screening, new in results if new]
        # one unit: the new screenings, the flagged customers' events and audit records, and
        # the page's record commit together (a retry finds the hits known and flags nothing)
        async with UnitOfWork(self._engine, self._deliveries) as uow:
            for row, screening, new in results:
                values: dict[str, Any] = {
                    "screening_hits": [asdict(hit) for hit in screening.hits],
                    "screening_list_versions": screening.list_versions,
                    "screened_at": now,
                }
                if new:
                    values["watchlist_flagged_at"] = now
                    await uow.event(**_watchlist_event(row, request.run_key, screening, new, now))
                    uow.audit(
                        actor="list-refresh",
                        action="customer.watchlist_hit",
                        subject=row.id,
                        tenant_id=row.tenant_id,
                        detail={
                            "list_versions": screening.list_versions,
                            "new_hits": await sealed_hits(
                                self._sealer, row.id, [asdict(hit) for hit in new]
                            ),
                        },
                        idempotency_key=f"{request.run_key}:{row.id}:watchlist_hit",
                    )
                await uow.conn.execute(
                    update(customers).where(customers.c.id == row.id).values(values)
                )
            uow.audit(
                actor="list-refresh",
                action="customers.rescreened",
                subject=None,
                detail={
                    "list_versions": lists.versions,
                    "customers": [row.id for row in rows],
                    "flagged": [row.id for row, _, _ in flagged],
                },
                idempotency_key=f"{request.run_key}:page:{request.after_id}",
            )
        if flagged:
            count("customers_watchlist_flagged", "Customers flagged by a list update")
            log.warning(
                "customers flagged by a list update", customers=[r.id for r, _, _ in flagged]
            )
        return RescreenPageResult(
            last_id=rows[-1].id if rows else request.after_id,
            screened=len(rows),
            flagged=len(flagged),
            list_versions=lists.versions,
            done=len(rows) < request.page_size,
        )


def _watchlist_event(
    row: Any,
    run_key: str,
    screening: CustomerScreeningResult,
    new: list[ScreeningHit],
    at: datetime,
) -> dict[str, Any]:
    """The `customer.watchlist_hit` event for a flagged customer (stable id per re-screening)."""
    suffix = hashlib.sha256(run_key.encode()).hexdigest()[:12]
    return {
        "event_id": f"evt_{row.id.removeprefix('cus_')}_wl_{suffix}",
        "tenant_id": row.tenant_id,
        "type": "customer.watchlist_hit",
        "data": {
            "customer_id": row.id,
            "list_versions": screening.list_versions,
            "new_hits": [
                {
                    "list": hit.list_name,
                    "list_version": hit.list_version,
                    "entity_id": hit.entity_id,
                    "matched_name": hit.matched_name,
                    "score": hit.score,
                }
                for hit in new
            ],
        },
        "at": at,
    }


async def ensure_list_refresh_schedule(client: Client, settings: Settings) -> None:
    """Create the list refresh schedule, or bring an existing one up to the settings.

    Every worker does this at start (idempotent). A new schedule runs once at once, so a
    fresh installation records its list versions without waiting an interval.
    """
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            ListRefreshWorkflow.run,
            ListRefreshInput(rescreen_page_size=settings.lists.rescreen_page_size),
            id=SCHEDULE_ID,
            task_queue=settings.temporal.task_queue,
        ),
        spec=ScheduleSpec(
            intervals=[
                ScheduleIntervalSpec(
                    every=timedelta(seconds=settings.lists.refresh_interval_seconds)
                )
            ]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(SCHEDULE_ID, schedule, trigger_immediately=True)
    except ScheduleAlreadyRunningError:

        def updated(current: ScheduleUpdateInput) -> ScheduleUpdate:
            # what ops set stays (a paused schedule stays paused); the rest follows settings
            state = current.description.schedule.state
            return ScheduleUpdate(schedule=replace(schedule, state=state))

        await client.get_schedule_handle(SCHEDULE_ID).update(updated)
