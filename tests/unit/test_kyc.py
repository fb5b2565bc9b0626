"""KYC rules: each rule changes the outcome it should, and explains itself."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from compliance.kyc import (
    CountryRisk,
    CustomerFacts,
    ListMatch,
    check_identifier,
    evaluate,
    load_country_risk,
    review_date_for,
)

TODAY = date(2026, 11, 29)
LONDON = {"line1": "12 St James's Square", "city": "London", "postal_code": "SW1Y", "country": "GB"}
BERLIN = {"line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117", "country": "DE"}
# valid examples from python-stdnum's own documentation
DE_IDNR = "36 574 261 809"
DE_VAT = "DE136695976"
DE_REGISTER = "Berlin HRB 12345"


def individual(**overrides: object) -> CustomerFacts:
    values: dict[str, object] = dict(
        type="individual",
        name="Ada Lovelace",
        country="GB",
        address=LONDON,
        date_of_birth=date(1990, 1, 1),
    )
    values.update(overrides)
    return CustomerFacts(**values)  # type: ignore[arg-type]


def business(**overrides: object) -> CustomerFacts:
    values: dict[str, object] = dict(
        type="business",
        name="Acme GmbH",
        country="DE",
        address=BERLIN,
        registration_number=DE_REGISTER,
    )
    values.update(overrides)
    return CustomerFacts(**values)  # type: ignore[arg-type]


def test_adult_in_low_risk_country_is_approved_low_risk() -> None:
    decision = evaluate(individual(), TODAY)
    assert (decision.status, decision.risk_tier, decision.reasons) == ("approved", "low", [])
    assert decision.review_date == date(2029, 11, 29)


def test_review_date_follows_the_tier_and_survives_29_february() -> None:
    assert review_date_for("low", TODAY) == date(2029, 11, 29)
    assert review_date_for("medium", TODAY) == date(2028, 11, 29)
    assert review_date_for("high", TODAY) == date(2027, 11, 29)
    assert review_date_for("high", date(2028, 2, 29)) == date(2029, 2, 28)


def test_age_is_computed_to_the_day() -> None:
    turns_18_tomorrow = individual(date_of_birth=date(2008, 11, 30))
    turns_18_today = individual(date_of_birth=date(2008, 11, 29))
    minor = evaluate(turns_18_tomorrow, TODAY)
    assert minor.status == "rejected"
    assert minor.reasons == ["individual is younger than 18"]
    assert evaluate(turns_18_today, TODAY).status == "approved"


def test_impossible_birth_dates_reject() -> None:
    assert evaluate(individual(date_of_birth=date(2030, 1, 1)), TODAY).reasons == [
        "date_of_birth is in the future"
    ]
    assert evaluate(individual(date_of_birth=date(1890, 1, 1)), TODAY).status == "rejected"


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        (individual(date_of_birth=None), "date_of_birth is required for individual customers"),
        (individual(address=None), "address is required for individual customers"),
        (individual(name="  "), "name is required for individual customers"),
        (
            business(registration_number=None),
            "registration_number is required for business customers",
        ),
        (business(address=None), "address is required for business customers"),
        (
            individual(address={**LONDON, "city": ""}),
            "address is incomplete: city missing",
        ),
        (individual(country="ZZ"), "country ZZ is not an ISO 3166-1 country code"),
    ],
)
def test_missing_required_fields_reject(facts: CustomerFacts, reason: str) -> None:
    decision = evaluate(facts, TODAY)
    assert decision.status == "rejected"
    assert reason in decision.reasons


def test_required_fields_differ_by_type() -> None:
    # a business has no birth date, an individual no registration number: neither is missing
    assert evaluate(business(), TODAY).status == "approved"
    assert evaluate(individual(registration_number=None), TODAY).status == "approved"


def test_valid_national_id_and_tax_numbers_pass() -> None:
    person = individual(country="DE", address=BERLIN, national_id=DE_IDNR, tax_id=DE_IDNR)
    assert evaluate(person, TODAY).status == "approved"
    company = business(tax_id=DE_VAT)
    decision = evaluate(company, TODAY)
    assert (decision.status, decision.risk_tier, decision.notes) == ("approved", "medium", [])


def test_invalid_national_id_rejects_with_a_clear_reason() -> None:
    decision = evaluate(individual(country="DE", address=BERLIN, national_id="36574261808"), TODAY)
    assert decision.status == "rejected"
    assert decision.reasons == [
        "national_id is not a valid DE IdNr: The number's checksum or check digit is invalid."
    ]


def test_invalid_tax_number_and_registration_number_reject() -> None:
    bad_vat = evaluate(business(tax_id="DE136695975"), TODAY)
    assert bad_vat.status == "rejected"
    assert bad_vat.reasons[0].startswith("tax_id is not a valid DE ")
    bad_register = evaluate(business(registration_number="HRB 12345"), TODAY)
    assert bad_register.status == "rejected"
    assert bad_register.reasons[0].startswith("registration_number is not a valid DE ")


def test_an_identifier_valid_under_any_of_the_country_schemes_passes() -> None:
    # Spain: citizens carry a DNI, residents an NIE
    assert check_identifier("national_id", "12345678Z", "ES").valid is True
    assert check_identifier("national_id", "X1234567L", "ES").valid is True
    refused = check_identifier("national_id", "12345678A", "ES")
    assert (refused.valid, refused.scheme) == (False, "DNI or NIE")


def test_unknown_identifier_format_is_accepted_with_a_note() -> None:
    # stdnum knows no British national identity number
    decision = evaluate(individual(national_id="AB123456C"), TODAY)
    assert decision.status == "approved"
    assert decision.reasons == []
    assert decision.notes == ["national_id format not verified: no known national_id format for GB"]


def test_prohibited_country_rejects_and_high_risk_country_goes_to_review() -> None:
    prohibited = evaluate(individual(country="KP"), TODAY)
    assert (prohibited.status, prohibited.risk_tier) == ("rejected", "high")
    assert prohibited.reasons[0].startswith("country KP is prohibited")
    risky = evaluate(individual(country="RU"), TODAY)
    assert (risky.status, risky.risk_tier) == ("in_review", "high")
    assert risky.review_date == date(2027, 11, 29)


def test_the_address_country_is_risk_assessed_too() -> None:
    living_in_iran = evaluate(individual(address={**LONDON, "country": "IR"}), TODAY)
    assert living_in_iran.status == "rejected"
    assert living_in_iran.reasons[0].startswith("address country IR is prohibited")


def test_country_risk_list_is_data(tmp_path: Path) -> None:
    path = tmp_path / "risk.csv"
    path.write_text("country,level,reason\nGB,high,test listing\n")
    risk = load_country_risk(path)
    decision = evaluate(individual(), TODAY, country_risk=risk)
    assert decision.status == "in_review"
    assert decision.reasons == ["country GB is high risk (test listing)"]
    path.write_text("country,level,reason\nGB,medium,\n")
    with pytest.raises(ValueError, match="unknown risk level"):
        load_country_risk(path)
    assert evaluate(individual(), TODAY, country_risk=CountryRisk({})).status == "approved"


def test_business_is_at_least_medium_risk() -> None:
    assert evaluate(business(), TODAY).risk_tier == "medium"
    assert evaluate(business(), TODAY).review_date == date(2028, 11, 29)


PEP = ListMatch("pep", "PEP", "PEP-FICT-007", "Lucinda Pemberwick", 1.0, "block")


def test_pep_goes_to_review_at_high_risk_whatever_the_score() -> None:
    decision = evaluate(individual(), TODAY, [PEP])
    assert (decision.status, decision.risk_tier) == ("in_review", "high")
    assert decision.reasons == [
        "politically exposed person: matches PEP PEP-FICT-007 Lucinda Pemberwick (score 1.00)"
    ]


def test_sanctions_potential_match_reviews_and_confirmed_match_rejects() -> None:
    potential = ListMatch("sanctions", "OFAC-SDN", "23253", "KARLOV, Gennady", 0.9, "review")
    confirmed = ListMatch("sanctions", "OFAC-SDN", "23253", "KARLOV, Gennady", 0.99, "block")
    reviewed = evaluate(individual(), TODAY, [potential])
    assert (reviewed.status, reviewed.risk_tier) == ("in_review", "high")
    assert reviewed.reasons[0].startswith("sanctions: potential match with OFAC-SDN 23253")
    rejected = evaluate(individual(), TODAY, [potential, confirmed])
    assert (rejected.status, rejected.risk_tier) == ("rejected", "high")
    # a match below the review threshold is no evidence at all
    clear = ListMatch("sanctions", "OFAC-SDN", "1", "X", 0.5, "clear")
    assert evaluate(individual(), TODAY, [clear]).status == "approved"


def test_outcome_is_the_worst_any_rule_asks_for_and_every_reason_is_kept() -> None:
    decision = evaluate(individual(country="RU", date_of_birth=date(2015, 1, 1)), TODAY, [PEP])
    assert (decision.status, decision.risk_tier) == ("rejected", "high")
    assert len(decision.reasons) == 3
