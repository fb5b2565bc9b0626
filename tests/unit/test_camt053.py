"""camt.053.001.08: the documents built are valid against the official XSD and read back."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from lxml import etree

from iso20022.camt053 import (
    AccountStatement,
    Statement,
    StatementEntry,
    build_camt053,
    parse_camt053,
    xsd_path,
)
from iso20022.schemas import SchemaError

DAY = date(2026, 3, 10)
SEPA = AccountStatement(
    statement_id="SEPA-2026-03-10",
    account="DE89370400440532013000",
    currency="EUR",
    date=DAY,
    opening_balance_minor=1_000,
    closing_balance_minor=-1_400,
    entries=[
        StatementEntry("DBIT", 2_500, "EUR", DAY, end_to_end_id="e2e-1", entry_ref="S-1"),
        StatementEntry("CRDT", 100, "EUR", DAY, end_to_end_id="e2e-0", return_code="AC04"),
    ],
    account_type="sepa",
    account_name="SEPA settlement account",
)
ACH = AccountStatement(
    statement_id="ACH-2026-03-10",
    account="4000123456",
    currency="USD",
    date=DAY,
    opening_balance_minor=0,
    closing_balance_minor=-149_901,
    entries=[
        StatementEntry("DBIT", 150_000, "USD", DAY, end_to_end_id="pay_1", tx_id="122105150000001"),
        StatementEntry("CRDT", 99, "USD", DAY, tx_id="122105150000003", return_code="R01"),
    ],
    account_type="ach",
)
DOCUMENT = Statement(
    message_id="BSIMSTMT20260310",
    created_at=datetime(2026, 3, 11, 6, 0, tzinfo=UTC),
    date=DAY,
    accounts=[SEPA, ACH],
)


def test_built_statement_is_valid_against_the_official_xsd() -> None:
    xml = build_camt053(DOCUMENT)
    # validated here with lxml directly, not through the module under test
    schema = etree.XMLSchema(etree.parse(str(xsd_path())))
    root = etree.fromstring(xml)
    assert schema.validate(root), schema.error_log
    assert root.tag == "{urn:iso:std:iso:20022:tech:xsd:camt.053.001.08}Document"
    ns = {"d": "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"}
    sepa, ach = root.findall("d:BkToCstmrStmt/d:Stmt", namespaces=ns)
    assert sepa.findtext("d:Acct/d:Id/d:IBAN", namespaces=ns) == SEPA.account
    assert ach.findtext("d:Acct/d:Id/d:Othr/d:Id", namespaces=ns) == "4000123456"
    # a negative closing balance is an amount with the debit indicator
    [closing] = [
        balance
        for balance in sepa.findall("d:Bal", namespaces=ns)
        if balance.findtext("d:Tp/d:CdOrPrtry/d:Cd", namespaces=ns) == "CLBD"
    ]
    assert closing.findtext("d:Amt", namespaces=ns) == "14.00"
    assert closing.findtext("d:CdtDbtInd", namespaces=ns) == "DBIT"
    returned = [
        entry
        for entry in root.iterfind(".//d:Ntry", namespaces=ns)
        if entry.find("d:NtryDtls/d:TxDtls/d:RtrInf", namespaces=ns) is not None
    ]
    assert [r.findtext("d:CdtDbtInd", namespaces=ns) for r in returned] == ["CRDT", "CRDT"]


def test_round_trip() -> None:
    parsed = parse_camt053(build_camt053(DOCUMENT))
    assert parsed.message_id == DOCUMENT.message_id
    assert parsed.created_at == DOCUMENT.created_at
    assert parsed.date == DAY
    assert [a.account for a in parsed.accounts] == [SEPA.account, ACH.account]
    sepa, ach = parsed.accounts
    assert (sepa.opening_balance_minor, sepa.closing_balance_minor) == (1_000, -1_400)
    assert (ach.opening_balance_minor, ach.closing_balance_minor) == (0, -149_901)
    assert sepa.account_type == "sepa" and ach.account_type == "ach"
    assert parsed.for_account("ach") == ach
    assert [
        (
            e.account,
            e.direction,
            e.amount_minor,
            e.currency,
            e.end_to_end_id,
            e.tx_id,
            e.return_code,
        )
        for e in parsed.entries
    ] == [
        (SEPA.account, "DBIT", 2_500, "EUR", "e2e-1", None, None),
        (SEPA.account, "CRDT", 100, "EUR", "e2e-0", None, "AC04"),
        (ACH.account, "DBIT", 150_000, "USD", "pay_1", "122105150000001", None),
        # no end-to-end id travels as NOTPROVIDED and reads back as None
        (ACH.account, "CRDT", 99, "USD", None, "122105150000003", "R01"),
    ]
    assert parsed.entries[0].entry_ref == "S-1"
    assert {e.booking_date for e in parsed.entries} == {DAY}
    with pytest.raises(ValueError, match="2 account statements"):
        _ = parsed.account
    single = parse_camt053(build_camt053(Statement("M1", DOCUMENT.created_at, DAY, [ACH])))
    assert single.account == "4000123456"


def test_invalid_documents_are_refused() -> None:
    with pytest.raises(SchemaError, match="MsgId"):
        build_camt053(Statement("M" * 36, DOCUMENT.created_at, DAY, [ACH]))
    with pytest.raises(ValueError, match="at least one"):
        build_camt053(Statement("M1", DOCUMENT.created_at, DAY, []))
    xml = build_camt053(DOCUMENT)
    with pytest.raises(SchemaError, match="CdtDbtInd"):
        parse_camt053(
            xml.replace(b"<CdtDbtInd>DBIT</CdtDbtInd>", b"<CdtDbtInd>LOSS</CdtDbtInd>", 1)
        )
    with pytest.raises(SchemaError, match="malformed"):
        parse_camt053(xml[:-20])
    doctype = xml.replace(b"?>", b"?><!DOCTYPE Document>", 1)
    with pytest.raises(SchemaError, match="DOCTYPE"):
        parse_camt053(doctype)
    with pytest.raises(SchemaError, match="finer"):
        parse_camt053(xml.replace(b">25.00<", b">25.001<", 1))
    with pytest.raises(ValueError, match="negative"):
        StatementEntry("DBIT", -1, "EUR", DAY)
    with pytest.raises(ValueError, match="direction"):
        StatementEntry("LOSS", 1, "EUR", DAY)  # type: ignore[arg-type]
