"""The bank simulator's SEPA side: pacs.008 in, ACCP then ACSC/RJCT pacs.002 back, signed.

The simulator runs for real (uvicorn on loopback) with its clock frozen; tests move the clock
with the admin API instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from banksim.signing import sign, verify
from iso20022 import StatusReport, parse_pacs002
from rails.bank_auth import request_headers
from tests.component.banksim.support import (
    BAD_CHECKSUM_IBAN,
    OTHER_VALID_IBAN,
    SEPA_PATH,
    TUESDAY_0900_NY,
    XML,
    BankClient,
    Receiver,
    assert_signed,
    make_settings,
    pacs008,
    running_bank,
)


def only_status(report: StatusReport) -> tuple[str, str | None]:
    [tx] = report.transactions
    return tx.status, tx.reason_code


async def settle(bank: BankClient) -> None:
    """Move the clock past the SEPA settlement delay."""
    await bank.advance(seconds=bank.settings.banksim.settle_delay_seconds)


async def test_healthz(bank: BankClient) -> None:
    response = await bank.http.get(f"{bank.url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_the_bank_takes_only_requests_the_platform_signed(bank: BankClient) -> None:
    body = pacs008("MSG-SIGNED")
    submit = f"{bank.url}/v1/sepa/messages"
    secret = bank.settings.rails.submission_secret
    async with httpx.AsyncClient(timeout=10) as anyone:
        unsigned = await anyone.post(submit, content=body, headers=XML)
        wrong = await anyone.post(
            submit,
            content=body,
            headers={
                **XML,
                **request_headers(
                    ["not-the-secret"], int(time.time()), "POST", "/v1/sepa/messages", body
                ),
            },
        )
        stale = await anyone.post(
            submit,
            content=body,
            headers={
                **XML,
                **request_headers(
                    [secret], int(time.time()) - 3600, "POST", "/v1/sepa/messages", body
                ),
            },
        )
        # a signature covers its method and target: one for a statement reads no other day
        headers = request_headers(
            [secret], int(time.time()), "GET", "/v1/statements/2026-03-10?account=sepa", b""
        )
        moved = await anyone.get(
            f"{bank.url}/v1/statements/2026-03-11?account=sepa", headers=headers
        )
        allowed = await anyone.get(
            f"{bank.url}/v1/statements/2026-03-10?account=sepa", headers=headers
        )
    for refused in (unsigned, wrong, stale, moved):
        assert refused.status_code == 401, refused.text
        assert refused.json()["code"] == "invalid_signature"
    assert allowed.status_code == 200, allowed.text
    # nothing refused was stored: the signed submission is the first of its id
    signed = await bank.submit(body)
    assert signed.status_code == 202, signed.text
    assert signed.json()["duplicate"] is False


async def test_message_is_accepted_then_settled_with_two_signed_reports(bank: BankClient) -> None:
    response = await bank.submit(pacs008("MSG-OK-1"))
    assert response.status_code == 202
    assert response.json() == {"message_id": "MSG-OK-1", "status": "received", "duplicate": False}

    [accp] = await bank.receiver.wait_for(1)
    assert accp.path == SEPA_PATH
    assert accp.headers["content-type"] == "application/xml"
    assert accp.headers["banksim-message-id"] == "MSG-OK-1"
    assert_signed(accp)
    first = parse_pacs002(accp.body)
    assert first.original_message_id == "MSG-OK-1"
    assert only_status(first) == ("ACCP", None)
    assert first.transactions[0].end_to_end_id == "e2e-MSG-OK-1"
    assert first.created_at == TUESDAY_0900_NY  # stamped with simulator time
    # the polling fallback serves the latest report
    status = await bank.http.get(f"{bank.url}/v1/sepa/messages/MSG-OK-1/status")
    assert status.status_code == 200
    assert status.headers["content-type"].startswith("application/xml")
    assert status.content == accp.body

    # the clock is frozen: nothing settles until it moves
    await asyncio.sleep(0.3)
    assert len(bank.receiver.calls) == 1
    await bank.advance(seconds=bank.settings.banksim.settle_delay_seconds - 0.5)
    await asyncio.sleep(0.2)
    assert len(bank.receiver.calls) == 1

    await bank.advance(seconds=0.5)
    _, acsc = await bank.receiver.wait_for(2)
    assert_signed(acsc)
    final = parse_pacs002(acsc.body)
    assert only_status(final) == ("ACSC", None)
    assert final.original_message_id == "MSG-OK-1"
    assert final.message_id != first.message_id  # each step is its own message
    status = await bank.http.get(f"{bank.url}/v1/sepa/messages/MSG-OK-1/status")
    assert status.content == acsc.body

    await asyncio.sleep(0.3)
    assert len(bank.receiver.calls) == 2


async def test_reject_rules_reject_after_accp(bank: BankClient) -> None:
    # the original form and the general one
    legacy = await bank.add_rule(creditor_iban="NL91 ABNA 0417 1643 00", reject_code="AC04")
    assert legacy.status_code == 201
    assert legacy.json()["creditor_iban"] == OTHER_VALID_IBAN
    assert legacy.json()["reject_code"] == "AC04"
    general = await bank.add_rule(
        rail="sepa", creditor_iban="DE44500105175407324931", action="reject", code="AM04"
    )
    assert general.status_code == 201
    assert general.json() | {"created_at": None} == {
        "rail": "sepa",
        "creditor_iban": "DE44500105175407324931",
        "account_number": None,
        "action": "reject",
        "code": "AM04",
        "reject_code": "AM04",
        "created_at": None,
        "registered_name": None,
        "delay_seconds": None,
        "corrected_data": None,
    }
    rules = (await bank.http.get(f"{bank.url}/v1/admin/rules")).json()["data"]
    assert sorted((r["creditor_iban"], r["code"]) for r in rules) == [
        ("DE44500105175407324931", "AM04"),
        (OTHER_VALID_IBAN, "AC04"),
    ]

    for message_id, iban in (
        ("MSG-RULE-1", OTHER_VALID_IBAN),
        ("MSG-RULE-2", "DE44500105175407324931"),
        ("MSG-RULE-3", "FR1420041010050500013M02606"),
    ):
        assert (await bank.submit(pacs008(message_id, creditor_iban=iban))).status_code == 202
    await bank.receiver.wait_for(3)
    await settle(bank)
    calls = await bank.receiver.wait_for(6)
    by_message: dict[str, list[tuple[str, str | None]]] = {}
    for call in calls:
        assert_signed(call)
        report = parse_pacs002(call.body)
        by_message.setdefault(report.original_message_id, []).append(only_status(report))
    assert by_message == {
        "MSG-RULE-1": [("ACCP", None), ("RJCT", "AC04")],
        "MSG-RULE-2": [("ACCP", None), ("RJCT", "AM04")],
        "MSG-RULE-3": [("ACCP", None), ("ACSC", None)],
    }

    cleared = await bank.http.delete(f"{bank.url}/v1/admin/rules")
    assert cleared.json() == {"deleted": 2}
    assert (await bank.submit(pacs008("MSG-RULE-4", creditor_iban=OTHER_VALID_IBAN))).is_success
    await bank.receiver.wait_for(7)
    await settle(bank)
    calls = await bank.receiver.wait_for(8)
    assert only_status(parse_pacs002(calls[7].body)) == ("ACSC", None)


async def test_invalid_rules_are_refused(bank: BankClient) -> None:
    bad_code = await bank.add_rule(creditor_iban=OTHER_VALID_IBAN, reject_code="x")
    assert bad_code.status_code == 422
    assert bad_code.headers["content-type"] == "application/problem+json"
    assert bad_code.json()["code"] == "validation_error"
    for rule in (
        {"rail": "ach", "account_number": "123", "action": "reject", "code": "R01"},
        {"rail": "ach", "account_number": "123", "action": "return", "code": "R99"},
        {"rail": "ach", "creditor_iban": OTHER_VALID_IBAN, "action": "return", "code": "R01"},
        {"rail": "sepa", "account_number": "123", "action": "reject", "code": "AC04"},
        {"rail": "sepa", "creditor_iban": OTHER_VALID_IBAN, "action": "reject"},
    ):
        response = await bank.add_rule(**rule)
        assert response.status_code == 400, rule
        assert response.json()["code"] == "invalid_rule"
    assert (await bank.http.get(f"{bank.url}/v1/admin/rules")).json()["data"] == []


async def test_invalid_iban_checksum_and_currency_are_rejected(bank: BankClient) -> None:
    assert (await bank.submit(pacs008("MSG-AC01", creditor_iban=BAD_CHECKSUM_IBAN))).is_success
    assert (await bank.submit(pacs008("MSG-AM03", currency="USD"))).is_success
    await bank.receiver.wait_for(2)
    await settle(bank)
    calls = await bank.receiver.wait_for(4)
    finals = {
        report.original_message_id: only_status(report)
        for report in map(parse_pacs002, (c.body for c in calls))
        if report.transactions[0].status != "ACCP"
    }
    assert finals == {"MSG-AC01": ("RJCT", "AC01"), "MSG-AM03": ("RJCT", "AM03")}


async def test_schema_invalid_body_is_a_400_problem(bank: BankClient) -> None:
    broken = pacs008("MSG-BAD").replace(b"<ChrgBr>SLEV</ChrgBr>", b"<ChrgBr>NOPE</ChrgBr>")
    for body in (broken, b"<not-xml", b"<Document/>"):
        response = await bank.submit(body)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "schema_invalid"
        assert {"type", "title", "status", "detail", "code"} <= problem.keys()
    assert "ChrgBr" in (await bank.submit(broken)).json()["detail"]

    wrong_type = await bank.http.post(
        f"{bank.url}/v1/sepa/messages",
        content=pacs008("MSG-JSON"),
        headers={"Content-Type": "application/json"},
    )
    assert wrong_type.status_code == 415
    assert wrong_type.json()["code"] == "unsupported_media_type"

    await asyncio.sleep(0.3)
    assert bank.receiver.calls == []
    assert (await bank.http.get(f"{bank.url}/v1/sepa/messages/MSG-BAD/status")).status_code == 404


async def test_duplicates_are_idempotent_and_conflicts_refused(bank: BankClient) -> None:
    body = pacs008("MSG-DUP")
    assert (await bank.submit(body)).status_code == 202
    again = await bank.submit(body)
    assert again.status_code == 200
    assert again.json() == {"message_id": "MSG-DUP", "status": "received", "duplicate": True}

    conflict = await bank.submit(pacs008("MSG-DUP", amount_minor=9999))
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    assert conflict.json()["code"] == "duplicate_message_id_conflict"

    await bank.receiver.wait_for(1)
    await settle(bank)
    await bank.receiver.wait_for(2)
    # a resend after settlement is still only an acknowledgement
    late = await bank.submit(body)
    assert late.status_code == 200
    assert late.json()["duplicate"] is True
    await settle(bank)
    await asyncio.sleep(0.3)
    assert [only_status(parse_pacs002(c.body)) for c in bank.receiver.calls] == [
        ("ACCP", None),
        ("ACSC", None),
    ]


async def test_unknown_message_status_is_404(bank: BankClient) -> None:
    response = await bank.http.get(f"{bank.url}/v1/sepa/messages/NEVER-SENT/status")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unknown_message"


async def test_failed_callbacks_are_retried_in_order_until_acknowledged(bank: BankClient) -> None:
    bank.receiver.failures = [500, 503]
    assert (await bank.submit(pacs008("MSG-RETRY"))).status_code == 202
    await settle(bank)  # the ACSC is due while the ACCP is still being retried
    calls = await bank.receiver.wait_for(4)
    statuses = [only_status(parse_pacs002(c.body))[0] for c in calls]
    # the ACSC waits for the ACCP to be acknowledged: the platform sees them in order
    assert statuses == ["ACCP", "ACCP", "ACCP", "ACSC"]
    assert calls[1].received_at - calls[0].received_at >= 0.2  # backoff, not a hot loop
    assert calls[0].body == calls[1].body == calls[2].body
    for call in calls:
        assert_signed(call)
    await asyncio.sleep(0.3)
    assert len(bank.receiver.calls) == 4


async def test_restart_resumes_pending_settlements_and_undelivered_callbacks(
    tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    recv, url = receiver
    settings = make_settings(tmp_path, url)
    async with running_bank(settings, recv) as bank:
        assert (await bank.submit(pacs008("MSG-R1"))).status_code == 202
        await recv.wait_for(1)
    # stopped before the settlement was due: only the ACCP went out
    assert [only_status(parse_pacs002(c.body)) for c in recv.calls] == [("ACCP", None)]

    recv.failures = [503] * 20  # the platform is down when the simulator settles...
    async with running_bank(settings, recv, start=None) as bank:
        clock = (await bank.http.get(f"{bank.url}/v1/admin/clock")).json()
        assert clock["speed"] == 0  # the clock survived the restart, frozen where it was
        assert clock["now"].startswith("2026-03-10T13:00:00")
        await settle(bank)
        await recv.wait_for(2)
        [acsc_body] = {c.body for c in recv.calls[1:]}
        assert only_status(parse_pacs002(acsc_body)) == ("ACSC", None)
    # ...and stops before it could deliver
    recv.failures = []
    delivered_before = len(recv.calls)

    async with running_bank(settings, recv, start=None) as bank:
        calls = await recv.wait_for(delivered_before + 1)
        assert calls[-1].body == acsc_body  # the stored decision, not a new one
        assert_signed(calls[-1])
        status = await bank.http.get(f"{bank.url}/v1/sepa/messages/MSG-R1/status")
        assert status.content == acsc_body
        await asyncio.sleep(0.3)
        assert len(recv.calls) == delivered_before + 1

    # delivered: a further restart sends nothing
    async with running_bank(settings, recv, start=None):
        await asyncio.sleep(0.3)
    assert len(recv.calls) == delivered_before + 1


def test_signing_verify_rejects_tampering_staleness_and_relabelling() -> None:
    body = b"<Document/>"
    now = 1_700_000_000
    signature = sign(["s3cret"], "evt-1", now, body)
    assert signature.startswith("v2=")
    assert verify(["s3cret"], "evt-1", str(now), signature, body, 300, now=now + 10)
    assert verify(["s3cret"], "evt-1", str(now), f"v2=deadbeef, {signature}", body, 300, now=now)
    assert not verify(["s3cret"], "evt-1", str(now), signature, body + b" ", 300, now=now)
    assert not verify(["other"], "evt-1", str(now), signature, body, 300, now=now)
    assert not verify(["s3cret"], "evt-1", str(now), signature, body, 300, now=now + 301)
    assert not verify(["s3cret"], "evt-1", str(now + 1), signature, body, 300, now=now)
    # the event id is signed: a capture relabelled to dodge the replay cache does not verify
    assert not verify(["s3cret"], "evt-2", str(now), signature, body, 300, now=now)
    assert not verify(["s3cret"], None, str(now), signature, body, 300, now=now)
    assert not verify(["s3cret"], "evt-1", "not-a-number", signature, body, 300, now=now)
    assert not verify(["s3cret"], "evt-1", None, signature, body, 300, now=now)
    assert not verify(["s3cret"], "evt-1", str(now), None, body, 300, now=now)
    bare = signature.removeprefix("v2=")
    assert not verify(["s3cret"], "evt-1", str(now), bare, body, 300, now=now)


def test_during_a_rotation_both_secrets_sign_and_either_verifies() -> None:
    body, now = b"{}", 1_700_000_000
    both = sign(["new-secret", "old-secret"], "evt-1", now, body)
    assert len(both.split()) == 2
    assert verify(["old-secret"], "evt-1", str(now), both, body, 300, now=now)
    assert verify(["new-secret"], "evt-1", str(now), both, body, 300, now=now)
    assert not verify(["another"], "evt-1", str(now), both, body, 300, now=now)


@pytest.mark.parametrize("speed", [-1, "fast"])
async def test_clock_rejects_nonsense(bank: BankClient, speed: object) -> None:
    response = await bank.http.put(f"{bank.url}/v1/admin/clock", json={"speed": speed})
    assert response.status_code == 422
    both = await bank.http.post(
        f"{bank.url}/v1/admin/clock/advance", json={"seconds": 1, "to": "next_ach_cutoff"}
    )
    assert both.status_code == 422


async def test_payee_verification_answers_as_its_rule_says(bank: BankClient) -> None:
    """Verification of Payee: an IBAN without a rule matches; a vop rule decides close match
    (with the registered name), no match or not possible; a malformed rule is refused."""
    url = f"{bank.url}/v1/sepa/payee-verifications"
    close, none, down = "DE44500105175407324931", OTHER_VALID_IBAN, "DE89370400440532013000"
    for iban, code, name in ((close, "CMTC", "Erika Musterfrau"), (none, "NMTC", None)):
        rule: dict[str, Any] = {
            "rail": "sepa",
            "creditor_iban": iban,
            "action": "vop",
            "code": code,
        }
        if name:
            rule["registered_name"] = name
        added = await bank.add_rule(**rule)
        assert added.status_code == 201, added.text
    assert (
        await bank.add_rule(rail="sepa", creditor_iban=down, action="vop", code="NOAP")
    ).is_success
    answers = {}
    for iban in (close, none, down, "FR1420041010050500013M02606"):
        response = await bank.http.post(url, json={"iban": iban, "name": "Erika Mustermann"})
        assert response.status_code == 200, response.text
        answers[iban] = (response.json()["result"], response.json()["name"])
    assert answers == {
        close: ("CMTC", "Erika Musterfrau"),
        none: ("NMTC", None),
        down: ("NOAP", None),
        "FR1420041010050500013M02606": ("MTCH", None),
    }
    # a close match needs the name the bank holds; a vop rule is a SEPA rule
    refused = await bank.add_rule(rail="sepa", creditor_iban=close, action="vop", code="CMTC")
    assert refused.status_code == 400
    assert (
        await bank.add_rule(rail="ach", account_number="1234", action="vop", code="MTCH")
    ).status_code == 400
    # the IBAN's reject rule lives beside its vop rule
    assert (await bank.add_rule(creditor_iban=close, reject_code="AC04")).status_code == 201
    kinds = {
        (r["creditor_iban"], r["action"])
        for r in (await bank.http.get(f"{bank.url}/v1/admin/rules")).json()["data"]
    }
    assert {(close, "vop"), (close, "reject")} <= kinds
