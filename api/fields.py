"""Constrained field types shared by bodies, paths and queries.

Each type states in the OpenAPI document exactly what the server enforces, so that a request
the document calls valid is never refused as malformed (issue #22): the same constraint
validates the request and documents it.

Patterns use only the regular-expression syntax that Python's `re`, Rust `regex`
(pydantic-core) and ECMA-262 (JSON Schema validators, generated clients) read alike:
character classes with `\\xNN` and `\\uNNNN` escapes, no `\\s`, `\\d` or `\\w` (whose meaning
differs between them).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints

# ISO 4217 currencies the platform holds accounts in, with their minor units
CURRENCIES: dict[str, int] = {"EUR": 2, "USD": 2}
MAX_AMOUNT = 100_000_000_000  # 1bn in minor units: above that, a human should be involved

# any text without NUL (PostgreSQL text cannot hold it; the server refuses it everywhere)
NO_NUL = r"^[^\x00]*$"
# one line of text: no control characters (C0, DEL)
ONE_LINE = r"^[^\x00-\x1f\x7f]+$"
# the characters Python's `str.isspace` and `\s` call white space, plus the C0 and C1 controls:
# none of them can appear in a URL
_URL_EXCLUDED = r"\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
WEBHOOK_URL = rf"^https?://[^{_URL_EXCLUDED}]+$"


def _id_pattern(prefix: str) -> str:
    # ids are `<prefix>_` + lower-case base32 (kernel.ids); derived ones (events, reconciliation
    # runs) add `_`- or `-`-separated parts
    return rf"^{prefix}_[0-9a-z_-]{{1,80}}$"


CUSTOMER_ID = _id_pattern("cus")
ACCOUNT_ID = _id_pattern("acc")
PAYMENT_ID = _id_pattern("pay")
DEPOSIT_ID = _id_pattern("dep")
EVENT_ID = _id_pattern("evt")
WEBHOOK_ENDPOINT_ID = _id_pattern("we")
RECONCILIATION_ID = _id_pattern("rec")
COUNTERPARTY_ID = _id_pattern("cpt")
BATCH_ID = _id_pattern("bat")
SCHEDULE_ID = _id_pattern("psch")
# an entry is `<account id>:<version>` (the account's version right after it)
ENTRY_ID = r"^acc_[0-9a-z_-]{1,80}:[0-9]{1,18}$"
# event types are `<object>.<what happened>`, e.g. `payment.settled`
EVENT_TYPE = r"^[a-z_]{1,40}\.[a-z_]{1,40}$"

EXAMPLE_CUSTOMER_ID = "cus_01jdz3k5v8m2n4p6q8r0s2t4v6"
EXAMPLE_ACCOUNT_ID = "acc_01jdz3k7b2c4d6e8f0g2h4j6k8"
EXAMPLE_PAYMENT_ID = "pay_01jdz3m9x1y3z5a7b9c1d3e5f7"
EXAMPLE_BATCH_ID = "bat_01jdz3p1a2b3c4d5e6f7g8h9j0"
EXAMPLE_SCHEDULE_ID = "psch_01jdz3q4r5s6t7v8w9x0y1z2a3"
EXAMPLE_DEPOSIT_ID = "dep_01jdz3k9c2d4e6f8g0h2j4k6m8"
EXAMPLE_COUNTERPARTY_ID = "cpt_01jdz3p2q4r6s8t0v2w4x6y8z0"
# the bank's reference of an incoming credit, as camt.053 carries it (`EndToEndId`, ISO
# Max35Text; the SWIFT character set, so every rail's statement can carry it)
BANK_REFERENCE = r"^[A-Za-z0-9/?:().,'+ -]{1,35}$"

CustomerId = Annotated[
    str, StringConstraints(pattern=CUSTOMER_ID), Field(examples=[EXAMPLE_CUSTOMER_ID])
]
CounterpartyId = Annotated[
    str, StringConstraints(pattern=COUNTERPARTY_ID), Field(examples=[EXAMPLE_COUNTERPARTY_ID])
]
AccountId = Annotated[
    str, StringConstraints(pattern=ACCOUNT_ID), Field(examples=[EXAMPLE_ACCOUNT_ID])
]


def _integral(value: Any) -> Any:
    """JSON has one number type: `2500.0` is the integer 2500 (as JSON Schema's `integer`
    says), `2500.5` is not an integer and stays refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Amount = Annotated[
    int,
    Field(
        strict=True,
        gt=0,
        le=MAX_AMOUNT,
        examples=[12500],
        description=(
            "Minor units (cents). An integer: a number with a zero fraction such as "
            "`12500.0` is the same amount; a fraction, a string or a boolean is refused."
        ),
    ),
    BeforeValidator(_integral),
]
# the schema lists the currencies held (the server answers `unsupported_currency` for others)
Currency = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    Field(examples=["EUR"], json_schema_extra={"enum": sorted(CURRENCIES)}),
]
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: Any) -> Any:
    """Only `YYYY-MM-DD` (the schema's `format: date`), never the number of seconds since
    1970 or the other spellings pydantic would otherwise read as a date."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    return date.fromisoformat(value)


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$"), Field(examples=["DE"])]
Name = Annotated[str, StringConstraints(min_length=1, max_length=140, pattern=ONE_LINE)]
