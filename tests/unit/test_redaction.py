"""Logs never contain full IBANs, account numbers or national ids."""

from __future__ import annotations

import io
import json
import logging

import structlog

from kernel.logging import configure_logging
from kernel.redaction import redact


def test_ibans_account_numbers_and_ids_are_masked() -> None:
    assert redact("pay DE89370400440532013000 now") == "pay DE89…3000 now"
    assert redact("iban DE89 3704 0044 0532 0130 00.") == "iban DE89…3000."
    assert (
        redact("account 12345678901 routing 021000021") == "account *******8901 routing *****0021"
    )
    assert redact("national id 123-45-6789") == "national id 123-45-6789"  # short groups: left
    assert redact("amount 2500 on 2026-11-29, pay_01jd") == "amount 2500 on 2026-11-29, pay_01jd"


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
