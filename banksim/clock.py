"""The simulator's settable clock: simulated time runs at `speed` simulated seconds per real one.

Everything the bank schedules (SEPA settlement, ACH cut-offs, return windows) is due at a
simulated instant, so a test jumps the clock to a cut-off instead of waiting for it. The clock
is an anchor pair (a simulated instant and the wall-clock instant it was taken at) plus the
speed; the pair is persisted, so simulated time keeps running across restarts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class ClockState:
    """What is persisted: simulated epoch seconds `sim_anchor` held at wall-clock `real_anchor`."""

    sim_anchor: float
    real_anchor: float
    speed: float


def to_datetime(timestamp: float) -> datetime:
    """Epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(timestamp, UTC)


class SimClock:
    """Simulated time; `real_time` (default `time.time`) is injectable for tests."""

    def __init__(self, state: ClockState, real_time: Callable[[], float] = time.time) -> None:
        if state.speed < 0:
            raise ValueError("speed must not be negative")
        self._state = state
        self._real_time = real_time

    @classmethod
    def starting_now(
        cls, speed: float = 1.0, real_time: Callable[[], float] = time.time
    ) -> SimClock:
        """A clock that reads the real time now and runs at `speed`."""
        now = real_time()
        return cls(ClockState(now, now, speed), real_time)

    @property
    def state(self) -> ClockState:
        """The anchors to persist."""
        return self._state

    @property
    def speed(self) -> float:
        """Simulated seconds per real second (0 freezes the clock)."""
        return self._state.speed

    def now_ts(self) -> float:
        """The simulated time as epoch seconds."""
        state = self._state
        return state.sim_anchor + (self._real_time() - state.real_anchor) * state.speed

    def now(self) -> datetime:
        """The simulated time as an aware UTC datetime."""
        return to_datetime(self.now_ts())

    def set(self, *, now: datetime | None = None, speed: float | None = None) -> None:
        """Jump to `now` and/or change the speed; unspecified parts carry on unchanged."""
        if now is not None and now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if speed is not None and speed < 0:
            raise ValueError("speed must not be negative")
        # re-anchor at the present so a speed change does not rewrite the past
        sim = now.timestamp() if now is not None else self.now_ts()
        self._state = ClockState(
            sim, self._real_time(), self._state.speed if speed is None else speed
        )

    def advance(self, seconds: float) -> None:
        """Jump forward by `seconds` of simulated time."""
        if seconds < 0:
            raise ValueError("the clock only advances forward")
        self.set(now=to_datetime(self.now_ts() + seconds))

    def real_seconds_until(self, timestamp: float) -> float | None:
        """Real seconds until simulated `timestamp` (0 if past), None if the clock is frozen."""
        remaining = timestamp - self.now_ts()
        if remaining <= 0:
            return 0.0
        if self._state.speed == 0:
            return None
        return remaining / self._state.speed
