"""KYC rules: each rule changes the outcome it should, and explains itself."""

from __future__ import annotations

from datetime import date

from compliance.kyc import CustomerFacts, evaluate

TODAY = date(2026, 11, 29)


def individual(**overrides: object) -> CustomerFacts:
    values: dict[str, object] = dict(
        type="individual", name="Ada Lovelace", country="GB", date_of_birth=date(1990, 1, 1)
    )
    values.update(overrides)
    return CustomerFacts(**values)  # type: ignore[arg-type]


def test_adult_in_low_risk_country_is_approved_low_risk() -> None:
    decision = evaluate(individual(), TODAY)
    assert (decision.status, decision.risk_tier, decision.reasons) == ("approved", "low", [])
    assert decision.review_date == date(2029, 11, 28)


def test_age_is_computed_to_the_day() -> None:
    turns_18_tomorrow = individual(date_of_birth=date(2008, 11, 30))
    turns_18_today = individual(date_of_birth=date(2008, 11, 29))
    assert evaluate(turns_18_tomorrow, TODAY).status == "rejected"
    assert evaluate(turns_18_today, TODAY).status == "approved"


def test_missing_required_fields_reject() -> None:
    assert evaluate(individual(date_of_birth=None), TODAY).status == "rejected"
    business = CustomerFacts(type="business", name="Acme GmbH", country="DE")
    decision = evaluate(business, TODAY)
    assert decision.status == "rejected"
    assert decision.reasons == ["registration_number is required for businesses"]


def test_prohibited_country_rejects_and_high_risk_country_goes_to_review() -> None:
    prohibited = evaluate(individual(country="KP"), TODAY)
    assert (prohibited.status, prohibited.risk_tier) == ("rejected", "high")
    risky = evaluate(individual(country="RU"), TODAY)
    assert (risky.status, risky.risk_tier) == ("in_review", "high")
    assert risky.review_date == date(2027, 11, 29)


def test_business_with_registration_is_medium_risk() -> None:
    business = CustomerFacts(
        type="business", name="Acme GmbH", country="DE", registration_number="HRB 12345"
    )
    assert evaluate(business, TODAY).risk_tier == "medium"
