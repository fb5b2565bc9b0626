"""pacs.028 status requests against the XSD shipped by `pacs008`, and reading the pacs.002
answer: found (with its status) or no record (RJCT AG09)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from lxml import etree

from iso20022 import PACS008, SchemaError, StatusReport, TransactionStatus, build_pacs002
from iso20022.pacs002 import REASON_CODES, parse_pacs002
from iso20022.pacs028 import (
    NOT_RECEIVED_REASON,
    StatusAnswer,
    StatusRequest,
    UnrelatedAnswer,
    build_pacs028,
    parse_pacs028,
    parse_status_answer,
)
from iso20022.schemas import PACS002, PACS028, message_name, validate, xsd_path

NS28 = {"d": "urn:iso:std:iso:20022:tech:xsd:pacs.028.001.05"}


def request(**changes: object) -> StatusRequest:
    base = StatusRequest(
        message_id="STRQ01HZX3K9Q8V7",
        created_at=datetime(2026, 3, 10, 10, 15, 2, 125000, tzinfo=timezone(timedelta(hours=1))),
        original_message_id="pay_01HZX3K9Q8V7",
        original_end_to_end_id="pay_01HZX3K9Q8V7",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def answer(*transactions: TransactionStatus, original: str = "pay_01HZX3K9Q8V7") -> bytes:
    return build_pacs002(
        StatusReport("BSIMANSWER1", original, datetime(2026, 3, 10, tzinfo=UTC), list(transactions))
    )


def test_the_xsd_is_the_one_shipped_beside_pacs002() -> None:
    path = xsd_path(PACS028)
    assert path.is_file()
    assert path.parent.parent == xsd_path(PACS002).parent.parent
    assert 'targetNamespace="urn:iso:std:iso:20022:tech:xsd:pacs.028.001.05"' in path.read_text()


def test_built_pacs028_validates_and_names_the_original() -> None:
    xml = build_pacs028(request())
    validate(xml, PACS028)
    assert message_name(xml) == PACS028
    root = etree.fromstring(xml)
    body = "d:FIToFIPmtStsReq"
    assert root.findtext(f"{body}/d:GrpHdr/d:MsgId", namespaces=NS28) == "STRQ01HZX3K9Q8V7"
    assert root.findtext(f"{body}/d:OrgnlGrpInf/d:OrgnlMsgId", namespaces=NS28) == (
        "pay_01HZX3K9Q8V7"
    )
    # the version of the pacs.008 the platform sends
    assert root.findtext(f"{body}/d:OrgnlGrpInf/d:OrgnlMsgNmId", namespaces=NS28) == PACS008
    assert PACS008 == "pacs.008.001.08"
    assert root.findtext(f"{body}/d:TxInf/d:OrgnlEndToEndId", namespaces=NS28) == (
        "pay_01HZX3K9Q8V7"
    )


def test_pacs028_round_trip() -> None:
    original = request(original_end_to_end_id="E2E-other", original_message_name="pacs.008.001.10")
    assert parse_pacs028(build_pacs028(original)) == original


def test_request_fields_are_checked() -> None:
    with pytest.raises(ValueError, match="message_id"):
        request(message_id="x" * 36)
    with pytest.raises(ValueError, match="original_end_to_end_id"):
        request(original_end_to_end_id="")
    with pytest.raises(ValueError, match="timezone"):
        request(created_at=datetime(2026, 3, 10, 10, 0))


def test_parse_refuses_invalid_and_unusable_documents() -> None:
    xml = build_pacs028(request())
    with pytest.raises(SchemaError, match="malformed XML"):
        parse_pacs028(b"<Document><unclosed></Document>")
    with pytest.raises(SchemaError, match=r"pacs\.028\.001\.05 schema violation"):
        parse_pacs028(xml.replace(b"<MsgId>STRQ01HZX3K9Q8V7</MsgId>", b"<MsgId></MsgId>"))
    # a pacs.002 (or a pacs.008) is not a status request
    with pytest.raises(SchemaError):
        parse_pacs028(answer(TransactionStatus("E", "ACSC")))
    # valid for the XSD, but names no transaction, or two
    no_tx = xml.replace(b"<TxInf><OrgnlEndToEndId>pay_01HZX3K9Q8V7</OrgnlEndToEndId></TxInf>", b"")
    with pytest.raises(SchemaError, match="exactly one transaction, not 0"):
        parse_pacs028(no_tx)
    two = xml.replace(b"</TxInf>", b"</TxInf><TxInf><OrgnlEndToEndId>B</OrgnlEndToEndId></TxInf>")
    with pytest.raises(SchemaError, match="exactly one transaction, not 2"):
        parse_pacs028(two)
    by_tx_id = xml.replace(b"OrgnlEndToEndId", b"OrgnlTxId")
    with pytest.raises(SchemaError, match="OrgnlEndToEndId"):
        parse_pacs028(by_tx_id)
    no_group = xml.replace(
        b"<OrgnlGrpInf><OrgnlMsgId>pay_01HZX3K9Q8V7</OrgnlMsgId>"
        b"<OrgnlMsgNmId>pacs.008.001.08</OrgnlMsgNmId></OrgnlGrpInf>",
        b"",
    )
    with pytest.raises(SchemaError, match="original message"):
        parse_pacs028(no_group)
    # xs:dateTime admits a time without zone; the platform's instants are never naive
    naive = xml.replace(b"2026-03-10T10:15:02.125000+01:00", b"2026-03-10T10:15:02")
    with pytest.raises(SchemaError, match="unusable"):
        parse_pacs028(naive)


def test_doctype_is_refused() -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.028.001.05">&x;</Document>'
    )
    with pytest.raises(SchemaError, match="DOCTYPE"):
        parse_pacs028(xxe)


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        ("ACCP", None, StatusAnswer(known=True, status="ACCP", reason_code=None)),
        ("ACSC", None, StatusAnswer(known=True, status="ACSC", reason_code=None)),
        # a real rejection: the bank has the payment and refused it (not sent again)
        ("RJCT", "AC04", StatusAnswer(known=True, status="RJCT", reason_code="AC04")),
        ("RJCT", "AG09", StatusAnswer(known=False, status=None, reason_code="AG09")),
    ],
)
def test_status_answer_tells_found_from_no_record(
    status: str, reason: str | None, expected: StatusAnswer
) -> None:
    xml = answer(
        TransactionStatus("someone-else", "ACSC"),
        TransactionStatus("pay_01HZX3K9Q8V7", status, reason),  # type: ignore[arg-type]
    )
    assert parse_status_answer(xml, "pay_01HZX3K9Q8V7") == expected
    assert (
        parse_status_answer(xml, "pay_01HZX3K9Q8V7", original_message_id="pay_01HZX3K9Q8V7")
        == expected
    )


def test_no_record_answer_carries_the_code_and_the_text() -> None:
    assert NOT_RECEIVED_REASON == "AG09"
    assert NOT_RECEIVED_REASON in REASON_CODES
    xml = answer(
        TransactionStatus("E1", "RJCT", "AG09", additional_info="original payment not received")
    )
    assert b"<Cd>AG09</Cd></Rsn><AddtlInf>original payment not received</AddtlInf>" in xml
    validate(xml, PACS002)
    assert parse_pacs002(xml).transactions[0].additional_info == "original payment not received"
    with pytest.raises(ValueError, match="additional_info"):
        TransactionStatus("E1", "RJCT", "AG09", additional_info="x" * 106)


def test_an_answer_about_something_else_is_not_an_answer() -> None:
    xml = answer(TransactionStatus("E1", "ACSC"))
    with pytest.raises(UnrelatedAnswer, match="nothing about 'E2'"):
        parse_status_answer(xml, "E2")
    with pytest.raises(UnrelatedAnswer, match="not 'other-message'"):
        parse_status_answer(xml, "E1", original_message_id="other-message")
    twice = answer(TransactionStatus("E1", "ACSC"), TransactionStatus("E1", "RJCT", "AG09"))
    with pytest.raises(UnrelatedAnswer, match="more than once"):
        parse_status_answer(twice, "E1")
    with pytest.raises(SchemaError):
        parse_status_answer(build_pacs028(request()), "pay_01HZX3K9Q8V7")
