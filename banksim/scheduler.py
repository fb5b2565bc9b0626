"""Jobs on simulated time: settlement steps run when the simulator clock reaches them.

Jobs live in the store, so a restart resumes them. One background loop sleeps until the next
job is due in real time (given the clock's speed) or until woken: by a new job or a clock
change. `run_due` runs everything due in due order; it is synchronous (SQLite and building
messages only), so a clock jump answers only once its consequences are recorded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from banksim.clock import SimClock
from banksim.store import Job, Store

logger = logging.getLogger("banksim")

Handler = Callable[[Job], None]
# re-read the clock at least this often, so drift and missed wake-ups never stall the loop
MAX_SLEEP_SECONDS = 1.0


class Scheduler:
    """Runs the handler of each job kind when the job falls due on the simulator clock."""

    def __init__(self, store: Store, clock: SimClock) -> None:
        self._store = store
        self._clock = clock
        self._handlers: dict[str, Handler] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def register(self, kind: str, handler: Handler) -> None:
        """Run `handler` for every job of `kind`."""
        self._handlers[kind] = handler

    def schedule(
        self, kind: str, ref: str, due_at: float, payload: dict[str, Any] | None = None
    ) -> int:
        """Schedule a job at simulated `due_at` (epoch seconds); return its id."""
        if kind not in self._handlers:
            raise ValueError(f"no handler for job kind {kind!r}")
        job_id = self._store.add_job(kind, ref, due_at, payload)
        self.wake()
        return job_id

    def wake(self) -> None:
        """Recompute when to run next (after a new job or a clock change)."""
        self._wake.set()

    def run_due(self) -> int:
        """Run every job due by now, earliest first; return how many ran."""
        ran = 0
        while (job := self._store.next_due_job(self._clock.now_ts())) is not None:
            try:
                # the handler's effects and the job's completion commit together
                with self._store.transaction():
                    self._handlers[job.kind](job)
                    self._store.finish_job(job.id)
            except Exception:
                logger.exception("job %s %s failed", job.kind, job.ref)
                self._store.finish_job(job.id, failed=True)
            ran += 1
        return ran

    def start(self) -> None:
        """Start the background loop."""
        self._task = asyncio.create_task(self._loop(), name="banksim:scheduler")

    async def aclose(self) -> None:
        """Stop the loop; pending jobs stay in the store for the next start."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                self.run_due()
                due = self._store.next_job_due_at()
            except Exception:
                # e.g. a locked or broken database: keep the loop alive and try again
                logger.exception("scheduler pass failed")
                due = None
            wait = None if due is None else self._clock.real_seconds_until(due)
            timeout = MAX_SLEEP_SECONDS if wait is None else min(wait, MAX_SLEEP_SECONDS)
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass
