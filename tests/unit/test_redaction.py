"""Logs never contain full IBANs, account numbers or national ids."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from kernel.logging import configure_logging
from kernel.redaction import redact


def test_ibans_account_numbers_and_ids_are_masked() -> None:
    assert redact("pay DE89370400440532013000 now") == "pay DE89…3000 now"
    assert redact("iban DE89 3704 0044 0532 0130 00.") == "iban DE89…3000."
    assert (
        redact("account 12345678901 routing 021000021") == "account *******8901 routing *****0021"
    )
    assert redact("amount 2500 on 2026-11-29, pay_01jd") == "amount 2500 on 2026-11-29, pay_01jd"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # lower-case and mixed-case IBANs (checksum-valid), compact and in groups of four
        ("iban de89370400440532013000", "iban de89…3000"),
        ("iban gb33bukb20201555555555 sent", "iban gb33…5555 sent"),
        ("iban de89 3704 0044 0532 0130 00.", "iban de89…3000."),
        ("De89 3704 0044 0532 0130 00", "De89…3000"),
        ("FR14 2004 1010 0505 0001 3M02 606", "FR14…2606"),
        ("iban=NL91ABNA0417164300,", "iban=NL91…4300,"),
        # US social security numbers
        ("ssn 123-45-6789", "ssn ***-**-6789"),
        ("national_id='078-05-1120'", "national_id='***-**-1120'"),
        # UK national insurance numbers, compact, spaced, lower case
        ("NI AB123456C", "NI *****456C"),
        ("ni: AB 12 34 56 C.", "ni: *****456C."),
        ("ni ab123456c", "ni *****456c"),
        # card numbers in groups, spaces or dashes, 16 and 19 digits, Amex
        ("card 4111 1111 1111 1111 declined", "card **** **** **** 1111 declined"),
        ("card 4111-1111-1111-1111", "card ****-****-****-1111"),
        ("card 6011 0009 9013 9424 123", "card **** **** **** ***4 123"),
        ("amex 3782 822463 10005", "amex **** ****** *0005"),
        # compact card numbers are long digit runs
        ("card 4111111111111111", "card ************1111"),
    ],
)
def test_personal_numbers_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        # ids, amounts, timestamps, versions, network addresses: never masked
        "pay_01jd7k3v9x2m4n6p8q0r2s4t6v",
        "cus_01m98cesp7pgkfqjcmzrvd051a scr_ab12cd34ef56gh78",
        "amount 250000 EUR, 12.50 USD, 1,234,567.89",
        "at 2026-12-07T13:52:53.123456+00:00 and 2026-12-07 13:52:53",
        "2026-12-07, 07/12/2026, 13:52:53",
        "version ofac-2021:73811511ab40, pep-sample:94f2fe6702b8",
        "listening on 127.0.0.1:8233 and [::1]:7233",
        "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
        # lower-case letters-then-digits that fail the IBAN check (hex digests, ids)
        "digest de89370400440532013001 ab12cdef34567890abcd",
        "be12 this that word here",
        "phone 555-123-4567, ref 12-34-5678, zip 94105-1234",
        "SDN entry 23253 and 306",
        "request 4111 1111 done",  # two groups: not a card
    ],
)
def test_ordinary_values_are_not_masked(text: str) -> None:
    assert redact(text) == text


def test_configured_logging_redacts_structlog_and_stdlib_lines() -> None:
    stream = io.StringIO()
    configure_logging()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    structlog.get_logger().info("submitted", creditor_iban="GB33BUKB20201555555555")
    logging.getLogger("some.library").warning("refused account 000123456789")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["creditor_iban"] == "GB33…5555"
    assert "000123456789" not in lines[1]["event"]
    assert lines[1]["event"].endswith("********6789")
