"""SEPA status requests: a pacs.028 in, a pacs.002 about the one transaction back at once.

The bank answers with the transaction's current status if it has the message, and with RJCT
AG09 (original payment never received) if it has no record; submission faults never touch
these requests, only `status_request_error_rate` does.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx

from iso20022 import parse_pacs002
from iso20022.pacs028 import StatusAnswer, StatusRequest, build_pacs028, parse_status_answer
from tests.component.banksim.support import (
    BAD_CHECKSUM_IBAN,
    SEPA_PATH,
    TUESDAY_0900_NY,
    XML,
    BankClient,
    pacs008,
)


def status_request(
    message_id: str,
    end_to_end_id: str | None = None,
    *,
    request_id: str = "STRQ-1",
    message_name: str = "pacs.008.001.08",
) -> bytes:
    return build_pacs028(
        StatusRequest(
            message_id=request_id,
            created_at=datetime(2026, 3, 10, 13, 5, tzinfo=UTC),
            original_message_id=message_id,
            original_end_to_end_id=end_to_end_id or f"e2e-{message_id}",
            original_message_name=message_name,
        )
    )


async def ask(bank: BankClient, body: bytes) -> httpx.Response:
    return await bank.http.post(f"{bank.url}/v1/sepa/status-requests", content=body, headers=XML)


async def answer_of(
    bank: BankClient, message_id: str, end_to_end_id: str | None = None
) -> StatusAnswer:
    e2e = end_to_end_id or f"e2e-{message_id}"
    response = await ask(bank, status_request(message_id, e2e))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    return parse_status_answer(response.content, e2e, original_message_id=message_id)


NO_RECORD = StatusAnswer(known=False, status=None, reason_code="AG09")


async def test_unknown_message_is_answered_rjct_ag09(bank: BankClient) -> None:
    response = await ask(bank, status_request("NEVER-SENT"))
    assert response.status_code == 200
    report = parse_pacs002(response.content)
    assert report.original_message_id == "NEVER-SENT"
    assert report.created_at == TUESDAY_0900_NY  # simulator time
    [tx] = report.transactions
    assert (tx.end_to_end_id, tx.status, tx.reason_code) == ("e2e-NEVER-SENT", "RJCT", "AG09")
    assert tx.additional_info == "original payment not received"
    assert parse_status_answer(response.content, "e2e-NEVER-SENT") == NO_RECORD


async def test_known_message_reports_its_current_status(bank: BankClient) -> None:
    assert (await bank.submit(pacs008("MSG-ASK-1"))).status_code == 202
    await bank.receiver.wait_for(1, SEPA_PATH)
    assert await answer_of(bank, "MSG-ASK-1") == StatusAnswer(True, "ACCP", None)

    await bank.advance(seconds=bank.settings.banksim.settle_delay_seconds)
    await bank.receiver.wait_for(2, SEPA_PATH)
    assert await answer_of(bank, "MSG-ASK-1") == StatusAnswer(True, "ACSC", None)
    # asking is read-only: no callback, no booking, the same answer again
    await asyncio.sleep(0.2)
    assert len(bank.receiver.calls) == 2
    assert await answer_of(bank, "MSG-ASK-1") == StatusAnswer(True, "ACSC", None)
    bookings = (await bank.http.get(f"{bank.url}/v1/admin/bookings")).json()["data"]
    assert [b["end_to_end_id"] for b in bookings] == ["e2e-MSG-ASK-1"]


async def test_rejected_message_is_known_with_its_reason(bank: BankClient) -> None:
    assert (await bank.submit(pacs008("MSG-ASK-RJ", creditor_iban=BAD_CHECKSUM_IBAN))).is_success
    await bank.advance(seconds=bank.settings.banksim.settle_delay_seconds)
    await bank.receiver.wait_for(2, SEPA_PATH)
    assert await answer_of(bank, "MSG-ASK-RJ") == StatusAnswer(True, "RJCT", "AC01")


async def test_a_transaction_the_message_does_not_hold_has_no_record(bank: BankClient) -> None:
    assert (await bank.submit(pacs008("MSG-ASK-2"))).status_code == 202
    assert await answer_of(bank, "MSG-ASK-2", "e2e-someone-else") == NO_RECORD
    # the bank only ever receives pacs.008s: another message name finds nothing either
    response = await ask(bank, status_request("MSG-ASK-2", message_name="pacs.009.001.10"))
    assert parse_status_answer(response.content, "e2e-MSG-ASK-2") == NO_RECORD


async def test_answer_before_the_accp_job_ran_is_accp(bank: BankClient) -> None:
    # under the out-of-order fault no report exists until settlement: received is accepted
    await bank.set_faults(out_of_order_callbacks=True)
    assert (await bank.submit(pacs008("MSG-ASK-3"))).status_code == 202
    assert await answer_of(bank, "MSG-ASK-3") == StatusAnswer(True, "ACCP", None)


async def test_invalid_requests_get_a_problem_document(bank: BankClient) -> None:
    url = f"{bank.url}/v1/sepa/status-requests"
    cases = [
        (b"<Document><unclosed></Document>", XML, 400, "schema_invalid"),
        (pacs008("NOT-A-REQUEST"), XML, 400, "schema_invalid"),
        (
            status_request("M").replace(b"<TxInf>", b"<TxInf><Bogus/>"),
            XML,
            400,
            "schema_invalid",
        ),
        (status_request("M"), {"Content-Type": "application/json"}, 415, "unsupported_media_type"),
        (b"<" + b"x" * 1_000_001, XML, 413, "payload_too_large"),
    ]
    for body, headers, status, code in cases:
        response = await bank.http.post(url, content=body, headers=headers)
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == code


async def test_submission_faults_do_not_touch_status_requests(bank: BankClient) -> None:
    await bank.set_faults(error_rate=0.5, error_after_store_rate=0.5, latency_seconds=5)
    for n in range(6):
        response = await asyncio.wait_for(ask(bank, status_request(f"M-{n}")), timeout=2)
        assert response.status_code == 200


async def test_status_request_error_rate_makes_the_answer_unknown(bank: BankClient) -> None:
    await bank.set_faults(status_request_error_rate=1)
    response = await ask(bank, status_request("M"))
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    # deterministic by seed, and its own stream: submissions are unaffected
    await bank.set_faults(seed=11, status_request_error_rate=0.5)
    first = [(await ask(bank, status_request("M"))).status_code for _ in range(16)]
    assert set(first) == {200, 503}
    assert (await bank.submit(pacs008("MSG-ASK-4"))).status_code == 202
    await bank.set_faults(seed=11, status_request_error_rate=0.5)
    assert [(await ask(bank, status_request("M"))).status_code for _ in range(16)] == first
