"""KYC rules for a customer at onboarding (DESIGN §5, issue #4).

Plain Python, no I/O beyond reading the bundled country risk list once: the onboarding
workflow's activity calls `evaluate` with the customer's facts, the screening matches and the
decision date, so the same inputs always give the same decision.

The rules are deliberately explainable: each rule that fires adds a reason, and the outcome is
the worst outcome any rule asks for (`rejected` > `in_review` > `approved`); the risk tier is
the highest tier any rule asks for. Facts that could not be checked (an identifier format the
platform does not know for a country) do not change the outcome; they are kept as `notes` so a
reviewer sees what was not verified.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

import pycountry
from stdnum.exceptions import ValidationError
from stdnum.util import get_cc_module

KycStatus = Literal["approved", "in_review", "rejected"]
RiskTier = Literal["low", "medium", "high"]
CustomerType = Literal["individual", "business"]
MatchKind = Literal["sanctions", "pep"]
CountryRiskLevel = Literal["prohibited", "high"]

MINIMUM_AGE_YEARS = 18
# older than this is a typo or a synthetic identity, not a customer
MAXIMUM_AGE_YEARS = 120
# re-verification ("periodic review") interval by risk tier, in years
REVIEW_INTERVAL_YEARS: dict[RiskTier, int] = {"low": 3, "medium": 2, "high": 1}
DEFAULT_COUNTRY_RISK_PATH = Path(__file__).resolve().parent / "data" / "country-risk.csv"
ADDRESS_FIELDS = ("line1", "city", "postal_code", "country")
# Kosovo: a user-assigned ISO code in common use (banks, OFAC) that pycountry does not list
EXTRA_COUNTRIES = frozenset({"XK"})

_SEVERITY: dict[KycStatus, int] = {"approved": 0, "in_review": 1, "rejected": 2}
_TIER_ORDER: dict[RiskTier, int] = {"low": 0, "medium": 1, "high": 2}

# Identifier formats: python-stdnum module names per country, tried in order (the first that
# accepts the value wins). Countries missing here fall back to stdnum's own aliases
# (`personalid`, `vat`, `businessid`, `tin`); a country with none is not checked (a note).
NATIONAL_ID_SCHEMES: dict[str, tuple[str, ...]] = {
    "BE": ("nn", "bis"),
    "BG": ("egn", "pnf"),
    "BR": ("cpf",),
    "CA": ("sin",),
    "CH": ("ssn",),
    "CL": ("rut",),
    "CN": ("ric",),
    "CU": ("ni",),
    "CZ": ("rc",),
    "DE": ("idnr",),
    "DO": ("cedula",),
    "EC": ("ci",),
    "ES": ("dni", "nie"),
    "FR": ("nir",),
    "GR": ("amka",),
    "HR": ("oib",),
    "ID": ("nik",),
    "IE": ("pps",),
    "IL": ("idnr",),
    "IN": ("aadhaar",),
    "IT": ("codicefiscale",),
    "JP": ("in_",),
    "KR": ("rrn",),
    "LT": ("asmens",),
    "MU": ("nid",),
    "MY": ("nric",),
    "NL": ("bsn",),
    "PE": ("cui",),
    "PK": ("cnic",),
    "PL": ("pesel",),
    "PT": ("cc",),
    "RO": ("cnp",),
    "SK": ("rc",),
    "TH": ("pin",),
    "TR": ("tckimlik",),
    "UA": ("rntrc",),
    "US": ("ssn",),
    "ZA": ("idnr",),
}
PERSONAL_TAX_ID_SCHEMES: dict[str, tuple[str, ...]] = {
    "AT": ("tin",),
    "AU": ("tfn",),
    "BR": ("cpf",),
    "DE": ("idnr", "stnr"),
    "ES": ("nif",),
    "FR": ("nif",),
    "GB": ("utr",),
    "IN": ("pan",),
    "IT": ("codicefiscale",),
    "MX": ("rfc",),
    "NZ": ("ird",),
    "PL": ("pesel", "nip"),
    "PT": ("nif",),
    "RU": ("inn",),
    "US": ("ssn", "itin"),
    "ZA": ("tin",),
}
BUSINESS_TAX_ID_SCHEMES: dict[str, tuple[str, ...]] = {
    "DE": ("vat", "stnr"),
    "GB": ("vat", "utr"),
    "IN": ("gstin", "pan"),
    "US": ("ein",),
}
REGISTRATION_SCHEMES: dict[str, tuple[str, ...]] = {
    "AU": ("acn", "abn"),
    "BE": ("vat",),
    "CH": ("uid",),
    "CN": ("uscc",),
    "DE": ("handelsregisternummer",),
    "FR": ("siren", "siret", "rcs"),
    "IL": ("hp",),
    "JP": ("cn",),
    "KR": ("brn",),
    "MD": ("idno",),
    "NO": ("orgnr",),
    "PL": ("regon",),
    "RO": ("onrc", "cui"),
    "RU": ("ogrn",),
    "SE": ("orgnr",),
    "SG": ("uen",),
    "UA": ("edrpou",),
}
IdentifierKind = Literal["national_id", "tax_id", "registration_number"]


@dataclass(frozen=True)
class CustomerFacts:
    """What the rules look at (the customer as submitted at onboarding)."""

    type: CustomerType
    name: str
    country: str
    address: Mapping[str, str] | None = None
    date_of_birth: date | None = None
    national_id: str | None = None
    tax_id: str | None = None
    registration_number: str | None = None


@dataclass(frozen=True)
class ListMatch:
    """A screening hit of the customer, as the rules see it."""

    kind: MatchKind
    list_name: str
    entity_id: str
    matched_name: str
    score: float
    # the matcher's decision for the score: "review" (potential) or "block" (confirmed)
    decision: str = "review"


@dataclass(frozen=True)
class KycDecision:
    """Outcome of the KYC rules, with the reasons that explain it."""

    status: KycStatus
    risk_tier: RiskTier
    review_date: date
    reasons: list[str] = field(default_factory=list)
    # facts that could not be verified (they do not change the outcome)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class IdentifierCheck:
    """The format check of one identifier: `valid` None means no known format to check."""

    valid: bool | None
    scheme: str = ""
    detail: str = ""


@dataclass(frozen=True)
class CountryRisk:
    """The country risk list: prohibited and high-risk jurisdictions, with why."""

    levels: Mapping[str, tuple[CountryRiskLevel, str]]

    def level(self, country: str) -> tuple[CountryRiskLevel, str] | None:
        """The risk level of `country` and its reason; None for standard risk."""
        return self.levels.get(country.upper())


def load_country_risk(path: Path = DEFAULT_COUNTRY_RISK_PATH) -> CountryRisk:
    """Read a country risk CSV (`country,level,reason`; level prohibited or high)."""
    levels: dict[str, tuple[CountryRiskLevel, str]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            level = row["level"].strip()
            if level not in ("prohibited", "high"):
                raise ValueError(f"{path}: unknown risk level {level!r} for {row['country']}")
            levels[row["country"].strip().upper()] = (
                "prohibited" if level == "prohibited" else "high",
                row.get("reason", "").strip(),
            )
    return CountryRisk(levels)


@lru_cache(maxsize=1)
def default_country_risk() -> CountryRisk:
    """The bundled country risk list (read once per process)."""
    return load_country_risk()


def review_date_for(tier: RiskTier, decided_on: date) -> date:
    """The re-verification date of a decision taken on `decided_on` at `tier`."""
    years = REVIEW_INTERVAL_YEARS[tier]
    try:
        return decided_on.replace(year=decided_on.year + years)
    except ValueError:  # 29 February into a common year
        return decided_on.replace(year=decided_on.year + years, day=28)


def age_on(born: date, today: date) -> int:
    """Completed years of age on `today`."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def is_country(code: str) -> bool:
    """True for an ISO 3166-1 alpha-2 code (plus the user-assigned XK)."""
    code = code.upper()
    return code in EXTRA_COUNTRIES or pycountry.countries.get(alpha_2=code) is not None


def _schemes(kind: IdentifierKind, customer_type: CustomerType, country: str) -> tuple[str, ...]:
    if kind == "national_id":
        return NATIONAL_ID_SCHEMES.get(country, ("personalid",))
    if kind == "registration_number":
        return REGISTRATION_SCHEMES.get(country, ("businessid",))
    if customer_type == "business":
        return BUSINESS_TAX_ID_SCHEMES.get(country, ("vat", "tin"))
    return PERSONAL_TAX_ID_SCHEMES.get(country, ("tin", "personalid"))


def _short_name(module: object) -> str:
    # stdnum's docstrings start "IdNr (Steuerliche Identifikationsnummer, ...)."
    doc = (getattr(module, "__doc__", None) or "").strip().splitlines()
    name = doc[0].split(" (")[0].rstrip(".") if doc else ""
    return name or str(getattr(module, "__name__", "?")).rsplit(".", 1)[-1]


def check_identifier(
    kind: IdentifierKind, value: str, country: str, customer_type: CustomerType = "individual"
) -> IdentifierCheck:
    """Check the format (length, structure, check digits) of an identifier for `country`."""
    country = country.upper()
    modules = [
        module
        for name in _schemes(kind, customer_type, country)
        if (module := get_cc_module(country, name)) is not None
    ]
    if not modules:
        return IdentifierCheck(None, detail=f"no known {kind} format for {country}")
    errors: list[str] = []
    for module in modules:
        try:
            module.validate(value)
        except ValidationError as err:
            if str(err) not in errors:
                errors.append(str(err))
        else:
            return IdentifierCheck(True, _short_name(module))
    schemes = " or ".join(dict.fromkeys(_short_name(m) for m in modules))
    return IdentifierCheck(False, schemes, " ".join(errors))


class _Outcome:
    """Accumulates the outcome: the worst status and highest tier any rule asked for."""

    def __init__(self, tier: RiskTier) -> None:
        self.status: KycStatus = "approved"
        self.tier: RiskTier = tier
        self.reasons: list[str] = []
        self.notes: list[str] = []

    def ask(self, status: KycStatus, reason: str, tier: RiskTier | None = None) -> None:
        self.reasons.append(reason)
        if _SEVERITY[status] > _SEVERITY[self.status]:
            self.status = status
        if tier is not None and _TIER_ORDER[tier] > _TIER_ORDER[self.tier]:
            self.tier = tier


def _required_fields(facts: CustomerFacts, outcome: _Outcome) -> None:
    required: dict[str, object] = {
        "name": facts.name.strip(),
        "country": facts.country.strip(),
        "address": facts.address,
    }
    if facts.type == "individual":
        required["date_of_birth"] = facts.date_of_birth
    else:
        required["registration_number"] = (facts.registration_number or "").strip()
    for name, value in required.items():
        if not value:
            outcome.ask("rejected", f"{name} is required for {facts.type} customers")
    if facts.address:
        missing = [f for f in ADDRESS_FIELDS if not str(facts.address.get(f) or "").strip()]
        if missing:
            outcome.ask("rejected", f"address is incomplete: {', '.join(missing)} missing")
    if facts.country and not is_country(facts.country):
        outcome.ask("rejected", f"country {facts.country} is not an ISO 3166-1 country code")


def _identifiers(facts: CustomerFacts, outcome: _Outcome) -> None:
    given: list[tuple[IdentifierKind, str | None]] = [("tax_id", facts.tax_id)]
    if facts.type == "individual":
        given.insert(0, ("national_id", facts.national_id))
    else:
        given.append(("registration_number", facts.registration_number))
    for kind, value in given:
        if not value or not value.strip() or not is_country(facts.country):
            continue
        check = check_identifier(kind, value, facts.country, facts.type)
        if check.valid is False:
            outcome.ask(
                "rejected", f"{kind} is not a valid {facts.country} {check.scheme}: {check.detail}"
            )
        elif check.valid is None:
            outcome.notes.append(f"{kind} format not verified: {check.detail}")


def _age(facts: CustomerFacts, today: date, outcome: _Outcome) -> None:
    if facts.type != "individual" or facts.date_of_birth is None:
        return
    if facts.date_of_birth > today:
        outcome.ask("rejected", "date_of_birth is in the future")
        return
    age = age_on(facts.date_of_birth, today)
    if age < MINIMUM_AGE_YEARS:
        outcome.ask("rejected", f"individual is younger than {MINIMUM_AGE_YEARS}")
    elif age > MAXIMUM_AGE_YEARS:
        outcome.ask("rejected", f"date_of_birth is implausible (older than {MAXIMUM_AGE_YEARS})")


def _countries(facts: CustomerFacts, risk: CountryRisk, outcome: _Outcome) -> None:
    places = {"country": facts.country.upper()}
    if facts.address and facts.address.get("country"):
        places["address country"] = str(facts.address["country"]).upper()
    seen: set[str] = set()
    for label, code in places.items():
        level = risk.level(code)
        if level is None or code in seen:
            continue
        seen.add(code)
        kind, why = level
        detail = f" ({why})" if why else ""
        if kind == "prohibited":
            outcome.ask("rejected", f"{label} {code} is prohibited{detail}", "high")
        else:
            outcome.ask("in_review", f"{label} {code} is high risk{detail}", "high")


def _matches(matches: Iterable[ListMatch], outcome: _Outcome) -> None:
    for match in matches:
        who = f"{match.list_name} {match.entity_id} {match.matched_name} (score {match.score:.2f})"
        if match.kind == "pep":
            # a PEP is not a reason to refuse, but always one for enhanced due diligence
            outcome.ask("in_review", f"politically exposed person: matches {who}", "high")
        elif match.decision == "block":
            outcome.ask("rejected", f"sanctions: confirmed match with {who}", "high")
        elif match.decision == "review":
            outcome.ask("in_review", f"sanctions: potential match with {who}", "high")


def evaluate(
    facts: CustomerFacts,
    today: date,
    matches: Sequence[ListMatch] = (),
    *,
    country_risk: CountryRisk | None = None,
) -> KycDecision:
    """Apply the KYC rules to a customer as of `today`, given its screening matches."""
    outcome = _Outcome("medium" if facts.type == "business" else "low")
    _required_fields(facts, outcome)
    _identifiers(facts, outcome)
    _age(facts, today, outcome)
    _countries(facts, country_risk or default_country_risk(), outcome)
    _matches(matches, outcome)
    return KycDecision(
        status=outcome.status,
        risk_tier=outcome.tier,
        review_date=review_date_for(outcome.tier, today),
        reasons=outcome.reasons,
        notes=outcome.notes,
    )
