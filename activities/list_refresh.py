"""Watch lists as versioned data: loaded at worker start, refreshed on a schedule, re-screened.

* `ListSources` says where the lists come from (`settings.sanctions_source`: a directory of
  OFAC CSV files or an http(s) URL serving them; `settings.pep_source`: a PEP CSV path or URL).
* `WatchLists` is a worker's loaded lists (matchers). It compares the versions it loaded with
  the current versions recorded in `watch_list_versions` at most every
  `list_version_check_seconds`, and reloads from the recorded source when they changed, so a
  refresh run by any worker reaches every worker.
* `ListRefreshActivities.refresh_watch_lists` loads the sources, records versions that changed
  (the refresh workflow then starts a re-screening), and `rescreen_customers_page` screens a
  page of customers again, flagging hits they did not have before.
* `ReloadingScreening` serves the payment screening activity with the current lists.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
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

from activities.metrics import count
from activities.notify import enabled_endpoints, start_delivery_workflows
from activities.screening import ScreeningActivities, screening_hit
from compliance.lists import DEFAULT_PEP_PATH, StaticWatchList, load_ofac, load_pep_csv
from compliance.matcher import Matcher, MatcherSettings
from kernel import audit
from kernel.settings import Settings
from kernel.tables import customers, events, watch_list_versions
from workflows.list_refresh import SCHEDULE_ID, ListRefreshWorkflow
from workflows.models import (
    CustomerScreeningResult,
    ListRefreshInput,
    ListRefreshResult,
    RescreenPageInput,
    RescreenPageResult,
    ScreeningHit,
    ScreeningInput,
    ScreeningResult,
)

log = structlog.get_logger()
OFAC_FILES = ("sdn.csv", "alt.csv", "add.csv")
DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
# one refresh at a time records versions (a transaction-scoped advisory lock)
_REFRESH_LOCK = 7_406_392_122


# --- sources -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListSources:
    """Where the sanctions list and the PEP list are read from (paths or http(s) URLs)."""

    sanctions: str
    pep: str
    # the matcher's thresholds (settings), so a reload screens exactly as the first load did
    matcher: MatcherSettings = field(default_factory=MatcherSettings)

    @classmethod
    def configured(cls, settings: Settings) -> ListSources:
        """The sources the settings name (with their defaults)."""
        return cls(
            settings.sanctions_source or str(settings.sanctions_dir),
            settings.pep_source or str(DEFAULT_PEP_PATH),
            MatcherSettings.with_thresholds(
                settings.screening_review_threshold, settings.screening_block_threshold
            ),
        )

    def override(self, request: ListRefreshInput) -> ListSources:
        """These sources, except where the request names its own."""
        return replace(
            self,
            sanctions=request.sanctions_source or self.sanctions,
            pep=request.pep_source or self.pep,
        )


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _download(client: httpx.Client, url: str, target: Path, *, required: bool) -> None:
    response = client.get(url)
    if response.status_code == 404 and not required:
        return
    response.raise_for_status()
    target.write_bytes(response.content)


def read_sanctions(source: str) -> StaticWatchList:
    """Load the OFAC list from a directory, or download sdn/alt/add.csv from a base URL.

    A download lands in a directory named after the URL's last path segment, so the version
    ("<name>:<content hash>") does not depend on where the files were staged.
    """
    if not _is_url(source):
        return load_ofac(Path(source))
    base = source.rstrip("/")
    name = urlsplit(base).path.rsplit("/", 1)[-1] or "ofac"
    with (
        tempfile.TemporaryDirectory(prefix="sanctions-") as tmp,
        httpx.Client(timeout=DOWNLOAD_TIMEOUT, follow_redirects=True) as client,
    ):
        directory = Path(tmp) / name
        directory.mkdir()
        for index, filename in enumerate(OFAC_FILES):
            _download(client, f"{base}/{filename}", directory / filename, required=index == 0)
        return load_ofac(directory)


def read_pep(source: str) -> StaticWatchList:
    """Load the PEP list from a CSV path or URL (the version names the file's stem)."""
    if not _is_url(source):
        return load_pep_csv(Path(source))
    filename = urlsplit(source).path.rsplit("/", 1)[-1] or "pep.csv"
    with (
        tempfile.TemporaryDirectory(prefix="pep-") as tmp,
        httpx.Client(timeout=DOWNLOAD_TIMEOUT, follow_redirects=True) as client,
    ):
        path = Path(tmp) / filename
        _download(client, source, path, required=True)
        return load_pep_csv(path)


# --- loaded lists ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedLists:
    """The matchers a worker screens with, and where their lists came from."""

    sanctions: Matcher
    pep: Matcher
    sources: ListSources

    @property
    def versions(self) -> dict[str, str]:
        """Version of every loaded list, by list name."""
        return {lst.name: lst.version for lst in (*self.sanctions.lists, *self.pep.lists)}

    @classmethod
    def build(
        cls, sanctions: StaticWatchList, pep: StaticWatchList, sources: ListSources
    ) -> LoadedLists:
        """Index the lists (CPU: run it off the event loop)."""
        return cls(Matcher([sanctions], sources.matcher), Matcher([pep], sources.matcher), sources)

    @classmethod
    def read(cls, sources: ListSources) -> LoadedLists:
        """Read and index both lists (blocking: run it in a thread)."""
        return cls.build(read_sanctions(sources.sanctions), read_pep(sources.pep), sources)


def screen_customer_row(lists: LoadedLists, row: Any) -> CustomerScreeningResult:
    """Screen a `customers` row against the sanctions lists, and an individual against the
    PEP list (politically exposed persons are people)."""
    individual = row.type == "individual"
    born = row.date_of_birth.year if row.date_of_birth is not None else None

    def hits(matcher: Matcher) -> list[ScreeningHit]:
        found = matcher.screen(
            row.name,
            country=row.country,
            party_type="individual" if individual else "entity",
            birth_year=born,
        )
        return [screening_hit("customer", hit) for hit in found if hit.decision != "clear"]

    return CustomerScreeningResult(
        lists.versions, hits(lists.sanctions), hits(lists.pep) if individual else []
    )


@dataclass(frozen=True)
class StoredVersion:
    """A list's current version as recorded in `watch_list_versions`."""

    version: str
    kind: str
    source: str


async def stored_versions(conn: AsyncConnection) -> dict[str, StoredVersion]:
    """The current (newest recorded) version of every list."""
    rows = await conn.execute(
        select(
            watch_list_versions.c.list_name,
            watch_list_versions.c.version,
            watch_list_versions.c.kind,
            watch_list_versions.c.source,
        )
        .distinct(watch_list_versions.c.list_name)
        .order_by(watch_list_versions.c.list_name, watch_list_versions.c.id.desc())
    )
    return {row.list_name: StoredVersion(row.version, row.kind, row.source) for row in rows}


class WatchLists:
    """A worker's loaded lists, reloaded when the recorded current version changes."""

    def __init__(
        self, engine: AsyncEngine, loaded: LoadedLists, *, check_seconds: float = 5.0
    ) -> None:
        self._engine = engine
        self._loaded = loaded
        self._check_seconds = check_seconds
        self._checked_at = float("-inf")
        # the recorded versions last acted on: a source that moved on since it was recorded
        # must not make every check reload again
        self._seen: dict[str, str] | None = None
        self._lock = asyncio.Lock()

    @classmethod
    async def load(cls, engine: AsyncEngine, settings: Settings) -> WatchLists:
        """Load the configured sources (at worker start)."""
        loaded = await asyncio.to_thread(LoadedLists.read, ListSources.configured(settings))
        return cls(engine, loaded, check_seconds=settings.list_version_check_seconds)

    @property
    def loaded(self) -> LoadedLists:
        """The lists in use right now (no version check)."""
        return self._loaded

    def adopt(self, loaded: LoadedLists) -> None:
        """Use lists this process has just read (the refresh activity shares its work)."""
        self._loaded = loaded
        self._seen = loaded.versions

    async def current(self, *, force: bool = False) -> LoadedLists:
        """The lists to screen with: reloaded first if the recorded versions changed.

        The check costs one small query at most every `check_seconds`; `force` checks now.
        While another task reloads, callers keep screening with the lists they have, unless
        `force`d, when they wait for it.
        """
        now = time.monotonic()
        if not force and (now - self._checked_at < self._check_seconds or self._lock.locked()):
            return self._loaded
        async with self._lock:
            self._checked_at = time.monotonic()
            async with self._engine.connect() as conn:
                stored = await stored_versions(conn)
            wanted = {name: entry.version for name, entry in stored.items()}
            loaded = self._loaded.versions
            if not stored or all(loaded.get(name) == v for name, v in wanted.items()):
                self._seen = wanted
                return self._loaded
            if wanted == self._seen:  # reloaded for these already (the source moved on since)
                return self._loaded
            self._seen = wanted
            configured = self._loaded.sources
            sources = ListSources(
                next(
                    (e.source for e in stored.values() if e.kind == "sanctions"),
                    configured.sanctions,
                ),
                next((e.source for e in stored.values() if e.kind == "pep"), configured.pep),
                configured.matcher,
            )
            try:
                self._loaded = await asyncio.to_thread(LoadedLists.read, sources)
            except Exception:
                # keep screening with what we have (results record its versions); the next
                # recorded version tries again
                log.exception("watch list reload failed", versions=wanted)
                return self._loaded
            log.info("watch lists reloaded", versions=self._loaded.versions, wanted=wanted)
            return self._loaded


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


class ListRefreshActivities:
    """Refreshes the lists from their sources and re-screens customers against them."""

    def __init__(
        self, engine: AsyncEngine, lists: WatchLists, client: Client, settings: Settings
    ) -> None:
        self._engine = engine
        self._lists = lists
        self._client = client
        self._settings = settings

    @activity.defn(name="refresh_watch_lists")
    async def refresh_watch_lists(self, request: ListRefreshInput) -> ListRefreshResult:
        """Load the sources; record every list whose version differs from the current one.

        Idempotent per refresh (workflow run): a retry finds the rows it already recorded.
        """
        info = activity.info()
        refresh_id = f"{info.workflow_id}/{info.workflow_run_id}"
        sources = ListSources.configured(self._settings).override(request)
        sanctions, pep = await asyncio.gather(
            asyncio.to_thread(read_sanctions, sources.sanctions),
            asyncio.to_thread(read_pep, sources.pep),
        )
        found = [("sanctions", sanctions, sources.sanctions), ("pep", pep, sources.pep)]
        versions = {lst.name: lst.version for _, lst, _ in found}
        async with self._engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _REFRESH_LOCK})
            already = (
                await conn.execute(
                    select(watch_list_versions.c.list_name).where(
                        watch_list_versions.c.refresh_id == refresh_id
                    )
                )
            ).scalars()
            changed = sorted(set(already))
            if not changed:
                stored = await stored_versions(conn)
                for kind, lst, source in found:
                    entry = stored.get(lst.name)
                    if entry is not None and entry.version == lst.version:
                        continue
                    changed.append(lst.name)
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
        if changed:
            await audit.append(
                self._engine,
                actor="list-refresh",
                action="watch_lists.updated",
                subject=None,
                detail={"versions": versions, "changed": changed, "sources": asdict(sources)},
                idempotency_key=f"{refresh_id}:watch_lists",
            )
            # this worker has the lists in hand: screen with them now, not at the next check
            if self._lists.loaded.versions != versions:
                self._lists.adopt(
                    await asyncio.to_thread(LoadedLists.build, sanctions, pep, sources)
                )
            log.info("watch lists updated", versions=versions, changed=changed)
            count("watch_list_updates", "Watch-list versions adopted")
        return ListRefreshResult(versions, changed)

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
        # audit first (idempotent): a retry after the update below still finds the hits new
        for row, screening, new in flagged:
            await audit.append(
                self._engine,
                actor="list-refresh",
                action="customer.watchlist_hit",
                subject=row.id,
                tenant_id=row.tenant_id,
                detail={
                    "list_versions": screening.list_versions,
                    "new_hits": [asdict(hit) for hit in new],
                },
                idempotency_key=f"{request.run_key}:{row.id}:watchlist_hit",
            )
        deliveries: list[tuple[str, list[str]]] = []
        endpoints: dict[str, list[str]] = {}  # per tenant: a page holds many of one tenant
        async with self._engine.begin() as conn:
            for row, screening, new in results:
                values: dict[str, Any] = {
                    "screening_hits": [asdict(hit) for hit in screening.hits],
                    "screening_list_versions": screening.list_versions,
                    "screened_at": now,
                }
                if new:
                    values["watchlist_flagged_at"] = now
                    event_id = await _insert_watchlist_event(
                        conn, row, request.run_key, screening, new, now
                    )
                    if row.tenant_id not in endpoints:
                        endpoints[row.tenant_id] = await enabled_endpoints(conn, row.tenant_id)
                    deliveries.append((event_id, endpoints[row.tenant_id]))
                await conn.execute(update(customers).where(customers.c.id == row.id).values(values))
        await audit.append(
            self._engine,
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
        for event_id, endpoint_ids in deliveries:
            await start_delivery_workflows(self._client, self._settings, event_id, endpoint_ids)
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


async def _insert_watchlist_event(
    conn: AsyncConnection,
    row: Any,
    run_key: str,
    screening: CustomerScreeningResult,
    new: list[ScreeningHit],
    at: datetime,
) -> str:
    """The `customer.watchlist_hit` event for a flagged customer (stable id per re-screening)."""
    suffix = hashlib.sha256(run_key.encode()).hexdigest()[:12]
    event_id = f"evt_{row.id.removeprefix('cus_')}_wl_{suffix}"
    await conn.execute(
        insert(events)
        .values(
            id=event_id,
            tenant_id=row.tenant_id,
            type="customer.watchlist_hit",
            payment_id=None,
            data={
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
            created_at=at,
        )
        .on_conflict_do_nothing()
    )
    return event_id


async def ensure_list_refresh_schedule(client: Client, settings: Settings) -> None:
    """Create the list refresh schedule, or bring an existing one up to the settings.

    Every worker does this at start (idempotent). A new schedule runs once at once, so a
    fresh installation records its list versions without waiting an interval.
    """
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            ListRefreshWorkflow.run,
            ListRefreshInput(rescreen_page_size=settings.rescreen_page_size),
            id=SCHEDULE_ID,
            task_queue=settings.task_queue,
        ),
        spec=ScheduleSpec(
            intervals=[
                ScheduleIntervalSpec(
                    every=timedelta(seconds=settings.list_refresh_interval_seconds)
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
