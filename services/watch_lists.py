"""Watch lists as versioned data, shared by the workers (screening) and the API
(`POST /v1/screenings`).

* `ListSources` says where the lists come from (`lists.sanctions_source`: a directory of OFAC
  CSV files or an http(s) URL serving them; `lists.pep_source`: a PEP CSV path or URL).
* `ListGuards` are what a new version must pass before a refresh records it (#17): no
  shrinking by more than `lists.max_shrink_share`, no fewer entities than a floor, the pinned
  SHA-256 when one is set; a download that redirects to another host is refused as it happens.
* `WatchLists` is a process's loaded lists (matchers). It compares the versions it loaded
  with the current versions recorded in `watch_list_versions` at most every
  `list_version_check_seconds`, and reloads from the recorded source when they changed, so a
  refresh run by any worker reaches every worker and the API. It loads a recorded version
  from its snapshot (`watch_list_snapshots`: the files the refresh read), at start as on a
  reload, so a source that has since moved on to an unrecorded (say, refused) version is
  never screened with; versions recorded before snapshots existed are read from their source
  and adopted only if that still serves them.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from compliance.lists import DEFAULT_PEP_PATH, StaticWatchList, load_ofac, load_pep_csv
from compliance.matcher import Hit, Matcher, MatcherSettings
from kernel.settings import Settings
from kernel.tables import watch_list_snapshots, watch_list_versions
from workflows.models import CustomerScreeningResult, ScreeningHit

log = structlog.get_logger()
OFAC_FILES = ("sdn.csv", "alt.csv", "add.csv")
DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
# same-host redirects (a publisher moving a file within its site) are followed this far
MAX_REDIRECTS = 5


def screening_hit(party: str, hit: Hit) -> ScreeningHit:
    """A matcher hit on `party` as the workflows carry it."""
    return ScreeningHit(
        party=party,
        list_name=hit.list_name,
        list_version=hit.list_version,
        entity_id=hit.entity_id,
        matched_name=hit.matched_name,
        score=round(hit.score, 4),
        decision=hit.decision,
        explanation=str(hit.explanation),
    )


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
            settings.lists.sanctions_source or str(settings.lists.sanctions_dir),
            settings.lists.pep_source or str(DEFAULT_PEP_PATH),
            MatcherSettings.with_thresholds(
                settings.screening.review_threshold, settings.screening.block_threshold
            ),
        )


# --- guards ---------------------------------------------------------------------------------


class RefusalReason(StrEnum):
    """Why a refresh refused a new list version (the `reason` of the metric and the audit)."""

    SHRINK = "shrink"
    BELOW_FLOOR = "below_floor"
    DIGEST_MISMATCH = "digest_mismatch"
    CROSS_HOST_REDIRECT = "cross_host_redirect"
    # a refresh whose workflow input named a source (sources are settings only)
    SOURCE_OVERRIDE = "source_override"


class ListRefusedError(ValueError):
    """A new list version (or its source) failed a guard: it must not be screened with.

    A ValueError, like a list that does not parse: a process starting on such a source
    stops with the setting to fix (workers/payments_worker.py `load_watch_lists`).
    """

    def __init__(self, reason: RefusalReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ListGuards:
    """What a new version of one list must pass before it replaces the current one."""

    max_shrink_share: float
    min_entities: int
    # empty: no pin
    sha256: str = ""

    @classmethod
    def configured(cls, settings: Settings, kind: str) -> ListGuards:
        """The guards the settings set for a list kind ("sanctions" or "pep")."""
        if kind == "sanctions":
            floor, pin = settings.lists.sanctions_min_entities, settings.lists.sanctions_sha256
        else:
            floor, pin = settings.lists.pep_min_entities, settings.lists.pep_sha256
        return cls(settings.lists.max_shrink_share, floor, pin.lower())

    def check(self, new: StaticWatchList, current_entities: int | None) -> None:
        """Raise `ListRefusedError` unless `new` may replace a version of `current_entities`
        entities (None: there is no current version, so nothing to shrink from)."""
        size = len(new.entities)
        if self.sha256 and new.digest != self.sha256:
            raise ListRefusedError(
                RefusalReason.DIGEST_MISMATCH,
                f"{new.name} {new.version}: sha256 {new.digest or '(none)'}, pinned {self.sha256}",
            )
        if size < self.min_entities:
            raise ListRefusedError(
                RefusalReason.BELOW_FLOOR,
                f"{new.name} {new.version}: {size} entities, the floor is {self.min_entities}",
            )
        if current_entities and size < current_entities * (1.0 - self.max_shrink_share):
            raise ListRefusedError(
                RefusalReason.SHRINK,
                f"{new.name} {new.version}: {size} entities after {current_entities}"
                f" (more than {self.max_shrink_share:.0%} fewer)",
            )


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _same_host(origin: httpx.URL, target: httpx.URL) -> bool:
    """Whether a redirect from `origin` to `target` stays on the configured host: same host
    name and port, or the same host name upgraded from http to https (never downgraded)."""
    if target.host.lower() != origin.host.lower():
        return False
    if origin.scheme == target.scheme:
        return origin.port == target.port
    return (origin.scheme, target.scheme) == ("http", "https")


def _get(client: httpx.Client, url: str) -> httpx.Response:
    """GET `url`, following redirects only within its host.

    A list that moves to another host is a mirror nobody configured (or a hijacked DNS
    name, an open redirect): refused, not followed.
    """
    origin = current = httpx.URL(url)
    for _ in range(MAX_REDIRECTS + 1):
        response = client.get(current)
        if not response.is_redirect:
            return response
        target = current.join(response.headers["location"])
        if not _same_host(origin, target):
            raise ListRefusedError(
                RefusalReason.CROSS_HOST_REDIRECT,
                f"{current} redirects to {target.scheme}://{target.host}"
                f"{'' if target.port is None else f':{target.port}'}",
            )
        current = target
    raise httpx.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects from {url}")


def _download(client: httpx.Client, url: str, *, required: bool) -> bytes | None:
    response = _get(client, url)
    if response.status_code == 404 and not required:
        return None
    response.raise_for_status()
    return response.content


@dataclass(frozen=True)
class Published:
    """A list's files exactly as its source published them, by path relative to a staging
    directory ("ofac-2021/sdn.csv", "pep-sample.csv"): what its version is computed from,
    and what a snapshot keeps (`watch_list_snapshots`)."""

    kind: str
    files: dict[str, bytes]

    def load(self) -> StaticWatchList:
        """Parse the list (blocking: files are staged in a temporary directory)."""
        with tempfile.TemporaryDirectory(prefix=f"{self.kind}-") as tmp:
            for relative, content in self.files.items():
                path = Path(tmp) / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
            first = Path(tmp) / next(iter(self.files))
            return load_ofac(first.parent) if self.kind == "sanctions" else load_pep_csv(first)


def fetch_sanctions(source: str) -> Published:
    """The OFAC files from a directory, or sdn/alt/add.csv downloaded from a base URL.

    The files are staged in a directory named like the source's (a URL's last path segment),
    so the version ("<name>:<content hash>") does not depend on where they were staged.
    """
    files: dict[str, bytes] = {}
    if not _is_url(source):
        directory = Path(source)
        for index, filename in enumerate(OFAC_FILES):
            path = directory / filename
            if index == 0 or path.exists():  # sdn.csv is required: a missing one raises
                files[f"{directory.name}/{filename}"] = path.read_bytes()
        return Published("sanctions", files)
    base = source.rstrip("/")
    name = urlsplit(base).path.rsplit("/", 1)[-1] or "ofac"
    with httpx.Client(timeout=DOWNLOAD_TIMEOUT, follow_redirects=False) as client:
        for index, filename in enumerate(OFAC_FILES):
            content = _download(client, f"{base}/{filename}", required=index == 0)
            if content is not None:
                files[f"{name}/{filename}"] = content
    return Published("sanctions", files)


def fetch_pep(source: str) -> Published:
    """The PEP CSV from a path or URL (the version names the file's stem)."""
    if not _is_url(source):
        path = Path(source)
        return Published("pep", {path.name: path.read_bytes()})
    filename = urlsplit(source).path.rsplit("/", 1)[-1] or "pep.csv"
    with httpx.Client(timeout=DOWNLOAD_TIMEOUT, follow_redirects=False) as client:
        content = _download(client, source, required=True)
    if content is None:  # unreachable: a required file's 404 raised already
        raise FileNotFoundError(source)
    return Published("pep", {filename: content})


def read_sanctions(source: str) -> StaticWatchList:
    """Load the OFAC list from a directory or base URL (`fetch_sanctions`)."""
    return fetch_sanctions(source).load()


def read_pep(source: str) -> StaticWatchList:
    """Load the PEP list from a CSV path or URL (`fetch_pep`)."""
    return fetch_pep(source).load()


FETCHERS = {"sanctions": fetch_sanctions, "pep": fetch_pep}


# --- snapshots: the recorded versions' files -------------------------------------------------


async def has_snapshot(conn: AsyncConnection, list_name: str, version: str) -> bool:
    """Whether the files of this version are stored."""
    found = await conn.execute(
        select(watch_list_snapshots.c.file_name)
        .where(
            watch_list_snapshots.c.list_name == list_name,
            watch_list_snapshots.c.version == version,
        )
        .limit(1)
    )
    return found.first() is not None


async def store_snapshot(conn: AsyncConnection, lst: StaticWatchList, published: Published) -> None:
    """Keep the files a recorded version was read from (idempotent)."""
    await conn.execute(
        pg_insert(watch_list_snapshots)
        .values(
            [
                {"list_name": lst.name, "version": lst.version, "file_name": f, "content": c}
                for f, c in published.files.items()
            ]
        )
        .on_conflict_do_nothing()
    )


async def load_snapshot(
    conn: AsyncConnection, kind: str, list_name: str, version: str
) -> Published | None:
    """The stored files of a version, or None when it has none (recorded before 0018)."""
    rows = (
        await conn.execute(
            select(watch_list_snapshots.c.file_name, watch_list_snapshots.c.content)
            .where(
                watch_list_snapshots.c.list_name == list_name,
                watch_list_snapshots.c.version == version,
            )
            .order_by(watch_list_snapshots.c.file_name)
        )
    ).all()
    if not rows:
        return None
    files = {row.file_name: bytes(row.content) for row in rows}
    if kind == "sanctions":  # sdn.csv first: the staging directory is its parent
        files = dict(sorted(files.items(), key=lambda item: not item[0].endswith("/sdn.csv")))
    return Published(kind, files)


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

    def rebuild(
        self, wanted: dict[str, str], snapshots: dict[str, Published], sources: ListSources
    ) -> LoadedLists:
        """These lists brought to the recorded (`wanted`) versions, list by list: from the
        version's snapshot, else from its recorded source (blocking: run it in a thread).

        A source may have moved on since its version was recorded, to a version a refresh
        refused or has not checked yet: a list read from it that is not the recorded version
        is not used, and screening stays on what is loaded.
        """

        def recorded(matcher: Matcher) -> bool:
            return all(wanted.get(lst.name, lst.version) == lst.version for lst in matcher.lists)

        def one(kind: str, ours: Matcher, source: str) -> Matcher:
            if recorded(ours):
                return ours
            published = snapshots.get(kind)
            fresh = Matcher([(published or FETCHERS[kind](source)).load()], sources.matcher)
            if recorded(fresh):
                return fresh
            log.warning(
                "watch list source holds an unrecorded version; screening stays on the loaded one",
                kind=kind,
                loaded=[lst.version for lst in ours.lists],
                found=[lst.version for lst in fresh.lists],
                wanted=wanted,
            )
            return ours

        return LoadedLists(
            one("sanctions", self.sanctions, sources.sanctions),
            one("pep", self.pep, sources.pep),
            sources,
        )


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
    entities: int = 0


async def stored_versions(conn: AsyncConnection) -> dict[str, StoredVersion]:
    """The current (newest recorded) version of every list."""
    rows = await conn.execute(
        select(
            watch_list_versions.c.list_name,
            watch_list_versions.c.version,
            watch_list_versions.c.kind,
            watch_list_versions.c.source,
            watch_list_versions.c.entities,
        )
        .ext(distinct_on(watch_list_versions.c.list_name))
        .order_by(watch_list_versions.c.list_name, watch_list_versions.c.id.desc())
    )
    return {
        row.list_name: StoredVersion(row.version, row.kind, row.source, row.entities)
        for row in rows
    }


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
        """Load the configured sources, then the recorded versions where they differ (at a
        worker's or the API's start).

        A source may serve a version no refresh recorded (a refused one, or one newer than
        the last refresh): the process screens with the recorded versions, from their
        snapshots, like every other process. Without the database (it may be restarting)
        it starts on the source's lists and the first check reconciles them.
        """
        sources = ListSources.configured(settings)
        loaded = await asyncio.to_thread(LoadedLists.read, sources)
        if loaded.sanctions.name_count == 0:
            # a file that parses to nothing (wrong format, truncated download) is a
            # misconfigured source: say so at start, even though a recorded version exists
            raise ValueError(f"the sanctions list at {sources.sanctions} has no names")
        lists = cls(engine, loaded, check_seconds=settings.lists.version_check_seconds)
        stored: dict[str, StoredVersion] = {}
        try:
            await lists.current(force=True)
            async with engine.connect() as conn:
                stored = await stored_versions(conn)
        except Exception:
            log.warning("recorded watch-list versions unavailable at start", exc_info=True)
            lists._checked_at = float("-inf")
            lists._seen = None
        lists.check_unrecorded(settings, stored)
        return lists

    def check_unrecorded(self, settings: Settings, stored: dict[str, StoredVersion]) -> None:
        """Raise `ListRefusedError` if a loaded list that no refresh recorded (a first start,
        or a source read without a snapshot to fall back on) fails the refresh guards: a
        process never screens with a version a refresh would refuse."""
        for kind, matcher in (("sanctions", self._loaded.sanctions), ("pep", self._loaded.pep)):
            for lst in matcher.lists:
                entry = stored.get(lst.name)
                if entry is not None and entry.version == lst.version:
                    continue
                if isinstance(lst, StaticWatchList):
                    current = entry.entities if entry is not None else None
                    ListGuards.configured(settings, kind).check(lst, current)

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
                if wanted == self._seen:  # tried for these already (the source moved on)
                    return self._loaded
                self._seen = wanted
                snapshots: dict[str, Published] = {}
                for name, entry in stored.items():
                    if loaded.get(name) != entry.version:
                        found = await load_snapshot(conn, entry.kind, name, entry.version)
                        if found is not None:
                            snapshots[entry.kind] = found
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
                self._loaded = await asyncio.to_thread(
                    self._loaded.rebuild, wanted, snapshots, sources
                )
            except Exception:
                # keep screening with what we have (results record its versions); the next
                # recorded version tries again
                log.exception("watch list reload failed", versions=wanted)
                return self._loaded
            log.info("watch lists reloaded", versions=self._loaded.versions, wanted=wanted)
            return self._loaded
