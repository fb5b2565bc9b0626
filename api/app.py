"""The FastAPI application: routers, problem errors, one Temporal client per process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from api.errors import install_error_handlers
from api.limits import RateLimiter, RequestLimitsMiddleware
from api.listeners import ListenerSplitMiddleware
from api.metrics import MetricsMiddleware, metrics_endpoint
from api.openapi import install_openapi
from api.routers import (
    accounts,
    batches,
    codec,
    counterparties,
    customers,
    deposits,
    health,
    payment_schedules,
    payments,
    rails,
    reconciliations,
    screenings,
    webhooks,
)
from kernel.db import dispose_engines, get_engine
from kernel.settings import Settings, get_settings
from kernel.temporal_client import connect
from kernel.tracing import configure_tracing
from services.watch_lists import WatchLists


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for `settings` (defaults: the process settings)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.engine = get_engine(settings)
        # calls give up after a few seconds (503 + Retry-After, api/errors.py), and an API
        # started while Temporal is down still serves reads: it connects on first use
        app.state.temporal = await connect(
            settings,
            wait_seconds=10.0,
            retry_seconds=settings.api.temporal_retry_seconds,
            lazy_after_wait=True,
        )
        # the same versioned lists as the workers, reloaded when a refresh records new ones
        app.state.lists = await WatchLists.load(app.state.engine, settings)
        yield
        await dispose_engines()

    app = FastAPI(
        title="Payments Platform API",
        version="1.0.0",
        summary="Durable, regulated payments: every payment a Temporal workflow.",
        lifespan=lifespan,
    )
    install_error_handlers(app, retry_after_seconds=settings.api.outage_retry_after_seconds)
    if configure_tracing(settings, "payments-api") is not None:
        FastAPIInstrumentor.instrument_app(app)
    app.state.rate_limiter = RateLimiter(settings.api.rate_limit_per_second)
    app.state.auth_failure_limiter = RateLimiter(
        settings.api.auth_failures_per_minute, per_seconds=60.0
    )
    # ad-hoc screening answers whether a name is listed: without a tight limit it is an
    # oracle for tuning a disguise, so each key gets few calls a minute (and each is audited)
    app.state.screening_limiter = RateLimiter(
        settings.screening.rate_limit_per_minute, per_seconds=60.0
    )
    app.add_middleware(
        RequestLimitsMiddleware,
        max_body_bytes=settings.api.max_body_bytes,
        batch_max_body_bytes=settings.batches.max_body_bytes,
    )
    # the bank's callbacks and /metrics on the internal port only, the rest on the public one
    app.add_middleware(
        ListenerSplitMiddleware,
        public_port=settings.api.port,
        internal_port=settings.api.internal_port,
    )
    app.add_middleware(MetricsMiddleware)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    # only the Temporal Web UI calls us from a browser (the codec server)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[settings.codec.ui_origin],
        allow_credentials=True,
        allow_methods=["POST"],
        allow_headers=["authorization", "content-type", "x-namespace"],
    )
    app.include_router(health.router)
    app.include_router(codec.router)
    for module in (
        customers,
        accounts,
        deposits,
        payments,
        counterparties,
        batches,
        payment_schedules,
        screenings,
        webhooks,
        rails,
        reconciliations,
    ):
        # each operation declares its own errors (api.problems)
        app.include_router(module.router)
    install_openapi(app)
    return app
