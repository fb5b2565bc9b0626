"""The skeleton sanctions matcher against the real OFAC 2021 files."""

from __future__ import annotations

import pytest

from compliance.screening import SanctionsList, normalize
from tests.conftest import SANCTIONS_2021


@pytest.fixture(scope="module")
def ofac() -> SanctionsList:
    return SanctionsList(SANCTIONS_2021)


def test_loads_primary_names_and_aliases(ofac: SanctionsList) -> None:
    entities = {entry.entity_id for entry in ofac.entries}
    assert len(entities) == 8976
    assert len(ofac.entries) > len(entities)  # aliases from alt.csv
    assert ofac.version.startswith("ofac-2021:")


def test_exact_name_hits_with_explanation(ofac: SanctionsList) -> None:
    hits = ofac.screen("Banco Nacional de Cuba")
    assert [(h.entity_id, h.matched_name, h.score) for h in hits] == [
        ("306", "BANCO NACIONAL DE CUBA", 1.0)
    ]
    assert hits[0].list_version == ofac.version


def test_alias_hits_its_entity(ofac: SanctionsList) -> None:
    assert [h.entity_id for h in ofac.screen("National Bank of Cuba")] == ["306"]


def test_order_case_accents_and_punctuation_do_not_matter(ofac: SanctionsList) -> None:
    assert normalize("KHAN, Ali") == normalize("ali   khan") == "ali khan"
    assert normalize("Bánco Nacionál de Cúba!") == normalize("BANCO NACIONAL DE CUBA")
    assert "6864" in {h.entity_id for h in ofac.screen("Ali Khan")}


def test_near_exact_typo_hits_but_a_clean_name_does_not(ofac: SanctionsList) -> None:
    assert "306" in {h.entity_id for h in ofac.screen("Banco Nacional de Cubaa")}
    assert ofac.screen("Erika Mustermann") == []
    assert ofac.screen("") == []
