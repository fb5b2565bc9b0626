"""Whether a party's declared country agrees with the country of its IBAN."""

from __future__ import annotations

from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from compliance.lists import country_code


def iban_country(iban: str) -> str | None:
    """The ISO alpha-2 country of a valid IBAN (its first two letters), None when `iban` is
    not a valid IBAN (bad checksum, length or country)."""
    try:
        return str(IBAN(iban).country_code)
    except (SchwiftyException, ValueError):
        return None


def country_agrees_with_iban(country: str, iban: str) -> bool | None:
    """True when `country` (ISO alpha-2/alpha-3 or an English name) is the IBAN's country,
    False when it is another one, None when either is unknown or invalid.

    Overseas territories that use their parent's IBAN country are not matched up: a party in
    French Guiana ("GF") with a French ("FR") IBAN is reported as a mismatch, for a person to
    accept.
    """
    declared = country_code(country)
    account = iban_country(iban)
    if declared is None or account is None:
        return None
    return declared == account
