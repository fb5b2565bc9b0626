"""A payment schedule's rules without Temporal: intervals, business days, execution times."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from api.errors import ProblemError
from api.routers.payment_schedules import interval_seconds
from rails.business_days import adjust_to_business_day
from services.payment_schedules import (
    execution_time,
    first_runs_paid_at_creation,
    on_rule,
    paused_periods_after,
    run_payment_id,
    run_refusal,
    runs_paid_now,
)


@pytest.mark.parametrize(
    ("interval", "seconds"),
    [(3600, 3600), ("PT1H", 3600), ("P1D", 86400), ("P2W", 1_209_600), ("P1DT12H", 129_600)],
)
def test_intervals_are_seconds_or_iso_8601_durations(interval: int | str, seconds: int) -> None:
    assert interval_seconds(interval, 3600) == seconds


@pytest.mark.parametrize(
    "interval", ["PT59M", 60, "P", "PT", "P1DT", "1H", "P1Y", "P53W", "P99999999999999W"]
)
def test_short_or_malformed_intervals_are_refused(interval: int | str) -> None:
    with pytest.raises(ProblemError) as refused:
        interval_seconds(interval, 3600)
    assert refused.value.code == "schedule_rule_invalid"


def test_business_days_follow_the_rails_calendar() -> None:
    christmas = date(2026, 12, 25)  # a Friday; TARGET2 is closed on the 25th and 26th
    assert adjust_to_business_day(christmas, "sepa", "following") == date(2026, 12, 28)
    assert adjust_to_business_day(christmas, "sepa", "preceding") == date(2026, 12, 24)
    assert adjust_to_business_day(christmas, "sepa", "none") == christmas
    # Juneteenth: the Fed is closed, TARGET2 is open
    juneteenth = date(2026, 6, 19)
    assert adjust_to_business_day(juneteenth, "ach", "following") == date(2026, 6, 22)
    assert adjust_to_business_day(juneteenth, "sepa", "following") == juneteenth


def test_a_run_on_a_holiday_executes_on_the_next_business_day_at_its_local_time() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    row = SimpleNamespace(
        calendar={"timezone": "Europe/Berlin"},
        template={"rail": "sepa"},
        business_day_convention="following",
    )
    nominal = datetime(2026, 12, 25, 9, 0, tzinfo=berlin).astimezone(UTC)
    assert execution_time(row, nominal) == datetime(2026, 12, 28, 9, 0, tzinfo=berlin)


def test_a_runs_payment_id_names_the_instant_not_its_spelling() -> None:
    utc = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    berlin = utc.astimezone(ZoneInfo("Europe/Berlin"))
    assert run_payment_id("psch_x", utc) == run_payment_id("psch_x", berlin)
    assert run_payment_id("psch_x", utc) != run_payment_id("psch_y", utc)


def schedule_row(**values: object) -> SimpleNamespace:
    defaults: dict[str, object] = {
        "id": "psch_x",
        "interval_seconds": None,
        "calendar": None,
        "start_at": datetime(2026, 12, 1, tzinfo=UTC),
        "end_at": None,
        "template": {"rail": "sepa"},
        "business_day_convention": "preceding",
        "paused_periods": [],
    }
    return SimpleNamespace(**{**defaults, **values})


def test_a_preceding_monthly_run_also_pays_the_next_run_that_falls_on_a_closed_day() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    row = schedule_row(
        calendar={"day_of_month": 1, "hour": 9, "minute": 0, "timezone": "Europe/Berlin"}
    )
    december = datetime(2026, 12, 1, 9, 0, tzinfo=berlin)
    new_year = datetime(2027, 1, 1, 9, 0, tzinfo=berlin)  # TARGET2 is closed
    assert runs_paid_now(row, december) == [december, new_year]
    # it pays on the business day before, at the same local time
    assert execution_time(row, new_year) == datetime(2026, 12, 31, 9, 0, tzinfo=berlin)
    # the closed day's own run finds its payment made (the same id); February's pays itself
    assert runs_paid_now(row, new_year) == [new_year]


def test_a_triggered_run_looks_ahead_on_the_schedules_own_grid() -> None:
    row = schedule_row(interval_seconds=86_400, start_at=datetime(2026, 12, 4, 10, tzinfo=UTC))
    triggered = datetime(2026, 12, 4, 15, 37, 12, tzinfo=UTC)  # a Friday, off the grid
    assert runs_paid_now(row, triggered) == [
        triggered,
        datetime(2026, 12, 5, 10, tzinfo=UTC),
        datetime(2026, 12, 6, 10, tzinfo=UTC),
    ]
    assert runs_paid_now(
        schedule_row(**{**vars(row), "business_day_convention": "following"}), triggered
    ) == [triggered]


def test_no_run_is_looked_for_after_the_schedules_end() -> None:
    row = schedule_row(
        interval_seconds=86_400,
        start_at=datetime(2026, 12, 4, 10, tzinfo=UTC),
        end_at=datetime(2026, 12, 5, 12, tzinfo=UTC),
    )
    friday = datetime(2026, 12, 4, 10, tzinfo=UTC)
    assert runs_paid_now(row, friday) == [friday, datetime(2026, 12, 5, 10, tzinfo=UTC)]


def test_a_schedule_of_closed_days_pays_each_run_once_ahead_never_a_year_at_once() -> None:
    saturdays = {"day_of_week": ["sat"], "hour": 9, "minute": 0, "timezone": "UTC"}
    row = schedule_row(calendar=saturdays, start_at=datetime(2026, 12, 3, 12, tzinfo=UTC))
    first, second = datetime(2026, 12, 5, 9, tzinfo=UTC), datetime(2026, 12, 12, 9, tzinfo=UTC)
    # created on a Thursday: its first run (a Saturday) pays on the Friday, made at creation
    assert first_runs_paid_at_creation(row) == [first]
    assert execution_time(row, first) == datetime(2026, 12, 4, 9, tzinfo=UTC)
    # each run makes the next one's payment, which pays before that run
    assert runs_paid_now(row, first) == [first, second]
    assert (
        first_runs_paid_at_creation(
            schedule_row(**{**vars(row), "business_day_convention": "none"})
        )
        == []
    )


NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)


def hourly(**overrides: object) -> SimpleNamespace:
    values: dict[str, object] = dict(
        interval_seconds=3600,
        calendar=None,
        start_at=datetime(2026, 12, 1, 9, 0, 7, tzinfo=UTC),
        end_at=datetime(2026, 12, 31, tzinfo=UTC),
        paused_periods=[],
        status="active",
    )
    values.update(overrides)
    return SimpleNamespace(**values)


@pytest.mark.parametrize(
    ("nominal", "refusal"),
    [
        (datetime(2026, 12, 1, 9, 0, 7, tzinfo=UTC), ""),  # start_at itself
        (datetime(2026, 12, 8, 11, 0, 7, tzinfo=UTC), ""),
        # the same instant in another zone's spelling
        (datetime(2026, 12, 8, 12, 0, 7, tzinfo=ZoneInfo("Europe/Berlin")), ""),
        # a manual trigger's time, or any other a direct start names
        (datetime(2026, 12, 8, 11, 0, 8, tzinfo=UTC), "nominal_time_off_rule"),
        (datetime(2026, 12, 8, 11, 0, 7, 500, tzinfo=UTC), "nominal_time_off_rule"),
        (datetime(2026, 12, 1, 8, 0, 7, tzinfo=UTC), "nominal_time_outside_schedule"),
        (datetime(2027, 1, 1, 0, 0, 7, tzinfo=UTC), "nominal_time_outside_schedule"),
        # on the grid but ahead: no Schedule starts a run before its time
        (datetime(2026, 12, 9, 9, 0, 7, tzinfo=UTC), "nominal_time_ahead"),
        (datetime(2026, 12, 8, 11, 0, 7), "nominal_time_without_zone"),
    ],
)
def test_a_run_pays_only_for_the_schedules_own_times(nominal: datetime, refusal: str) -> None:
    assert run_refusal(hourly(), nominal, NOW) == refusal


def test_a_calendar_run_is_on_its_days_at_its_local_time() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    rule = {"day_of_week": ["mon", "thu"], "hour": 9, "minute": 30, "timezone": "Europe/Berlin"}
    row = hourly(interval_seconds=None, calendar=rule, start_at=datetime(2026, 1, 1, tzinfo=UTC))
    monday = datetime(2026, 12, 7, 9, 30, tzinfo=berlin)
    assert on_rule(row, monday) and on_rule(row, monday.astimezone(UTC))
    assert not on_rule(row, monday.replace(hour=10))  # 09:30 UTC is 10:30 in Berlin
    assert not on_rule(row, datetime(2026, 12, 7, 9, 30, tzinfo=UTC))
    assert not on_rule(row, datetime(2026, 12, 8, 9, 30, tzinfo=berlin))  # a Tuesday
    assert not on_rule(row, monday.replace(second=1))
    monthly = hourly(
        interval_seconds=None,
        calendar={"day_of_month": 1, "hour": 2, "minute": 30, "timezone": "Europe/Berlin"},
    )
    assert on_rule(monthly, datetime(2026, 11, 1, 2, 30, tzinfo=berlin))
    assert not on_rule(monthly, datetime(2026, 11, 2, 2, 30, tzinfo=berlin))


def test_a_local_time_that_daylight_saving_skips_is_on_the_rule_either_way() -> None:
    # 2027-03-28 02:30 does not exist in Berlin: Temporal may start the run at 01:30 or
    # 02:30 UTC (either reading of it); both are this day's run, nothing else that day is
    berlin = ZoneInfo("Europe/Berlin")
    rule = {"hour": 2, "minute": 30, "timezone": "Europe/Berlin"}
    row = hourly(interval_seconds=None, calendar=rule, start_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert on_rule(row, datetime(2027, 3, 28, 1, 30, tzinfo=UTC))
    assert on_rule(row, datetime(2027, 3, 28, 0, 30, tzinfo=UTC))
    assert not on_rule(row, datetime(2027, 3, 28, 2, 30, tzinfo=UTC))
    assert datetime(2027, 3, 28, 1, 30, tzinfo=UTC).astimezone(berlin).hour == 3


def test_a_pause_opens_a_period_its_resume_closes_and_runs_in_it_are_refused() -> None:
    paused_on = datetime(2026, 12, 3, 10, 30, tzinfo=UTC)
    resumed_on = datetime(2026, 12, 5, 10, 30, tzinfo=UTC)
    periods = paused_periods_after(hourly(), "paused", paused_on)
    assert periods == [{"from": paused_on.isoformat(), "until": None}]
    # pausing a paused schedule again opens nothing more
    assert paused_periods_after(hourly(status="paused", paused_periods=periods), "paused", NOW) == (
        periods
    )
    closed = paused_periods_after(
        hourly(status="paused", paused_periods=periods), "active", resumed_on
    )
    assert closed == [{"from": paused_on.isoformat(), "until": resumed_on.isoformat()}]
    # resuming an active schedule changes nothing
    assert paused_periods_after(hourly(paused_periods=closed), "active", NOW) == closed

    row = hourly(paused_periods=closed)
    # on the grid (09:00:07 + n h), inside the pause: Temporal took no action then
    assert run_refusal(row, datetime(2026, 12, 4, 9, 0, 7, tzinfo=UTC), NOW) == (
        "nominal_time_while_paused"
    )
    # its first and last on-rule times either side of the pause still pay
    assert run_refusal(row, datetime(2026, 12, 3, 10, 0, 7, tzinfo=UTC), NOW) == ""
    assert run_refusal(row, datetime(2026, 12, 5, 11, 0, 7, tzinfo=UTC), NOW) == ""
    # a pause still open refuses everything after its start
    still = hourly(status="paused", paused_periods=periods)
    assert run_refusal(still, datetime(2026, 12, 8, 11, 0, 7, tzinfo=UTC), NOW) == (
        "nominal_time_while_paused"
    )
