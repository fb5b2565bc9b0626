"""The list refresh guards (#17): what a new watch-list version must pass to replace the
current one, and which redirects a download may follow."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from compliance.lists import (
    DEFAULT_PEP_PATH,
    EntityName,
    EntityType,
    ListEntity,
    StaticWatchList,
    load_ofac,
    load_pep_csv,
)
from kernel.settings import Settings, setting_paths
from services.watch_lists import (
    ListGuards,
    ListRefusedError,
    RefusalReason,
    _same_host,
    fetch_pep,
    fetch_sanctions,
)

BUNDLED = Path(__file__).resolve().parents[2] / "compliance" / "data" / "sanctions" / "ofac-2021"


def listing(size: int, digest: str = "") -> StaticWatchList:
    """A list of `size` entities."""
    entities = tuple(
        ListEntity(str(i), EntityType.ENTITY, (EntityName(f"Entity {i}"),)) for i in range(size)
    )
    return StaticWatchList("OFAC-SDN", f"test:{size}", entities, digest)


def refusal(guards: ListGuards, new: StaticWatchList, current: int | None) -> str | None:
    """The reason `guards` refuse `new` after a version of `current` entities, or None."""
    try:
        guards.check(new, current)
    except ListRefusedError as error:
        return error.reason.value
    return None


def test_a_list_shrinking_by_more_than_the_share_is_refused() -> None:
    guards = ListGuards(max_shrink_share=0.2, min_entities=1)
    assert refusal(guards, listing(800), 1000) is None  # exactly the share
    assert refusal(guards, listing(799), 1000) == RefusalReason.SHRINK
    assert refusal(guards, listing(500), 1000) == RefusalReason.SHRINK
    assert refusal(guards, listing(1500), 1000) is None  # growth is never refused
    assert refusal(guards, listing(10), None) is None  # nothing to shrink from
    # a share of 0 refuses any shrinking; 1 turns the guard off
    assert refusal(ListGuards(0.0, 1), listing(999), 1000) == RefusalReason.SHRINK
    assert refusal(ListGuards(1.0, 1), listing(1), 1000) is None


def test_a_list_below_the_floor_is_refused_even_without_a_current_version() -> None:
    guards = ListGuards(max_shrink_share=0.2, min_entities=1000)
    assert refusal(guards, listing(999), None) == RefusalReason.BELOW_FLOOR
    assert refusal(guards, listing(0), 0) == RefusalReason.BELOW_FLOOR
    assert refusal(guards, listing(1000), 1000) is None


def test_a_pinned_digest_must_match() -> None:
    edition = load_ofac(BUNDLED)
    # the pin is what `cat sdn.csv alt.csv add.csv | sha256sum` prints
    concatenated = b"".join(
        (BUNDLED / name).read_bytes() for name in ("sdn.csv", "alt.csv", "add.csv")
    )
    assert edition.digest == hashlib.sha256(concatenated).hexdigest()
    assert edition.version.endswith(edition.digest[:12])
    pinned = ListGuards(0.2, 1, sha256=edition.digest)
    assert refusal(pinned, edition, len(edition.entities)) is None
    assert refusal(pinned, listing(len(edition.entities), "0" * 64), None) == (
        RefusalReason.DIGEST_MISMATCH
    )
    assert refusal(ListGuards(0.2, 1), listing(5, "anything"), None) is None  # no pin


def test_guards_come_from_the_settings_per_list_kind() -> None:
    pin = "AB" * 32
    settings = Settings().updated(
        {
            "lists.max_shrink_share": 0.1,
            "lists.sanctions_min_entities": 5000,
            "lists.pep_min_entities": 3,
            "lists.sanctions_sha256": pin,
        }
    )
    assert ListGuards.configured(settings, "sanctions") == ListGuards(0.1, 5000, pin.lower())
    assert ListGuards.configured(settings, "pep") == ListGuards(0.1, 3, "")
    defaults = Settings().lists
    assert (defaults.max_shrink_share, defaults.sanctions_min_entities) == (0.2, 1000)
    with pytest.raises(ValueError, match="sanctions_sha256"):
        Settings().updated({"lists.sanctions_sha256": "not-a-digest"})
    with pytest.raises(ValueError, match="max_shrink_share"):
        Settings().updated({"lists.max_shrink_share": 1.5})
    # read from the environment as PAYMENTS_LIST_<FIELD>
    assert {
        "PAYMENTS_LIST_MAX_SHRINK_SHARE": "lists.max_shrink_share",
        "PAYMENTS_LIST_SANCTIONS_SHA256": "lists.sanctions_sha256",
    }.items() <= setting_paths().items()


@pytest.mark.parametrize(
    ("origin", "target", "allowed"),
    [
        ("http://127.0.0.1:8000/a", "http://127.0.0.1:8000/b", True),
        ("https://lists.example/a", "https://LISTS.example/b", True),
        ("http://lists.example/a", "https://lists.example/a", True),  # upgraded
        ("https://lists.example/a", "http://lists.example/a", False),  # downgraded
        ("http://127.0.0.1:8000/a", "http://127.0.0.2:8000/a", False),
        ("http://127.0.0.1:8000/a", "http://localhost:8000/a", False),
        ("http://127.0.0.1:8000/a", "http://127.0.0.1:9000/a", False),
        ("https://lists.example/a", "https://lists.example.evil/a", False),
    ],
)
def test_redirects_are_followed_only_within_the_configured_host(
    origin: str, target: str, allowed: bool
) -> None:
    assert _same_host(httpx.URL(origin), httpx.URL(target)) is allowed


def test_published_files_load_as_the_same_version_wherever_they_are_staged() -> None:
    # what a snapshot stores is what the version was computed from
    sanctions = fetch_sanctions(str(BUNDLED))
    assert sorted(sanctions.files) == [
        "ofac-2021/add.csv",
        "ofac-2021/alt.csv",
        "ofac-2021/sdn.csv",
    ]
    loaded = sanctions.load()
    assert (loaded.version, loaded.digest) == (
        load_ofac(BUNDLED).version,
        load_ofac(BUNDLED).digest,
    )
    pep = fetch_pep(str(DEFAULT_PEP_PATH))
    assert pep.load().version == load_pep_csv(DEFAULT_PEP_PATH).version
