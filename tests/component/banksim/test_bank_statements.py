"""End-of-day statements (camt.053) served by the simulator: settled payments, returns and
planted adjustments, valid against the official XSD."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from lxml import etree

from iso20022.camt053 import Statement, parse_camt053, xsd_path
from iso20022.pacs002 import parse_pacs002
from iso20022.pacs004 import parse_pacs004
from iso20022.schemas import PACS004, message_name
from tests.component.banksim.support import (
    OTHER_VALID_IBAN,
    RETURNS_PATH,
    SEPA_PATH,
    BankClient,
    Callback,
    Entry,
    assert_signed,
    nacha_file,
    pacs008,
)

DAY = date(2026, 3, 10)
RETURNING_IBAN = "DE44500105175407324931"
ACH_ENTRIES = [
    Entry("111222333", 150_000, "pay_000000001"),
    Entry("444555666", 2_500, "pay_000000002"),
    Entry("777888999", 99, ""),
]


async def fetch(bank: BankClient, day: date, account: str | None = None) -> Statement:
    response = await bank.statement(day, account)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    # independently of the module under test: valid against the official XSD
    schema = etree.XMLSchema(etree.parse(str(xsd_path())))
    assert schema.validate(etree.fromstring(response.content)), schema.error_log
    return parse_camt053(response.content)


async def make_a_day(bank: BankClient) -> None:
    """SEPA: two settled, one rejected, one returned; ACH: three settled, one returned."""
    await bank.add_rule(creditor_iban=OTHER_VALID_IBAN, reject_code="AC04")
    await bank.add_rule(rail="sepa", creditor_iban=RETURNING_IBAN, action="return", code="AC06")
    await bank.add_rule(rail="ach", account_number="444555666", action="return", code="R01")
    for message_id, iban, amount in (
        ("M1", "FR1420041010050500013M02606", 2_500),
        ("M2", OTHER_VALID_IBAN, 4_000),
        ("M3", RETURNING_IBAN, 1_000),
        ("M4", "FR1420041010050500013M02606", 300),
    ):
        response = await bank.submit(pacs008(message_id, creditor_iban=iban, amount_minor=amount))
        assert response.status_code == 202
    assert (await bank.submit_file(nacha_file(ACH_ENTRIES))).status_code == 202
    await bank.advance(to="next_ach_cutoff")  # settles SEPA (5 s) and ACH (10:30 New York)
    await bank.advance(seconds=3600)  # both returns are due an hour later
    await bank.receiver.wait_for(1, RETURNS_PATH)


async def test_statement_reports_settled_payments_and_returns(bank: BankClient) -> None:
    await make_a_day(bank)
    statement = await fetch(bank, DAY)
    assert statement.date == DAY
    sepa, ach = statement.for_account("sepa"), statement.for_account("ach")
    assert sepa.account == bank.settings.sepa.debtor_iban and sepa.currency == "EUR"
    assert ach.account == bank.settings.banksim.ach_account_number and ach.currency == "USD"

    assert [
        (e.direction, e.amount_minor, e.end_to_end_id, e.return_code) for e in sepa.entries
    ] == [
        ("DBIT", 2_500, "e2e-M1", None),
        ("DBIT", 1_000, "e2e-M3", None),
        ("DBIT", 300, "e2e-M4", None),
        ("CRDT", 1_000, "e2e-M3", "AC06"),  # returned; the rejected M2 never settled
    ]
    assert [
        (e.direction, e.amount_minor, e.tx_id, e.end_to_end_id, e.return_code) for e in ach.entries
    ] == [
        ("DBIT", 150_000, "122105150000001", "pay_000000001", None),
        ("DBIT", 2_500, "122105150000002", "pay_000000002", None),
        ("DBIT", 99, "122105150000003", None, None),
        ("CRDT", 2_500, "122105150000002", "pay_000000002", "R01"),
    ]
    assert (sepa.opening_balance_minor, sepa.closing_balance_minor) == (0, -2_800)
    assert (ach.opening_balance_minor, ach.closing_balance_minor) == (0, -150_099)

    # the next day opens where this one closed, with no movements
    following = await fetch(bank, DAY + timedelta(days=1), "sepa")
    assert following.account == bank.settings.sepa.debtor_iban
    [next_sepa] = following.accounts
    assert next_sepa.opening_balance_minor == next_sepa.closing_balance_minor == -2_800
    assert next_sepa.entries == []


async def test_planted_adjustments_alter_the_statement(bank: BankClient) -> None:
    await make_a_day(bank)
    for adjustment in (
        {"rail": "sepa", "action": "drop", "reference": "e2e-M4"},
        {"rail": "sepa", "action": "add", "reference": "GHOST-1", "amount": 777},
        {"rail": "ach", "action": "change_amount", "reference": "122105150000001", "amount": 1},
    ):
        response = await bank.http.post(
            f"{bank.url}/v1/admin/statement-adjustments",
            json={"date": DAY.isoformat(), **adjustment},
        )
        assert response.status_code == 201, response.text
        assert response.json()["action"] == adjustment["action"]

    statement = await fetch(bank, DAY)
    sepa, ach = statement.for_account("sepa"), statement.for_account("ach")
    assert [(e.amount_minor, e.end_to_end_id) for e in sepa.entries] == [
        (2_500, "e2e-M1"),
        (1_000, "e2e-M3"),
        (1_000, "e2e-M3"),
        (777, "GHOST-1"),
    ]
    assert sepa.closing_balance_minor == -2_500 - 1_000 + 1_000 - 777  # follows what is shown
    assert [e.amount_minor for e in ach.entries if e.tx_id == "122105150000001"] == [1]
    # another day is untouched
    assert (await fetch(bank, DAY + timedelta(days=1), "ach")).accounts[0].entries == []

    incomplete = await bank.http.post(
        f"{bank.url}/v1/admin/statement-adjustments",
        json={"date": DAY.isoformat(), "rail": "ach", "action": "change_amount", "amount": 5},
    )
    assert incomplete.status_code == 422


async def test_statement_of_an_empty_day_and_bad_dates(bank: BankClient) -> None:
    statement = await fetch(bank, date(2026, 1, 1))
    assert [a.account_type for a in statement.accounts] == ["sepa", "ach"]
    assert all(a.entries == [] and a.closing_balance_minor == 0 for a in statement.accounts)
    assert (await bank.statement(date(2026, 1, 1), "swift")).status_code == 422
    bad = await bank.http.get(f"{bank.url}/v1/statements/2026-13-01")
    assert bad.status_code == 422


async def test_a_sepa_return_is_reported_by_a_signed_pacs004(bank: BankClient) -> None:
    await make_a_day(bank)
    returns: list[Callback] = []
    for _ in range(50):
        returns = [c for c in bank.receiver.on(SEPA_PATH) if message_name(c.body) == PACS004]
        if returns:
            break
        await asyncio.sleep(0.1)
    [callback] = returns
    assert_signed(callback)
    returned = parse_pacs004(callback.body)
    assert returned.original_message_id == "M3"
    assert [
        (t.end_to_end_id, t.amount_minor, t.currency, t.reason_code) for t in returned.transactions
    ] == [("e2e-M3", 1_000, "EUR", "AC06")]

    # kept for polling; the status report stays the pacs.002 (settled), and only M3 returned
    served = await bank.http.get(f"{bank.url}/v1/sepa/messages/M3/return")
    assert served.status_code == 200 and served.content == callback.body
    status = await bank.http.get(f"{bank.url}/v1/sepa/messages/M3/status")
    assert parse_pacs002(status.content).transactions[0].status == "ACSC"
    missing = await bank.http.get(f"{bank.url}/v1/sepa/messages/M1/return")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_returned")
