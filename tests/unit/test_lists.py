"""Watch list loaders: OFAC's official CSV editions and the fictional PEP sample."""

from __future__ import annotations

from collections import Counter

import pytest

from compliance.lists import (
    EntityType,
    NameType,
    StaticWatchList,
    WatchList,
    country_code,
    load_ofac,
    load_pep_csv,
    parse_birth_years,
    parse_nationalities,
)
from kernel.settings import BUNDLED_SANCTIONS

SANCTIONS = BUNDLED_SANCTIONS


@pytest.fixture(scope="module")
def ofac2021() -> StaticWatchList:
    return load_ofac(SANCTIONS / "ofac-2021")


def test_ofac_2021_counts(ofac2021: StaticWatchList) -> None:
    assert isinstance(ofac2021, WatchList)
    assert ofac2021.name == "OFAC-SDN"
    assert len(ofac2021.entities) == 8976
    assert sum(len(e.aliases) for e in ofac2021.entities) == 11910
    assert Counter(e.type for e in ofac2021.entities) == {
        EntityType.INDIVIDUAL: 4620,
        EntityType.ENTITY: 3673,
        EntityType.VESSEL: 406,
        EntityType.AIRCRAFT: 277,
    }
    alias_types = Counter(a.name_type for e in ofac2021.entities for a in e.aliases)
    assert set(alias_types) == {NameType.AKA, NameType.FKA, NameType.NKA}


def test_ofac_entity_fields(ofac2021: StaticWatchList) -> None:
    cuba = ofac2021.get("306")
    assert cuba is not None
    assert cuba.primary_name == "BANCO NACIONAL DE CUBA"
    assert [a.name for a in cuba.aliases] == ["NATIONAL BANK OF CUBA"]
    assert cuba.type is EntityType.ENTITY
    assert cuba.programs == ("CUBA",)
    assert {"CH", "ES", "JP", "PA"} <= cuba.countries  # from add.csv
    ubl = ofac2021.get("6365")
    assert ubl is not None and ubl.type is EntityType.INDIVIDUAL
    assert ubl.birth_years == {1957, 1958}  # "DOB 30 Jul 1957; alt. DOB 1958" in Remarks
    anglo = ofac2021.get("173")
    assert anglo is not None and anglo.countries == {"GB"}


def test_versions_identify_content(ofac2021: StaticWatchList) -> None:
    ofac2019 = load_ofac(SANCTIONS / "ofac-2019")
    # sdn.csv of 2019 has 7,379 records; its last line has no newline, so `wc -l` says 7,378
    assert len(ofac2019.entities) == 7379
    assert ofac2021.version.startswith("ofac-2021:")
    assert ofac2019.version.startswith("ofac-2019:")
    assert load_ofac(SANCTIONS / "ofac-2021").version == ofac2021.version


def test_parse_birth_years() -> None:
    assert parse_birth_years("DOB 12 Jan 1960; POB Kabul") == {1960}
    assert parse_birth_years("DOB 1960; alt. DOB circa 1962.") == {1960, 1962}
    assert parse_birth_years("DOB 1958 to 1960; nationality Iran") == {1958, 1959, 1960}
    assert parse_birth_years("DOB Jan 1971") == {1971}
    assert parse_birth_years("Passport 123456 issued 1999") == set()
    assert parse_birth_years("") == set()


def test_country_codes() -> None:
    assert country_code("Korea, North") == "KP"
    assert country_code("Germany") == "DE"
    assert country_code("de") == "DE"
    assert country_code("IRN") == "IR"
    assert country_code("Region: Crimea") is None
    assert country_code("-0-") is None
    assert country_code(None) is None
    assert parse_nationalities("nationality Syria; citizen Korea, North.") == {"SY", "KP"}


def test_pep_sample_loads_through_the_same_interface() -> None:
    pep = load_pep_csv()
    assert isinstance(pep, WatchList)
    assert pep.name == "PEP" and pep.version.startswith("pep-sample:")
    assert len(pep.entities) >= 30
    for entity in pep.entities:
        assert entity.id.startswith("PEP-FICT-")
        assert entity.type is EntityType.INDIVIDUAL
        assert entity.programs == ("PEP",)
        assert entity.remarks.startswith("Fictional ")
        assert len(entity.countries) == 1 and len(entity.birth_years) == 1
    meltikova = pep.get("PEP-FICT-002")
    assert meltikova is not None
    assert meltikova.primary_name == "Zorvana Meltikova"
    assert meltikova.countries == {"RU"} and meltikova.birth_years == {1970}
