"""The all-in-one payments worker: the payment workflow and all its activities on one queue."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from datetime import timedelta

import httpx
import structlog
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)
from temporalio.worker import Worker

from activities.kyc import KycActivities
from activities.ledger import LedgerActivities
from activities.notify import WebhookActivities
from activities.payment_records import PaymentRecordActivities
from activities.rails import RailActivities
from activities.screening import ScreeningActivities
from compliance.matcher import Matcher
from compliance.screening import load_matcher
from payments.db import dispose_engines, get_engine
from payments.settings import Settings, get_settings
from payments.temporal_client import connect, metrics_runtime
from payments.tracing import configure_tracing
from workflows.ledger_maintenance import INTERVAL, SCHEDULE_ID, LedgerMaintenanceWorkflow
from workflows.models import ExpireInput
from workflows.payment import PaymentWorkflow
from workflows.webhook_delivery import WebhookDeliveryWorkflow

log = structlog.get_logger()
# logged once the worker polls its queue; the dev stack waits for it
READY_MESSAGE = "worker started"


def build_worker(
    client: Client, settings: Settings, http: httpx.AsyncClient, matcher: Matcher
) -> Worker:
    """Wire the payment workflow and its activities with their dependencies."""
    engine = get_engine(settings)
    kyc = KycActivities(engine)
    screening = ScreeningActivities(matcher)
    ledger = LedgerActivities(engine)
    records = PaymentRecordActivities(engine, client, settings)
    webhooks = WebhookActivities(engine, http)
    rails = RailActivities(http, settings)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[PaymentWorkflow, LedgerMaintenanceWorkflow, WebhookDeliveryWorkflow],
        activities=[
            kyc.check_debtor_kyc,
            screening.screen_parties,
            ledger.hold_funds,
            ledger.post_hold,
            ledger.void_hold,
            ledger.expire_pending,
            records.record_payment_status,
            rails.submit_to_rail,
            rails.poll_rail_status,
            webhooks.deliver_webhook,
        ],
        # in-flight activities get this long to finish when the worker is told to stop
        graceful_shutdown_timeout=timedelta(seconds=20),
    )


async def ensure_maintenance_schedule(client: Client, settings: Settings) -> None:
    """Create the ledger maintenance schedule once (every worker tries; the first wins)."""
    with contextlib.suppress(ScheduleAlreadyRunningError):
        await client.create_schedule(
            SCHEDULE_ID,
            Schedule(
                action=ScheduleActionStartWorkflow(
                    LedgerMaintenanceWorkflow.run,
                    ExpireInput(),
                    id=SCHEDULE_ID,
                    task_queue=settings.task_queue,
                ),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=INTERVAL)]),
                policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            ),
        )


async def run(settings: Settings | None = None) -> None:
    """Run the worker until SIGINT/SIGTERM, then drain and close every connection."""
    settings = settings or get_settings()
    configure_tracing(settings, "payments-worker")
    matcher = load_matcher(settings)
    log.info(
        "sanctions lists loaded",
        versions=[lst.version for lst in matcher.lists],
        names=matcher.name_count,
    )
    client = await connect(settings, runtime=metrics_runtime(settings))
    await ensure_maintenance_schedule(client, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as http:
        worker = build_worker(client, settings, http, matcher)
        async with worker:
            log.info(READY_MESSAGE, task_queue=settings.task_queue)
            await stop.wait()
            log.info("worker stopping")
    await dispose_engines()
