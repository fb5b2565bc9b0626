"""Connect to Temporal with the platform's settings (one place for address/namespace/TLS)."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import NoReturn

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from kernel.codec import data_converter
from kernel.settings import Settings, get_settings
from kernel.tracing import temporal_interceptors


async def connect(
    settings: Settings | None = None, *, wait_seconds: float = 60.0, runtime: Runtime | None = None
) -> Client:
    """Connect, retrying while the server is still starting (dev stack, restarts)."""
    settings = settings or get_settings()
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        try:
            return await Client.connect(
                settings.temporal.address,
                namespace=settings.temporal.namespace,
                runtime=runtime,
                data_converter=data_converter(settings),
                interceptors=temporal_interceptors(settings),
            )
        except RuntimeError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


def metrics_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime exporting SDK metrics for Prometheus, or None when switched off."""
    if not settings.worker.metrics_port:
        return None
    address = f"{settings.worker.metrics_host}:{settings.worker.metrics_port}"
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))


def exit_without_finalizing(code: int) -> NoReturn:
    """Exit at once after a Temporal client was used.

    The SDK's Rust runtime keeps threads that may call into Python while the interpreter
    finalizes ("Fatal Python error: PyGILState_Release"); all work is done and flushed here,
    so skipping finalization loses nothing and keeps the exit code honest.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
