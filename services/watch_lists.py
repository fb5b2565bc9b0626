"""Watch lists as versioned data, shared by the workers (screening) and the API
(`POST /v1/screenings`).

* `ListSources` says where the lists come from (`lists.sanctions_source`: a directory of OFAC
  CSV files or an http(s) URL serving them; `lists.pep_source`: a PEP CSV path or URL).
* `WatchLists` is a process's loaded lists (matchers). It compares the versions it loaded
  with the current versions recorded in `watch_list_versions` at most every
  `list_version_check_seconds`, and reloads from the recorded source when they changed, so a
  refresh run by any worker reaches every worker and the API.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from compliance.lists import DEFAULT_PEP_PATH, StaticWatchList, load_ofac, load_pep_csv
from compliance.matcher import Hit, Matcher, MatcherSettings
from kernel.settings import Settings
from kernel.tables import watch_list_versions
from workflows.models import CustomerScreeningResult, ListRefreshInput, ScreeningHit

log = structlog.get_logger()
OFAC_FILES = ("sdn.csv", "alt.csv", "add.csv")
DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


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
        return cls(engine, loaded, check_seconds=settings.lists.version_check_seconds)

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
