"""camt.056.001.12 (recall) and camt.029.001.14 (its resolution), built and parsed against the
official XSDs of the `camt-exceptions` package (camt_exceptions/templates/...)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from iso20022.camt029 import ACCEPTED, REJECTED, Resolution, build_camt029, parse_camt029
from iso20022.camt056 import CancellationRequest, build_camt056, parse_camt056
from iso20022.schemas import CAMT029, CAMT056, SchemaError, validate, xsd_path

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _request(**overrides: object) -> CancellationRequest:
    values: dict[str, object] = {
        "assignment_id": "RCL-pay_0123456789",
        "case_id": "pay_0123456789",
        "created_at": NOW,
        "assigner_bic": "COBADEFFXXX",
        "assignee_bic": "DEUTDEFFXXX",
        "original_message_id": "MSG-pay_0123456789",
        "end_to_end_id": "pay_0123456789",
        "amount_minor": 12_345,
        "currency": "EUR",
        "settlement_date": date(2026, 12, 4),
        "reason_code": "DUPL",
        "additional_info": "sent twice",
    }
    values.update(overrides)
    return CancellationRequest(**values)  # type: ignore[arg-type]


def _resolution(status: str, reason: str = "") -> Resolution:
    return Resolution(
        "RSL-1", "pay_0123456789", NOW, "DEUTDEFFXXX", "COBADEFFXXX",
        "MSG-pay_0123456789", "pay_0123456789", status, reason,
    )  # fmt: skip


def test_the_schemas_come_from_the_camt_exceptions_package() -> None:
    assert xsd_path(CAMT056).parts[-4:-2] == ("camt_exceptions", "templates")
    assert xsd_path(CAMT029).name == "camt.029.001.14.xsd"


@pytest.mark.parametrize("reason", ["DUPL", "TECH", "FRAD", "CUST"])
def test_a_recall_validates_and_reads_back(reason: str) -> None:
    request = _request(reason_code=reason)
    xml = build_camt056(request)
    validate(xml, CAMT056)
    assert b"<Cd>" + reason.encode() + b"</Cd>" in xml
    assert parse_camt056(xml) == request


def test_a_recall_outside_the_rulebook_reasons_is_refused() -> None:
    with pytest.raises(ValueError, match="reason_code"):
        _request(reason_code="AM09")


def test_an_id_too_long_for_the_schema_is_refused() -> None:
    with pytest.raises(SchemaError, match=r"camt\.056\.001\.12 schema violation"):
        build_camt056(_request(assignment_id="x" * 36))


@pytest.mark.parametrize(
    ("status", "reason"), [(ACCEPTED, ""), (REJECTED, "NOOR"), (REJECTED, "LEGL")]
)
def test_a_resolution_validates_and_reads_back(status: str, reason: str) -> None:
    resolution = _resolution(status, reason)
    xml = build_camt029(resolution)
    validate(xml, CAMT029)
    parsed = parse_camt029(xml)
    assert parsed == resolution
    assert parsed.accepted is (status == ACCEPTED)


def test_a_rejection_needs_its_reason() -> None:
    with pytest.raises(ValueError, match="reason"):
        _resolution(REJECTED)


def test_a_recall_is_not_a_resolution() -> None:
    with pytest.raises(SchemaError):
        parse_camt029(build_camt056(_request()))
