"""The simulator's parts, wired together: what every request handler and job handler shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from banksim.clock import SimClock
from banksim.faults import FaultInjector
from banksim.outbox import Outbox
from banksim.scheduler import Scheduler
from banksim.store import Store
from kernel.settings import Settings
from rails.business_days import AchCalendar


@dataclass(slots=True)
class Bank:
    """One running simulator."""

    settings: Settings
    store: Store
    clock: SimClock
    calendar: AchCalendar
    faults: FaultInjector
    outbox: Outbox
    scheduler: Scheduler

    def now(self) -> float:
        """Simulated time, epoch seconds."""
        return self.clock.now_ts()

    def set_clock(self, *, now: datetime | None = None, speed: float | None = None) -> int:
        """Jump and/or re-speed the clock, persist it, run what fell due; return how many ran."""
        self.clock.set(now=now, speed=speed)
        self.store.save_clock(self.clock.state)
        ran = self.scheduler.run_due()
        self.scheduler.wake()
        return ran
