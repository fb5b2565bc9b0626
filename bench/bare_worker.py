"""The baseline's worker process: `BareWorkflow` and its do-nothing activity, nothing else.

    python bench/bare_worker.py --task-queue bench-bare [--task-queue bench-bare-ledger …]

It connects to the Temporal server of the platform settings (PAYMENTS_TEMPORAL_ADDRESS …),
with the platform's worker tuning (PAYMENTS_WORKER_MAX_CONCURRENT_*), but with the SDK's
defaults otherwise: no interceptors, and no payload codec unless `--codec`. The first queue
also runs the workflow; each queue gets a Worker of its own, as the payments worker does per
role. It prints READY once it polls, and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from bare_workflow import BareWorkflow, do_nothing
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.worker import Worker

from kernel.bytecode_cache import cache_bytecode_under, compile_sandbox_code_once
from kernel.codec import data_converter
from kernel.settings import Settings
from kernel.temporal_client import connect_options, exit_without_finalizing

READY = "bare worker ready"


async def bare_client(settings: Settings, codec: bool) -> Client:
    """A client with the SDK's defaults (or the platform's codec)."""
    return await Client.connect(
        **connect_options(settings.temporal),
        data_converter=data_converter(settings) if codec else DataConverter.default,
    )


async def serve(queues: list[str], codec: bool) -> None:
    """Poll `queues` until SIGTERM or SIGINT; with `codec`, encrypt payloads as the platform."""
    settings = Settings()
    cache_bytecode_under(settings.data_dir)  # as the payments worker does
    compile_sandbox_code_once()
    client = await bare_client(settings, codec)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as running:
        for index, queue in enumerate(dict.fromkeys(queues)):
            worker = Worker(
                client,
                task_queue=queue,
                workflows=[BareWorkflow] if index == 0 else [],
                activities=[do_nothing],
                max_concurrent_activities=settings.worker.max_concurrent_activities,
                max_concurrent_workflow_tasks=settings.worker.max_concurrent_workflow_tasks,
            )
            await running.enter_async_context(worker)
        print(READY, flush=True)
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task-queue", action="append", required=True, dest="queues")
    parser.add_argument("--codec", action="store_true", help="the platform's payload codec")
    arguments = parser.parse_args()
    asyncio.run(serve(arguments.queues, arguments.codec))
    exit_without_finalizing(0)
