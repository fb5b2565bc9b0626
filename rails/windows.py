"""ACH origination windows: which file a payment goes out in, and when that file is sent.

Payments are collected per window and submitted as one NACHA file shortly before a FedACH
cut-off (`ach_submit_lead_seconds` before it), on Federal Reserve business days. Dev and test
stacks cannot wait for 10:30 New York time, so a positive `ach_window_seconds` switches to
windows of that length instead; everything downstream is the same.

A window names its file: the NACHA file id (origin, creation date and minute, modifier) is
derived from the window, so a file resubmitted after a crash is the same file to the bank.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from rails.business_days import AchCalendar

FILE_ID_MODIFIERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
ACH_TIMEZONE = "America/New_York"


@dataclass(frozen=True)
class AchWindow:
    """One origination window: its id, when its file is submitted, and the file's identity."""

    window_id: str
    submit_at: datetime
    file_created_at: datetime  # minute precision, as the NACHA file header carries it
    file_id_modifier: str

    def file_id(self, origin_routing: str) -> str:
        """The file's identity as the bank sees it (origin-YYMMDD-HHMM-modifier)."""
        return ach_file_id(origin_routing, self.file_created_at, self.file_id_modifier)


def ach_file_id(origin: str, created: datetime, modifier: str) -> str:
    """A NACHA file's identity, as ODFIs key it: origin, creation date and minute, modifier
    (the platform and the bank simulator must agree on it: the platform polls by it)."""
    return f"{origin}-{created:%y%m%d}-{created:%H%M}-{modifier}"


def ach_window(
    now: datetime,
    *,
    cutoffs: str,
    lead_seconds: float,
    window_seconds: float = 0.0,
) -> AchWindow:
    """The first window whose file has not been submitted yet at `now` (aware datetime)."""
    if window_seconds > 0:
        return _short_window(now, window_seconds)
    calendar = _calendar(cutoffs)
    cutoff = calendar.next_cutoff(now + timedelta(seconds=lead_seconds))
    submit_at = cutoff - timedelta(seconds=lead_seconds)
    created = submit_at.astimezone(calendar.zone).replace(second=0, microsecond=0, tzinfo=None)
    return AchWindow(f"{cutoff:%Y%m%dT%H%M}", submit_at, created, "A")


@cache
def _calendar(cutoffs: str) -> AchCalendar:
    # parsed once per setting value, not on every payment's submit
    return AchCalendar(cutoffs.split(","), ACH_TIMEZONE)


def _short_window(now: datetime, seconds: float) -> AchWindow:
    # Windows of `seconds`, counted from the epoch; at most len(FILE_ID_MODIFIERS) files per
    # minute can be told apart by the bank, so shorter windows are refused.
    if seconds < 60 / len(FILE_ID_MODIFIERS):
        raise ValueError(f"ACH windows shorter than {60 / len(FILE_ID_MODIFIERS):.2f}s")
    index = int(now.timestamp() // seconds)
    submit_at = datetime.fromtimestamp((index + 1) * seconds, UTC)
    start = datetime.fromtimestamp(index * seconds, UTC)
    minute = start.replace(second=0, microsecond=0)
    slot = int((start - minute).total_seconds() // seconds)
    modifier = FILE_ID_MODIFIERS[slot % len(FILE_ID_MODIFIERS)]
    return AchWindow(f"w{index}", submit_at, minute.replace(tzinfo=None), modifier)
