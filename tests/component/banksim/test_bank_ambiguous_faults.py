"""Ambiguous faults: the bank keeps a submission and answers 503, or never delivers a final
callback; and the bank's own books (`GET /v1/admin/bookings`), where a test counts how often
the bank paid one end-to-end id or trace number."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from banksim.faults import FaultConfig, FaultInjector, SubmissionFault
from iso20022 import parse_pacs002
from tests.component.banksim.support import (
    ACH_PATH,
    RETURNS_PATH,
    SEPA_PATH,
    BankClient,
    Entry,
    file_id,
    nacha_file,
    pacs008,
)

SEPA_RETURN_IBAN = "NL91ABNA0417164300"


async def bookings(bank: BankClient, **params: str) -> list[dict[str, Any]]:
    response = await bank.http.get(f"{bank.url}/v1/admin/bookings", params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def test_new_kinds_shift_none_of_the_old_sequences() -> None:
    old = FaultInjector(FaultConfig(seed=5, error_rate=0.3, timeout_rate=0.2))
    new = FaultInjector(
        FaultConfig(
            seed=5,
            error_rate=0.3,
            timeout_rate=0.2,
            error_after_store_rate=0.3,
            drop_final_callback_rate=0.5,
            status_request_error_rate=0.5,
        )
    )
    before = [old.submission_fault() for _ in range(200)]
    after = []
    for _ in range(200):
        # draws of the other new kinds in between change nothing either
        new.status_request_fails()
        new.final_callback_copies()
        after.append(new.submission_fault())
    # the old kinds fall exactly where they did; only former NONEs now keep-then-503
    for was, now in zip(before, after, strict=True):
        if was is SubmissionFault.NONE:
            assert now in (SubmissionFault.NONE, SubmissionFault.ERROR_AFTER_STORE)
        else:
            assert now is was
    assert SubmissionFault.ERROR_AFTER_STORE in after
    assert SubmissionFault.NONE in after


def test_dropped_callbacks_come_from_their_own_stream() -> None:
    plain = FaultInjector(FaultConfig(seed=9, duplicate_callback_rate=0.5))
    dropping = FaultInjector(
        FaultConfig(seed=9, duplicate_callback_rate=0.5, drop_final_callback_rate=0.5)
    )
    expected = [plain.final_callback_copies() for _ in range(100)]
    observed = [dropping.final_callback_copies() for _ in range(100)]
    assert 0 in observed and 0 not in expected
    # where nothing was dropped, the duplicate fault decided exactly as without drops
    assert all(o in (0, e) for o, e in zip(observed, expected, strict=True))
    every = FaultInjector(FaultConfig(drop_final_callback_rate=1))
    assert {every.final_callback_copies() for _ in range(20)} == {0}
    assert {every.callback_copies() for _ in range(20)} == {1}  # only final callbacks drop


async def test_rates_sharing_the_submission_draw_must_fit(bank: BankClient) -> None:
    url = f"{bank.url}/v1/admin/faults"
    for faults in (
        {"error_rate": 0.5, "timeout_rate": 0.3, "error_after_store_rate": 0.3},
        {"error_after_store_rate": 1.1},
        {"drop_final_callback_rate": -0.1},
        {"status_request_error_rate": 2},
    ):
        assert (await bank.http.put(url, json=faults)).status_code == 422, faults
    ok = {"error_rate": 0.2, "timeout_rate": 0.3, "error_after_store_rate": 0.5}
    response = await bank.http.put(url, json=ok | {"status_request_error_rate": 1})
    assert response.status_code == 200
    assert response.json()["error_after_store_rate"] == 0.5
    defaults = FaultConfig()
    assert defaults.error_after_store_rate == 0
    assert defaults.drop_final_callback_rate == 0
    assert defaults.status_request_error_rate == 0


async def test_error_after_store_keeps_the_sepa_message(bank: BankClient) -> None:
    await bank.set_faults(error_after_store_rate=1)
    body = pacs008("MSG-EAS")
    response = await bank.submit(body)
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"  # the same 503 as error_rate
    # ... yet the bank has it: it is accepted, and a resend under the fault is 503 again
    [accp] = await bank.receiver.wait_for(1, SEPA_PATH)
    assert parse_pacs002(accp.body).transactions[0].status == "ACCP"
    assert (await bank.http.get(f"{bank.url}/v1/sepa/messages/MSG-EAS/status")).status_code == 200
    assert (await bank.submit(body)).status_code == 503
    await bank.set_faults()
    again = await bank.submit(body)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    # a message reusing the id with other bytes is still a conflict, not stored
    await bank.set_faults(error_after_store_rate=1)
    assert (await bank.submit(pacs008("MSG-EAS", amount_minor=1))).status_code == 409

    await bank.advance(seconds=bank.settings.banksim.settle_delay_seconds)
    await bank.receiver.wait_for(2, SEPA_PATH)
    booked = await bookings(bank)
    assert [(b["message_id"], b["end_to_end_id"]) for b in booked] == [("MSG-EAS", "e2e-MSG-EAS")]


async def test_error_after_store_keeps_the_ach_file(bank: BankClient) -> None:
    await bank.set_faults(error_after_store_rate=1)
    text = nacha_file([Entry("123456789", 500, "pay_eas")])
    assert (await bank.submit_file(text)).status_code == 503
    assert (await bank.file(file_id()))["status"] == "accepted"
    await bank.set_faults()
    assert (await bank.submit_file(text)).json()["duplicate"] is True
    # invalid input is refused as ever: nothing to keep
    await bank.set_faults(error_after_store_rate=1)
    assert (await bank.submit_file("not a nacha file")).status_code == 400


async def test_error_after_store_is_deterministic_by_seed(bank: BankClient) -> None:
    async def run(prefix: str) -> list[int]:
        return [(await bank.submit(pacs008(f"{prefix}-{n}"))).status_code for n in range(12)]

    await bank.set_faults(seed=4, error_after_store_rate=0.5)
    first = await run("A")
    assert set(first) == {202, 503}
    await bank.set_faults(seed=4, error_after_store_rate=0.5)
    assert await run("B") == first
    # every one of them was kept, 503 or not
    for n in range(12):
        status = await bank.http.get(f"{bank.url}/v1/sepa/messages/A-{n}/status")
        assert status.status_code in (200, 202)


async def test_dropped_final_sepa_status_is_never_delivered(bank: BankClient) -> None:
    await bank.add_rule(rail="sepa", creditor_iban=SEPA_RETURN_IBAN, action="return", code="AC04")
    await bank.set_faults(drop_final_callback_rate=1)
    assert (await bank.submit(pacs008("MSG-DROP"))).status_code == 202
    assert (await bank.submit(pacs008("MSG-DROP-RT", creditor_iban=SEPA_RETURN_IBAN))).is_success
    await bank.receiver.wait_for(2, SEPA_PATH)
    await bank.advance(seconds=bank.settings.banksim.settle_delay_seconds)
    await asyncio.sleep(0.4)
    kinds = [parse_pacs002(c.body).transactions[0].status for c in bank.receiver.on(SEPA_PATH)]
    assert kinds == ["ACCP", "ACCP"]  # no ACSC callback
    # the bank settled and booked it all the same; polling and asking tell
    status = await bank.http.get(f"{bank.url}/v1/sepa/messages/MSG-DROP/status")
    assert parse_pacs002(status.content).transactions[0].status == "ACSC"
    assert len(await bookings(bank, rail="sepa")) == 2
    # the stream goes on past the dropped callback: the later return is delivered
    await bank.advance(seconds=bank.settings.banksim.sepa_return_delay_seconds)
    calls = await bank.receiver.wait_for(3, SEPA_PATH)
    assert calls[-1].headers["banksim-message-id"] == "MSG-DROP-RT"
    assert b"pacs.004" in calls[-1].body


async def test_dropped_final_sepa_status_under_out_of_order_releases_the_accp(
    bank: BankClient,
) -> None:
    await bank.set_faults(drop_final_callback_rate=1, out_of_order_callbacks=True)
    assert (await bank.submit(pacs008("MSG-DROP-OOO"))).status_code == 202
    await bank.advance(seconds=bank.settings.banksim.settle_delay_seconds)
    [accp] = await bank.receiver.wait_for(1, SEPA_PATH)
    assert parse_pacs002(accp.body).transactions[0].status == "ACCP"
    await asyncio.sleep(0.3)
    assert len(bank.receiver.calls) == 1


async def test_dropped_ach_settlement_notice_is_never_delivered(bank: BankClient) -> None:
    await bank.add_rule(rail="ach", account_number="444555666", action="return", code="R03")
    await bank.set_faults(drop_final_callback_rate=1)
    text = nacha_file([Entry("444555666", 700, "pay_ret"), Entry("123456789", 500, "pay_ok")])
    assert (await bank.submit_file(text)).status_code == 202
    await bank.advance(to="next_ach_cutoff")
    await asyncio.sleep(0.4)
    assert bank.receiver.on(ACH_PATH) == []
    assert (await bank.file(file_id()))["status"] == "settled"
    # the return file still follows
    await bank.advance(seconds=bank.settings.banksim.ach_return_delay_seconds)
    [returned] = await bank.receiver.wait_for(1, RETURNS_PATH)
    assert returned.headers["banksim-original-file-id"] == file_id()
    assert bank.receiver.on(ACH_PATH) == []


async def test_bookings_count_a_trace_number_paid_from_two_files(bank: BankClient) -> None:
    # the double payment the platform must never cause: one entry in two files
    entry = Entry("123456789", 500, "pay_twice")
    first = nacha_file([entry], modifier="A")
    second = nacha_file([entry], modifier="B")
    assert (await bank.submit_file(first)).status_code == 202
    assert (await bank.submit_file(second)).status_code == 202
    assert (await bank.submit(pacs008("MSG-BOOK"))).status_code == 202
    await bank.advance(to="next_ach_cutoff")
    await bank.receiver.wait_for(2, ACH_PATH)

    ach = await bookings(bank, rail="ach")
    assert [(b["file_id"], b["trace_number"], b["amount"]) for b in ach] == [
        (file_id(modifier="A"), "122105150000001", 500),
        (file_id(modifier="B"), "122105150000001", 500),
    ]
    assert {b["end_to_end_id"] for b in ach} == {"pay_twice"}
    assert {(b["direction"], b["currency"], b["message_id"]) for b in ach} == {
        ("DBIT", "USD", None)
    }
    [sepa] = await bookings(bank, rail="sepa")
    assert sepa["message_id"] == "MSG-BOOK" and sepa["end_to_end_id"] == "e2e-MSG-BOOK"
    assert sepa["trace_number"] is None and sepa["amount"] == 2500
    assert len(await bookings(bank)) == 3
    assert await bookings(bank, direction="CRDT") == []
    notice = json.loads(bank.receiver.on(ACH_PATH)[0].body)
    assert notice["trace_numbers"] == ["122105150000001"]
    assert (await bank.http.get(f"{bank.url}/v1/admin/bookings?rail=swift")).status_code == 422
