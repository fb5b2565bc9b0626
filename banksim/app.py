"""The bank simulator's HTTP API (FastAPI): a separate service with its own SQLite storage.

- SEPA: `POST /v1/sepa/messages` (pacs.008, XSD-validated, deduplicated by MsgId); status
  comes back as pacs.002 (ACCP, then ACSC or RJCT) by signed callback and
  `GET /v1/sepa/messages/{id}/status`.
- ACH: `POST /v1/ach/files` (NACHA, validated record by record, deduplicated by file id);
  settlement at cut-off windows, signed settlement notice and return files;
  `GET /v1/ach/files/{id}`.
- Statements: `GET /v1/statements/{date}` (camt.053).
- Admin: rules, faults (deterministic by seed), the simulator clock, statement adjustments.
Errors are RFC 9457 problem documents with a machine-readable `code`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from banksim import ach, api_admin, api_rails, recalls, sepa
from banksim.bank import Bank
from banksim.clock import SimClock
from banksim.faults import FaultInjector
from banksim.outbox import Outbox
from banksim.problems import problem
from banksim.scheduler import Scheduler
from banksim.store import Store
from kernel.settings import Settings, get_settings
from rails.business_days import AchCalendar


@asynccontextmanager
async def running_bank(settings: Settings) -> AsyncIterator[Bank]:
    """Open the store, resume the clock, jobs and callbacks; stop them all on exit."""
    store = Store.open(settings.banksim_db_path)
    try:
        state = store.load_clock()
        clock = SimClock(state) if state is not None else SimClock.starting_now()
        store.save_clock(clock.state)
        async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client:
            bank = Bank(
                settings=settings,
                store=store,
                clock=clock,
                calendar=AchCalendar(
                    settings.banksim.ach_cutoffs.split(","), settings.banksim.ach_timezone
                ),
                faults=FaultInjector(),
                outbox=Outbox(store, settings, client),
                scheduler=Scheduler(store, clock),
            )
            sepa.register(bank)
            recalls.register(bank)
            ach.register(bank)
            # nothing is lost across restarts: due jobs run, undelivered callbacks go out
            bank.scheduler.start()
            bank.outbox.resume()
            try:
                yield bank
            finally:
                await bank.scheduler.aclose()
                await bank.outbox.aclose()
    finally:
        store.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the simulator; `settings` defaults to the process-wide ones."""
    config = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running_bank(config) as bank:
            app.state.bank = bank
            yield

    app = FastAPI(
        title="banksim",
        summary="Bank simulator: SEPA pacs.008 and ACH NACHA in, signed callbacks out",
        version="0.2.0",
        lifespan=lifespan,
    )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else f"http_{exc.status_code}"
        return problem(exc.status_code, code, "HTTP error", str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        detail = f"{where}: {first.get('msg', 'invalid request')}"
        return problem(422, "validation_error", "Invalid request", detail)

    @app.exception_handler(api_rails.UnsignedRequestError)
    async def unsigned(_: Request, __: api_rails.UnsignedRequestError) -> JSONResponse:
        return problem(
            401,
            "invalid_signature",
            "Unauthorized",
            "the request carries no valid platform signature",
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness."""
        return {"status": "ok"}

    app.include_router(api_rails.router)
    app.include_router(api_admin.router)
    return app
