"""The all-in-one payments worker: the payment workflow and all its activities on one queue."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import signal
from collections.abc import Callable
from datetime import timedelta
from typing import Any

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
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import Worker, WorkerDeploymentConfig

from activities.bank_http import BankAuth
from activities.batches import BatchActivities
from activities.counterparties import CounterpartyActivities
from activities.kyc import KycActivities
from activities.ledger import LedgerActivities
from activities.limits import LimitActivities, tier_limits
from activities.list_refresh import ReloadingScreening, WatchLists, ensure_list_refresh_schedule
from activities.notify import WebhookActivities
from activities.onboarding import compliance_list_activities
from activities.partitions import PartitionActivities
from activities.payment_records import PaymentRecordActivities
from activities.payment_schedules import PaymentScheduleActivities
from activities.rails import AchAdapter, RailActivities, SepaAdapter
from activities.recalls import RecallActivities
from activities.reconciliation import ReconciliationActivities
from activities.retention import RetentionActivities
from activities.reviews import ReviewActivities
from activities.verification import VerificationActivities
from activities.webhook_http import webhook_client
from kernel.bytecode_cache import cache_bytecode_under, compile_sandbox_code_once
from kernel.db import dispose_engines, get_engine
from kernel.settings import Settings, get_settings, secret_list
from kernel.temporal_client import connect, metrics_runtime
from kernel.tracing import configure_tracing
from ledger.batcher import TransferBatcher
from workers.activity_registry import activities_by_role
from workers.log_context import LogContextInterceptor
from workflows.ledger_maintenance import (
    INTERVAL,
    PURGE_INTERVAL,
    PURGE_SCHEDULE_ID,
    SCHEDULE_ID,
    VERIFY_INTERVAL,
    VERIFY_SCHEDULE_ID,
    LedgerMaintenanceWorkflow,
)
from workflows.models import ExpireInput, PartitionInput, ReconcileInput
from workflows.partition_maintenance import INTERVAL as PARTITION_INTERVAL
from workflows.partition_maintenance import SCHEDULE_ID as PARTITION_SCHEDULE_ID
from workflows.partition_maintenance import PartitionMaintenanceWorkflow
from workflows.queues import ROLES, Role, queue_for
from workflows.reconciliation import SCHEDULE_ID as RECONCILIATION_SCHEDULE_ID
from workflows.reconciliation import ReconciliationWorkflow
from workflows.registry import WORKFLOWS

log = structlog.get_logger()
# in-flight activities get this long to finish when the worker is told to stop
GRACEFUL_SHUTDOWN = timedelta(seconds=20)
# logged once the worker polls its queue; the dev stack waits for it
READY_MESSAGE = "worker started"


def selected_roles(settings: Settings) -> list[Role]:
    """The queue roles this process polls (`PAYMENTS_WORKER_QUEUES`: all, or e.g. ledger)."""
    if settings.worker.queues.strip() == "all":
        return list(ROLES)
    names = {name.strip() for name in settings.worker.queues.split(",") if name.strip()}
    unknown = names - set(ROLES)
    if unknown or not names:
        raise ValueError(f"worker_queues must be 'all' or a subset of {ROLES}, not {unknown}")
    if not settings.worker.split_activity_queues:
        # payments would put every activity on the payments queue, which this worker alone
        # cannot serve
        raise ValueError("worker_queues other than 'all' needs split_activity_queues on")
    return [role for role in ROLES if role in names]


def activity_implementations(
    client: Client,
    settings: Settings,
    http: httpx.AsyncClient,
    lists: WatchLists | None,
    *,
    webhook_http: httpx.AsyncClient,
) -> list[Callable[..., Any]]:
    """Every activity this process can run (compliance ones only with the watch lists);
    `webhook_http` calls partners' URLs, `http` the bank and the list sources."""
    engine = get_engine(settings)
    records = PaymentRecordActivities(engine, client, settings)
    batch_window = settings.worker.ledger_batch_window_ms / 1000
    ledger = LedgerActivities(
        engine,
        TransferBatcher(engine, window=batch_window, max_batch=settings.worker.ledger_batch_max)
        if batch_window > 0
        else None,
    )
    verification = VerificationActivities(engine)
    ach = AchAdapter(http, engine, client, settings)
    rails = RailActivities(SepaAdapter(http, settings), ach)
    counterparties = CounterpartyActivities(engine, http, ach, client, settings)
    batches = BatchActivities(engine, client, settings)
    recalls = RecallActivities(engine, http, ach, client, settings)
    implementations: list[Callable[..., Any]] = [
        records.record_payment_status,
        batches.start_batch_page,
        batches.read_batch_progress,
        batches.record_batch_status,
        batches.cancel_batch_items,
        PaymentScheduleActivities(engine, client, settings).make_scheduled_payment,
        records.record_review_escalation,
        ReviewActivities(engine, secret_list(settings.reviews.token_secrets)).verify_review_token,
        WebhookActivities(engine, webhook_http, settings).deliver_webhook,
        ledger.hold_funds,
        ledger.post_hold,
        ledger.void_hold,
        ledger.block_funds,
        ledger.reverse_payment,
        ledger.expire_pending,
        ledger.observe_platform,
        verification.verify_full_chunks,
        verification.finish_full_verification,
        RetentionActivities(engine, settings).purge_expired_records,
        PartitionActivities(engine, settings).ensure_partitions,
        rails.submit_to_rail,
        rails.poll_rail_status,
        rails.ask_rail_outcome,
        rails.submit_ach_file,
        ReconciliationActivities(http, engine, settings).reconcile_statement,
        counterparties.check_payee,
        counterparties.send_prenote,
        counterparties.record_counterparty_verification,
        recalls.send_recall,
        recalls.record_recall_outcome,
        recalls.record_recall_funds_overdue,
        recalls.tell_payment_recalled,
        recalls.confirm_recall,
    ]
    if lists is not None:
        # payments screen against the current lists (reloaded when a refresh records new ones)
        implementations += [
            *compliance_list_activities(engine, lists, client, settings),
            KycActivities(engine).check_debtor_kyc,
            ReloadingScreening(lists, engine).screen_parties,
            LimitActivities(engine, tier_limits(settings.limits)).check_payment_limits,
        ]
    return implementations


def build_workers(
    client: Client,
    settings: Settings,
    http: httpx.AsyncClient,
    webhook_http: httpx.AsyncClient,
    lists: WatchLists | None,
) -> list[Worker]:
    """One Worker per selected role, each with the activities of its queue."""
    roles = selected_roles(settings)
    implementations = activity_implementations(
        client, settings, http, lists, webhook_http=webhook_http
    )
    # each on its role's queue, as workflows/steps.py declares (and checked against it)
    by_role = activities_by_role(implementations, roles)
    deployment = WorkerDeploymentConfig(
        version=WorkerDeploymentVersion("payments", settings.worker.build_id),
        use_worker_versioning=settings.worker.versioning,
        # a workflow finishes on the build that started it: no code change reaches a
        # payment half-way, whatever the deploy does (old builds drain, then retire)
        default_versioning_behavior=(
            VersioningBehavior.PINNED
            if settings.worker.versioning
            else VersioningBehavior.UNSPECIFIED
        ),
    )
    if not settings.worker.split_activity_queues and roles == list(ROLES):
        # payments run their activities on the workflow's own queue: this worker takes them
        # there, and the server hands each one straight back to it (eager dispatch). The
        # role queues stay polled for payments started while queues were split.
        by_role["payments"] = list(
            dict.fromkeys(activity for role in ROLES for activity in by_role[role])
        )
    workers = []
    for role in roles:
        workers.append(
            Worker(
                client,
                task_queue=queue_for(settings.temporal.task_queue, role),
                workflows=list(WORKFLOWS) if role == "payments" else [],
                activities=by_role[role],
                deployment_config=deployment,
                max_concurrent_activities=settings.worker.max_concurrent_activities,
                max_concurrent_workflow_tasks=settings.worker.max_concurrent_workflow_tasks,
                # in-flight activities get this long to finish when the worker is told to stop
                graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
                interceptors=[LogContextInterceptor()],
            )
        )
    return workers


async def ensure_maintenance_schedule(client: Client, settings: Settings) -> None:
    """Create the maintenance schedules once (every worker tries; the first wins)."""
    for schedule_id, every, request in (
        (SCHEDULE_ID, INTERVAL, ExpireInput()),
        (VERIFY_SCHEDULE_ID, VERIFY_INTERVAL, ExpireInput(verify_ledger=True)),
        (PURGE_SCHEDULE_ID, PURGE_INTERVAL, ExpireInput(purge_expired=True)),
    ):
        with contextlib.suppress(ScheduleAlreadyRunningError):
            await client.create_schedule(
                schedule_id,
                Schedule(
                    action=ScheduleActionStartWorkflow(
                        LedgerMaintenanceWorkflow.run,
                        request,
                        id=schedule_id,
                        task_queue=settings.temporal.task_queue,
                    ),
                    spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
                    policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
                ),
            )


async def ensure_partition_schedule(client: Client, settings: Settings) -> None:
    """Create the months ahead's partitions daily (every worker tries; the first wins)."""
    with contextlib.suppress(ScheduleAlreadyRunningError):
        await client.create_schedule(
            PARTITION_SCHEDULE_ID,
            Schedule(
                action=ScheduleActionStartWorkflow(
                    PartitionMaintenanceWorkflow.run,
                    PartitionInput(),
                    id=PARTITION_SCHEDULE_ID,
                    task_queue=settings.temporal.task_queue,
                ),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=PARTITION_INTERVAL)]),
                policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            ),
            # the first pass at once, not a day after the worker first starts
            trigger_immediately=True,
        )


async def ensure_reconciliation_schedule(client: Client, settings: Settings) -> None:
    """Reconcile yesterday's statements every morning (after the banks' end of day)."""
    with contextlib.suppress(ScheduleAlreadyRunningError):
        await client.create_schedule(
            RECONCILIATION_SCHEDULE_ID,
            Schedule(
                action=ScheduleActionStartWorkflow(
                    ReconciliationWorkflow.run,
                    ReconcileInput(),
                    id=RECONCILIATION_SCHEDULE_ID,
                    task_queue=settings.temporal.task_queue,
                ),
                spec=ScheduleSpec(cron_expressions=[settings.reconciliation.cron]),
                policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            ),
        )


class WatchListUnavailableError(SystemExit):
    """The configured watch lists cannot be read: the worker must not screen without them.

    A SystemExit, so the process ends with one line naming the setting, not a traceback.
    """


async def load_watch_lists(settings: Settings) -> WatchLists:
    """The configured sanctions and PEP lists; a missing or unreadable one stops the worker."""
    source = settings.lists.sanctions_source or str(settings.lists.sanctions_dir)
    hint = (
        f"check PAYMENTS_SANCTIONS_SOURCE / PAYMENTS_SANCTIONS_DIR (now {source!r})"
        " and PAYMENTS_PEP_SOURCE"
    )
    try:
        lists = await WatchLists.load(get_engine(settings), settings)
    except (OSError, ValueError, KeyError, csv.Error, httpx.HTTPError) as error:
        raise WatchListUnavailableError(
            f"payments worker: cannot load the watch lists ({type(error).__name__}: {error});"
            f" {hint}"
        ) from None
    if lists.loaded.sanctions.name_count == 0:
        # a file that parses to nothing (wrong format, truncated download) would pass every
        # payment: an empty sanctions list is no list
        raise WatchListUnavailableError(
            "payments worker: cannot load the watch lists (the sanctions list has no names);"
            f" {hint}"
        )
    return lists


async def run(settings: Settings | None = None) -> None:
    """Run the worker until SIGINT/SIGTERM, then drain and close every connection."""
    settings = settings or get_settings()
    cache_bytecode_under(settings.data_dir)
    compile_sandbox_code_once()
    configure_tracing(settings, "payments-worker")
    lists = None
    if "compliance" in selected_roles(settings):
        lists = await load_watch_lists(settings)
        log.info(
            "watch lists loaded",
            versions=lists.loaded.versions,
            names=lists.loaded.sanctions.name_count,
        )
    client = await connect(settings, runtime=metrics_runtime(settings))
    await ensure_maintenance_schedule(client, settings)
    await ensure_partition_schedule(client, settings)
    await ensure_list_refresh_schedule(client, settings)
    await ensure_reconciliation_schedule(client, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with (
        httpx.AsyncClient(
            timeout=httpx.Timeout(5.0),
            # requests to the bank carry our signature; list sources get none
            auth=BankAuth(settings.rails.bank_url, settings.rails.submission_secret),
        ) as http,
        webhook_client(settings) as webhook_http,
    ):
        workers = build_workers(client, settings, http, webhook_http, lists)
        async with contextlib.AsyncExitStack() as running:
            for worker in workers:
                await running.enter_async_context(worker)
            log.info(READY_MESSAGE, task_queues=[w.task_queue for w in workers])
            await stop.wait()
            log.info("worker stopping")
    await dispose_engines()
