# Look-alike letters are what these tests are about.
# ruff: noqa: RUF001, RUF003
"""Screening disguised input: look-alikes, invisible characters, fullwidth forms, mixed
scripts; a declared country against the IBAN's; listed names inside free text. Against the
real OFAC 2021 list."""

from __future__ import annotations

import random
import sys

import pytest

from compliance.confusables import latin_lookalikes, lookalikes, parse_confusables
from compliance.free_text import screen_free_text
from compliance.iban_country import country_agrees_with_iban, iban_country
from compliance.lists import StaticWatchList, load_ofac
from compliance.matcher import Matcher, MatcherSettings
from compliance.names import fold_to_ascii, mixed_script_words, normalize_name
from kernel.settings import BUNDLED_SANCTIONS, PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "bench"))

import screening_disguise as disguise

MADURO = "22790"  # MADURO MOROS, Nicolas
BANCO_NACIONAL_DE_CUBA = "306"
DE_IBAN = "DE89370400440532013000"


@pytest.fixture(scope="module")
def ofac() -> StaticWatchList:
    return load_ofac(BUNDLED_SANCTIONS / "ofac-2021")


@pytest.fixture(scope="module")
def matcher(ofac: StaticWatchList) -> Matcher:
    return Matcher([ofac])


def found(matcher: Matcher, query: str, entity_id: str) -> bool:
    return disguise.found_by(matcher, query, entity_id)


# --- folding ---------------------------------------------------------------------------------


def test_ts39_data_reads_lookalikes_as_the_letter_a_reader_sees() -> None:
    table = lookalikes()
    assert table["ο"] == "o"  # Greek omicron
    assert table["с"] == "c"  # Cyrillic es
    assert table["օ"] == "o"  # Armenian oh
    assert table["Ꮇ"] == "M"  # Cherokee lu
    # TS #39's prototype of capital iota (and of capital I) is "l": read it as "I"
    assert table["Ι"] == "I"
    assert "a" not in table  # ASCII letters stay themselves


def test_lookalikes_keep_the_data_direction() -> None:
    data = "0441 ;\t0063 ;\tMA\t# ( с → c )\n0399 ;\t006C ;\tMA\t#\n0049 ;\t006C ;\tMA\t#\n"
    assert latin_lookalikes(parse_confusables(data)) == {"с": "c", "Ι": "I"}


@pytest.mark.parametrize(
    "disguised",
    [
        "Nicοlas Maduro Moros",  # one Greek omicron
        "Nicolas Madurο Mοrοs",
        "Nicοlαs Mαdurο Mοrοs",  # omicrons and alphas
        "ΝΙCΟLΑS ΜΑDURΟ ΜΟRΟS",  # Greek capitals
        "Ｎｉｃｏｌａｓ Ｍａｄｕｒｏ Ｍｏｒｏｓ",
        "Nico\u200blas Ma\u00addu\u200dro Mo\u2060ros\ufeff",
        "Nícolás Maduro Móros",
        "Nicolas Ꮇ\u0410DURO Mօros",  # Cherokee, Cyrillic, Armenian
    ],
)
def test_disguised_maduro_folds_to_the_plain_name(disguised: str) -> None:
    assert normalize_name(disguised) == "nicolas maduro moros"


def test_real_cyrillic_is_transliterated_not_read_as_lookalikes() -> None:
    # "Р" and "С" look like P and C but in a Cyrillic word they are r and s
    assert normalize_name("Владимир Путин") == "vladimir putin"
    assert normalize_name("РОСНЕФТЬ") == "rosneft"
    assert mixed_script_words("Владимир Путин") == ()


def test_a_greek_name_is_not_mistaken_for_lookalikes() -> None:
    # not every letter looks Latin: dropped as before (screened in its Latin transliteration)
    assert fold_to_ascii("Νικόλαος") == ""
    assert mixed_script_words("Νικόλαος Παπαδόπουλος") == ()


def test_words_that_mix_scripts_are_named() -> None:
    assert mixed_script_words("Nicοlas Maduro Moros") == ("Nicοlas",)
    # an invisible joiner does not hide the mix by splitting the word
    assert mixed_script_words("Mad\u200bur\u043e") == ("Madurо",)
    assert mixed_script_words("Nicolas Maduro") == ()
    assert mixed_script_words("Müller-Lüdenscheidt Qaʼida") == ()
    assert mixed_script_words("東京タワー") == ()  # Japanese mixes kanji and kana by nature


# --- screening -------------------------------------------------------------------------------


def test_every_greek_omicron_maduro_is_found(matcher: Matcher) -> None:
    plain = "Nicolas Maduro Moros"
    positions = [i for i, ch in enumerate(plain) if ch == "o"]
    for mask in range(1, 1 << len(positions)):
        chosen = {p for k, p in enumerate(positions) if mask >> k & 1}
        query = "".join("ο" if i in chosen else ch for i, ch in enumerate(plain))
        assert found(matcher, query, MADURO), query


def test_disguise_set_subset_is_found(matcher: Matcher, ofac: StaticWatchList) -> None:
    rng = random.Random(7)
    names = disguise.listed_names(ofac, matcher, 8)
    for plain, entity_id in names:
        for kind in disguise.KINDS:
            query = disguise.disguise(rng, kind, plain)
            assert found(matcher, query, entity_id), (kind, query)


def test_a_mixed_script_name_goes_to_review_even_without_a_hit(matcher: Matcher) -> None:
    clean = matcher.screening("Jane Doerring")
    assert clean.hits == () and clean.flags == () and clean.decision == "clear"
    mixed = matcher.screening("Jane Dοerring")  # Greek omicron
    assert [(f.kind, f.detail) for f in mixed.flags] == [("mixed_script", "Dοerring")]
    assert mixed.decision == "review"
    disguised = matcher.screening("Nicolas Madurο Moros")
    assert disguised.hits[0].entity_id == MADURO and disguised.decision == "block"


# --- country ---------------------------------------------------------------------------------


def test_iban_country() -> None:
    assert iban_country("DE89 3704 0044 0532 0130 00") == "DE"
    assert iban_country("DE89370400440532013001") is None  # bad checksum
    assert country_agrees_with_iban("Germany", DE_IBAN) is True
    assert country_agrees_with_iban("DEU", DE_IBAN) is True
    assert country_agrees_with_iban("VE", DE_IBAN) is False
    assert country_agrees_with_iban("nowhere", DE_IBAN) is None


def test_a_country_mismatch_never_clears_an_exact_name(ofac: StaticWatchList) -> None:
    matcher = Matcher([ofac], MatcherSettings())
    review = matcher.settings.review_threshold
    # exact name, wrong country and wrong party type: 1.0 - 0.05 - 0.10 would be 0.85
    hits = matcher.screen("Nicolas Maduro Moros", country="DE", party_type="company")
    hit = next(h for h in hits if h.entity_id == MADURO)
    assert hit.score >= review and hit.decision == "review"
    assert any("capped" in a.reason for a in hit.explanation.adjustments)
    # without the country the other adjustments alone may still take it lower: that is theirs
    alone = matcher.screen("Nicolas Maduro Moros", country="DE")
    assert next(h for h in alone if h.entity_id == MADURO).score == pytest.approx(0.95)


def test_a_country_that_contradicts_the_iban_is_flagged_and_ignored(matcher: Matcher) -> None:
    screening = matcher.screening("Nicolas Maduro Moros", country="DE", iban="VE" + "0" * 18)
    # an invalid IBAN says nothing: the declared country counts
    assert screening.flags == ()
    screening = matcher.screening("Nicolas Maduro Moros", country="VE", iban=DE_IBAN)
    assert [f.kind for f in screening.flags] == ["country_mismatch"]
    hit = next(h for h in screening.hits if h.entity_id == MADURO)
    assert hit.explanation.adjustments == ()  # neither the bonus nor the penalty


# --- free text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "entity_id"),
    [
        ("payment for BANCO NACIONAL DE CUBA invoice 42", BANCO_NACIONAL_DE_CUBA),
        ("Inv 2291 / Banco Nacional de Cuba / ref X7", BANCO_NACIONAL_DE_CUBA),
        ("consulting fee - Nicolas Maduro Moros - March", MADURO),
        ("consulting fee Nicolas Madurο Moros", MADURO),  # disguised inside the text
    ],
)
def test_listed_names_inside_free_text_are_found(
    matcher: Matcher, text: str, entity_id: str
) -> None:
    hits = screen_free_text(matcher, text).hits
    assert entity_id in {h.hit.entity_id for h in hits}


def test_free_text_hit_names_its_window(matcher: Matcher) -> None:
    (hit,) = screen_free_text(matcher, "payment for BANCO NACIONAL DE CUBA invoice 42").hits
    assert hit.window == "banco nacional de cuba" and hit.start == 2
    assert hit.hit.decision == "block"


@pytest.mark.parametrize(
    "text",
    [
        "Invoice 42",
        "rent March",
        "salary december 2024",
        "INV-2023-0042 consulting services",
        "payment for services rendered",
        "Refund order 123456",
        "Consulting fee John Smith",
        "Supplier payment ACME Trading Ltd",
        "International Import Export Company",  # "DES INTERNATIONAL CO., LTD." is listed
        "Rent 12 Main Street, London",
        "PO Box 1234 Dubai",
        "Havana street 3",
    ],
)
def test_ordinary_remittance_text_raises_nothing(matcher: Matcher, text: str) -> None:
    assert screen_free_text(matcher, text).hits == ()


def test_a_word_wholly_in_lookalikes_is_named_too() -> None:
    assert mixed_script_words("ΚΙΜ Jong Un") == ("ΚΙΜ",)  # Greek capitals
    assert normalize_name("ΚΙΜ Jong Un") == "kim jong un"
