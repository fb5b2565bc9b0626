"""Fault injection: seeded 503s, timeouts that keep the submission, latency, duplicate and
out-of-order callbacks."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from banksim.faults import FaultConfig, FaultInjector, SubmissionFault
from iso20022 import parse_pacs002
from tests.component.banksim.support import (
    ACH_PATH,
    RETURNS_PATH,
    SEPA_PATH,
    XML,
    BankClient,
    Entry,
    file_id,
    nacha_file,
    pacs008,
)


def statuses(calls: list[bytes]) -> list[str]:
    return [parse_pacs002(body).transactions[0].status for body in calls]


async def _run(bank: BankClient, prefix: str, count: int = 16) -> list[int]:
    codes = []
    for n in range(count):
        codes.append((await bank.submit(pacs008(f"{prefix}-{n}"))).status_code)
    return codes


async def test_error_rate_is_deterministic_by_seed(bank: BankClient) -> None:
    await bank.set_faults(seed=7, error_rate=0.5)
    first = await _run(bank, "SEED7A")
    assert set(first) == {202, 503}
    await bank.set_faults(seed=7, error_rate=0.5)  # same seed: the same sequence again
    assert await _run(bank, "SEED7B") == first
    await bank.set_faults(seed=8, error_rate=0.5)
    assert await _run(bank, "SEED8") != first

    problem = next(
        r for r in [await bank.submit(pacs008(f"X-{n}")) for n in range(8)] if r.status_code == 503
    )
    assert problem.json()["code"] == "service_unavailable"
    # a 503 means the bank did not take the message
    for n, code in enumerate(first):
        status = await bank.http.get(f"{bank.url}/v1/sepa/messages/SEED7A-{n}/status")
        assert (status.status_code == 404) == (code == 503)

    await bank.set_faults()  # defaults: no fault
    faults = (await bank.http.get(f"{bank.url}/v1/admin/faults")).json()
    assert faults == FaultConfig().model_dump()
    assert set(await _run(bank, "CLEAR", 4)) == {202}


def test_fault_streams_are_independent() -> None:
    # duplicate-callback draws between submissions do not shift the sequence of 503s
    quiet = FaultInjector(FaultConfig(seed=3, error_rate=0.3, duplicate_callback_rate=0.5))
    busy = FaultInjector(FaultConfig(seed=3, error_rate=0.3, duplicate_callback_rate=0.5))
    expected = [quiet.submission_fault() for _ in range(50)]
    observed = []
    for _ in range(50):
        busy.callback_copies()
        observed.append(busy.submission_fault())
    assert observed == expected
    assert SubmissionFault.ERROR in expected and SubmissionFault.NONE in expected


async def test_rates_are_validated(bank: BankClient) -> None:
    for faults in ({"error_rate": 1.5}, {"error_rate": 0.6, "timeout_rate": 0.6}):
        response = await bank.http.put(f"{bank.url}/v1/admin/faults", json=faults)
        assert response.status_code == 422


async def test_timeout_keeps_the_submission(bank: BankClient) -> None:
    await bank.set_faults(timeout_rate=1, timeout_seconds=1.0)
    body = pacs008("MSG-TIMEOUT")
    with pytest.raises(httpx.ReadTimeout):
        await bank.http.post(f"{bank.url}/v1/sepa/messages", content=body, headers=XML, timeout=0.2)
    with pytest.raises(httpx.ReadTimeout):
        await bank.http.post(
            f"{bank.url}/v1/ach/files",
            content=nacha_file([Entry("123456789", 500, "pay_timeout")]),
            headers={"Content-Type": "text/plain"},
            timeout=0.2,
        )
    await bank.set_faults()
    # the bank got both: the message is being processed, the file awaits its cut-off
    [accp] = await bank.receiver.wait_for(1, SEPA_PATH)
    assert statuses([accp.body]) == ["ACCP"]
    assert (await bank.file(file_id()))["status"] == "accepted"
    # the platform's retry is a duplicate, not a second payment
    again = await bank.submit(body)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True


async def test_latency_delays_the_answer(bank: BankClient) -> None:
    await bank.set_faults(latency_seconds=0.3)
    started = time.monotonic()
    response = await bank.submit(pacs008("MSG-SLOW"))
    assert response.status_code == 202
    assert time.monotonic() - started >= 0.3


async def test_duplicate_callbacks_deliver_the_same_event_twice(bank: BankClient) -> None:
    await bank.set_faults(duplicate_callback_rate=1)
    assert (await bank.submit(pacs008("MSG-TWICE"))).status_code == 202
    assert (await bank.submit_file(nacha_file([Entry("123456789", 500, "pay_x")]))).is_success
    await bank.receiver.wait_for(2, SEPA_PATH)
    await bank.advance(to="next_ach_cutoff")  # also past the SEPA settlement delay
    sepa = await bank.receiver.wait_for(4, SEPA_PATH)
    assert statuses([c.body for c in sepa]) == ["ACCP", "ACCP", "ACSC", "ACSC"]
    assert sepa[0].body == sepa[1].body and sepa[2].body == sepa[3].body
    assert sepa[0].headers["banksim-event-id"] == sepa[1].headers["banksim-event-id"]
    notices = await bank.receiver.wait_for(2, ACH_PATH)
    assert notices[0].body == notices[1].body
    assert len({json.loads(n.body)["event_id"] for n in notices}) == 1
    await asyncio.sleep(0.3)
    assert len(bank.receiver.calls) == 6


async def test_out_of_order_sepa_sends_the_final_status_before_accp(bank: BankClient) -> None:
    await bank.set_faults(out_of_order_callbacks=True)
    assert (await bank.submit(pacs008("MSG-OOO"))).status_code == 202
    await asyncio.sleep(0.3)
    assert bank.receiver.calls == []  # the ACCP is held back
    await bank.advance(seconds=bank.settings.banksim.settle_delay_seconds)
    calls = await bank.receiver.wait_for(2)
    assert statuses([c.body for c in calls]) == ["ACSC", "ACCP"]
    # polling still reports the latest step
    status = await bank.http.get(f"{bank.url}/v1/sepa/messages/MSG-OOO/status")
    assert statuses([status.content]) == ["ACSC"]


async def test_out_of_order_ach_sends_the_return_before_the_settlement_notice(
    bank: BankClient,
) -> None:
    await bank.add_rule(rail="ach", account_number="123456789", action="return", code="R02")
    await bank.set_faults(out_of_order_callbacks=True)
    text = nacha_file([Entry("123456789", 500, "pay_r02"), Entry("987654321", 700, "pay_ok")])
    assert (await bank.submit_file(text)).status_code == 202
    await bank.advance(to="next_ach_cutoff")
    await asyncio.sleep(0.3)
    assert bank.receiver.calls == []  # the notice waits for the return
    await bank.advance(seconds=bank.settings.banksim.ach_return_delay_seconds)
    calls = await bank.receiver.wait_for(2)
    assert [c.path for c in calls] == [RETURNS_PATH, ACH_PATH]
