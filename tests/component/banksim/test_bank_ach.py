"""The bank simulator's ACH side: NACHA files validated record by record, settlement at the
cut-off windows of the simulator clock, signed settlement notices and return files."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from banksim.clock import ClockState, SimClock
from nacha import is_return, parse_file
from rails.business_days import AchCalendar, fed_holidays, is_fed_business_day, parse_cutoffs
from tests.component.banksim.support import (
    ACH_PATH,
    RETURNS_PATH,
    TUESDAY_0900_NY,
    BankClient,
    Entry,
    Receiver,
    assert_signed,
    file_id,
    make_settings,
    nacha_file,
    running_bank,
)

PAYOUTS = [
    Entry("111222333", 150_000, "pay_000000001"),
    Entry("444555666", 2_500, "pay_000000002", code=32, routing="021000021"),
    Entry("777888999", 99, "pay_000000003"),
]
# 10:30 New York on Tuesday 10 March 2026 (EDT)
FIRST_CUTOFF = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)


async def test_file_settles_at_the_next_cutoff_with_a_signed_notice(bank: BankClient) -> None:
    response = await bank.submit_file(nacha_file(PAYOUTS))
    assert response.status_code == 202
    assert response.json() == {
        "file_id": "122105155-260310-0815-A",
        "duplicate": False,
        "entry_count": 3,
        "settlement_date": "2026-03-10",
        "cutoff_at": FIRST_CUTOFF.isoformat(),
    }
    status = await bank.file("122105155-260310-0815-A")
    assert status["status"] == "accepted"
    assert [
        (e["trace_number"], e["amount"], e["account_number_last4"], e["status"])
        for e in status["entries"]
    ] == [
        ("122105150000001", 150_000, "2333", "pending"),
        ("122105150000002", 2_500, "5666", "pending"),
        ("122105150000003", 99, "8999", "pending"),
    ]

    # one minute before the cut-off nothing happens
    await bank.set_clock(now=datetime(2026, 3, 10, 14, 29, tzinfo=UTC))
    await asyncio.sleep(0.2)
    assert bank.receiver.calls == []
    assert (await bank.file("122105155-260310-0815-A"))["status"] == "accepted"

    advanced = await bank.advance(to="next_ach_cutoff")
    assert datetime.fromisoformat(advanced["now"]) == FIRST_CUTOFF
    assert advanced["jobs_run"] == 1
    # the jump answered after the settlement was recorded
    status = await bank.file("122105155-260310-0815-A")
    assert status["status"] == "settled"
    assert {e["status"] for e in status["entries"]} == {"settled"}

    [notice] = await bank.receiver.wait_for(1, ACH_PATH)
    assert_signed(notice)
    assert notice.headers["content-type"] == "application/json"
    body = json.loads(notice.body)
    assert body.pop("event_id").startswith("evt_")
    assert body == {
        "type": "ach.file.settled",
        "file_id": "122105155-260310-0815-A",
        "settlement_date": "2026-03-10",
        "trace_numbers": ["122105150000001", "122105150000002", "122105150000003"],
        "sent_at": FIRST_CUTOFF.isoformat(),
    }
    assert notice.headers["banksim-event-id"] == json.loads(notice.body)["event_id"]
    await asyncio.sleep(0.3)
    assert len(bank.receiver.calls) == 1  # no returns without a rule


async def test_late_file_waits_for_the_next_business_day_after_a_holiday(bank: BankClient) -> None:
    # Friday 4 September 2026 17:00 New York: past the last cut-off; Monday is Labor Day
    await bank.set_clock(now=datetime(2026, 9, 4, 21, 0, tzinfo=UTC))
    created = datetime(2026, 9, 4, 16, 55)
    response = await bank.submit_file(nacha_file(PAYOUTS, created=created))
    assert response.status_code == 202
    ack = response.json()
    assert ack["settlement_date"] == "2026-09-08"
    assert ack["cutoff_at"] == "2026-09-08T14:30:00+00:00"  # 10:30 EDT on Tuesday

    await bank.advance(seconds=3 * 86400)  # Monday 17:00: still not settled
    assert (await bank.file(file_id(created)))["status"] == "accepted"
    await bank.advance(seconds=86400)
    assert (await bank.file(file_id(created)))["status"] == "settled"
    [notice] = await bank.receiver.wait_for(1, ACH_PATH)
    assert json.loads(notice.body)["settlement_date"] == "2026-09-08"


def _corrupt(text: str, line: int, start: int, replacement: str) -> str:
    """Overwrite characters of a 1-based `line` from 0-based column `start`."""
    lines = text.split("\n")
    record = lines[line - 1]
    lines[line - 1] = record[:start] + replacement + record[start + len(replacement) :]
    return "\n".join(lines)


async def test_invalid_files_are_refused_with_the_line_and_code(bank: BankClient) -> None:
    good = nacha_file(PAYOUTS)
    # records: 1 file header, 2 batch header, 3-5 entries, 6 batch control, 7 file control,
    # 8-10 padding
    bad_hash = _corrupt(good, 6, 10, "0000000001")
    bad_check_digit = _corrupt(good, 3, 11, "9")  # 01100001 needs check digit 5
    bad_blocking = "\n".join(good.split("\n")[:9]) + "\n"  # one padding record short
    cases = {
        "entry_hash_mismatch": (bad_hash, 6),
        "bad_routing_check_digit": (bad_check_digit, 3),
        "blocking_factor": (bad_blocking, 9),
        "record_length": (_corrupt(good, 4, 93, "  "), 4),
    }
    for expected_code, (text, line) in cases.items():
        response = await bank.submit_file(text)
        assert response.status_code == 400, expected_code
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "invalid_file"
        [error] = problem["errors"]
        assert error["code"] == expected_code
        assert error["line"] == line
        assert error["message"]

    non_ascii = await bank.submit_file(good.replace("JANE DOE", "JANÉ DOE", 1))
    assert non_ascii.status_code == 400
    assert non_ascii.json()["errors"][0]["line"] == 3

    wrong_type = await bank.http.post(
        f"{bank.url}/v1/ach/files", content=good, headers={"Content-Type": "application/json"}
    )
    assert wrong_type.status_code == 415
    # nothing refused was kept
    missing = await bank.http.get(f"{bank.url}/v1/ach/files/{file_id()}")
    assert missing.status_code == 404
    assert missing.json()["code"] == "unknown_file"


async def test_duplicate_file_gets_the_original_ack_and_a_conflict_is_refused(
    bank: BankClient,
) -> None:
    text = nacha_file(PAYOUTS)
    first = await bank.submit_file(text)
    assert first.status_code == 202
    await bank.advance(seconds=7200)  # the resend comes after the cut-off: same ack all the same
    again = await bank.submit_file(text)
    assert again.status_code == 200
    assert again.json() == first.json() | {"duplicate": True}

    changed = nacha_file([*PAYOUTS[:2], Entry("777888999", 100, "pay_000000003")])
    conflict = await bank.submit_file(changed)
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "duplicate_file_id_conflict"

    # another modifier is another file
    other = await bank.submit_file(nacha_file(PAYOUTS, modifier="B"))
    assert other.status_code == 202
    assert other.json()["file_id"] == "122105155-260310-0815-B"
    await asyncio.sleep(0.3)
    # settled once, despite the resend
    assert len(bank.receiver.on(ACH_PATH)) == 1


async def test_returns_arrive_after_settlement_as_a_nacha_return_file(bank: BankClient) -> None:
    rule = await bank.add_rule(rail="ach", account_number="444555666", action="return", code="R03")
    assert rule.status_code == 201
    assert rule.json()["account_number"] == "444555666"
    await bank.add_rule(rail="ach", account_number="777888999", action="return", code="R01")
    assert (await bank.submit_file(nacha_file(PAYOUTS))).status_code == 202

    await bank.advance(to="next_ach_cutoff")
    [notice] = await bank.receiver.wait_for(1, ACH_PATH)
    status = await bank.file(file_id())
    # settled first: the return codes are decided but not sent yet
    assert [(e["status"], e["return_code"]) for e in status["entries"]] == [
        ("settled", None),
        ("settled", "R03"),
        ("settled", "R01"),
    ]
    await bank.advance(seconds=bank.settings.banksim.ach_return_delay_seconds - 1)
    await asyncio.sleep(0.2)
    assert bank.receiver.on(RETURNS_PATH) == []

    await bank.advance(seconds=1)
    [returned] = await bank.receiver.wait_for(1, RETURNS_PATH)
    assert_signed(returned)
    assert returned.headers["content-type"].startswith("text/plain")
    assert returned.headers["banksim-original-file-id"] == file_id()
    assert returned.received_at > notice.received_at  # the notice came first
    parsed = parse_file(returned.body.decode("ascii"))  # a valid NACHA file
    assert parsed.header.immediate_destination == "122105155"  # back to the originator
    entries = [entry for batch in parsed.batches for entry in batch.entries]
    assert all(is_return(entry.transaction_code) for entry in entries)
    assert sorted(
        (
            e.return_addenda.original_entry_trace_number,
            e.return_addenda.return_reason_code,
            e.transaction_code,
            e.amount_cents,
        )
        for e in entries
        if e.return_addenda is not None
    ) == [("122105150000002", "R03", 31, 2_500), ("122105150000003", "R01", 21, 99)]
    assert returned.headers["banksim-file-id"] == (
        f"021000021-{parsed.header.file_creation:%y%m%d}-"
        f"{parsed.header.file_creation:%H%M}-{parsed.header.file_id_modifier}"
    )
    status = await bank.file(file_id())
    assert [(e["status"], e["return_code"]) for e in status["entries"]] == [
        ("settled", None),
        ("returned", "R03"),
        ("returned", "R01"),
    ]


async def test_restart_resumes_a_pending_ach_settlement(
    tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    recv, url = receiver
    settings = make_settings(tmp_path, url)
    async with running_bank(settings, recv) as bank:
        assert (await bank.submit_file(nacha_file(PAYOUTS))).status_code == 202
    async with running_bank(settings, recv, start=None) as bank:
        assert (await bank.file(file_id()))["status"] == "accepted"
        await bank.advance(to="next_ach_cutoff")
        [notice] = await recv.wait_for(1, ACH_PATH)
        assert json.loads(notice.body)["file_id"] == file_id()
        assert (await bank.file(file_id()))["status"] == "settled"


async def test_clock_api_reads_sets_and_advances(bank: BankClient) -> None:
    clock = (await bank.http.get(f"{bank.url}/v1/admin/clock")).json()
    assert datetime.fromisoformat(clock["now"]) == TUESDAY_0900_NY
    assert clock["speed"] == 0.0
    changed = await bank.set_clock(speed=60)
    assert changed["speed"] == 60
    await bank.set_clock(now=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC), speed=0)
    after = await bank.advance(seconds=55)
    assert datetime.fromisoformat(after["now"]) == datetime(2030, 1, 2, 3, 5, tzinfo=UTC)
    # a time without offset is taken as UTC
    naive = await bank.http.put(f"{bank.url}/v1/admin/clock", json={"now": "2030-01-03T00:00:00"})
    assert datetime.fromisoformat(naive.json()["now"]) == datetime(2030, 1, 3, tzinfo=UTC)


# ------------------------------------------------------------------ calendar and clock units


def test_fed_holidays_follow_the_federal_reserve_rules() -> None:
    # Independence Day 2026 is a Saturday: the Fed stays open on Friday 3 July
    assert is_fed_business_day(date(2026, 7, 3))
    # Independence Day 2027 is a Sunday: closed on Monday 5 July
    assert not is_fed_business_day(date(2027, 7, 5))
    assert date(2027, 7, 5) in fed_holidays(2027)
    assert not is_fed_business_day(date(2026, 11, 26))  # Thanksgiving
    assert not is_fed_business_day(date(2026, 10, 12))  # Columbus Day
    assert not is_fed_business_day(date(2026, 3, 14))  # a Saturday
    assert is_fed_business_day(date(2026, 11, 27))  # the day after Thanksgiving
    assert len(fed_holidays(2026)) == 10  # 11 holidays, one on a Saturday


def test_next_cutoff_skips_weekends_holidays_and_passed_windows() -> None:
    calendar = AchCalendar(["16:45", "10:30", "14:45"], "America/New_York")
    assert calendar.cutoffs == parse_cutoffs(["10:30", "14:45", "16:45"])
    # exactly at a cut-off: the next one (the window has closed)
    assert calendar.next_cutoff(FIRST_CUTOFF) == datetime(2026, 3, 10, 18, 45, tzinfo=UTC)
    # Christmas Eve 2026 after the last window: Christmas (Fri) and the weekend are skipped
    assert calendar.next_cutoff(datetime(2026, 12, 24, 22, 0, tzinfo=UTC)) == datetime(
        2026, 12, 28, 15, 30, tzinfo=UTC
    )
    # the time zone matters: 23:00 UTC on a Tuesday is still Tuesday 19:00 in New York
    assert calendar.next_cutoff(datetime(2026, 3, 10, 23, 0, tzinfo=UTC)) == datetime(
        2026, 3, 11, 14, 30, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="HH:MM"):
        parse_cutoffs(["1030"])


def test_sim_clock_runs_at_its_speed_and_jumps() -> None:
    real = [1000.0]
    clock = SimClock(ClockState(sim_anchor=5000.0, real_anchor=1000.0, speed=60.0), lambda: real[0])
    real[0] = 1002.0
    assert clock.now_ts() == 5120.0
    assert clock.real_seconds_until(5180.0) == 1.0
    clock.set(speed=0)
    real[0] = 2000.0
    assert clock.now_ts() == 5120.0  # frozen
    assert clock.real_seconds_until(6000.0) is None
    assert clock.real_seconds_until(100.0) == 0.0
    clock.advance(80)
    assert clock.now_ts() == 5200.0
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(now=datetime(2026, 1, 1))  # naive
