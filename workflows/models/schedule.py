"""Inputs and outputs of a payment schedule's run (issue #19 item 4)."""

# no `from __future__ import annotations`: the workflow sandbox resolves string annotations
# in sys.modules[cls.__module__] (see workflows/models/common.py)
from dataclasses import dataclass


@dataclass
class ScheduleRunInput:
    """What a payment schedule's Temporal Schedule starts its run with.

    The schedule's action is the same for every run; the run's nominal time comes from the
    `TemporalScheduledStartTime` search attribute the Schedule sets, or from `nominal_time`
    (ISO 8601) when the run is started by hand.
    """

    schedule_id: str
    nominal_time: str = ""


@dataclass
class ScheduledPaymentInput:
    """Make the payment of one run: the schedule and the run's nominal time (ISO 8601)."""

    schedule_id: str
    nominal_time: str


@dataclass
class ScheduledPaymentResult:
    """The run's payment id (derived from the schedule and the nominal time), or why none
    was made: `skipped` (the schedule is paused or deleted, or the payment was refused: its
    account closed, its counterparty disabled) or `refused` (the run's nominal time is not
    one of the schedule's: off its rule, outside start_at..end_at, or ahead of now; a run
    started by hand through Temporal, or a manual trigger of the Temporal Schedule)."""

    payment_id: str = ""
    skipped: str = ""
    refused: str = ""
