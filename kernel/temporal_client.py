"""Connect to Temporal with the platform's settings (one place for address/namespace/TLS)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import structlog
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RetryConfig, TLSConfig

from kernel.codec import data_converter
from kernel.settings import Settings, TemporalSettings, get_settings
from kernel.tracing import temporal_interceptors

log = structlog.get_logger()


def _read(path: str, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise SystemExit(f"{setting}: cannot read {path!r} ({err.strerror})") from None


def tls_config(settings: TemporalSettings) -> TLSConfig | bool:
    """The TLS configuration the settings ask for: False for plain gRPC (the dev server),
    True for TLS against the system's roots, else the CA, client pair and server name."""
    if not settings.tls:
        if settings.tls_cert_path or settings.tls_ca_path:
            # a certificate configured but TLS off would send everything in clear: refuse
            raise SystemExit("PAYMENTS_TEMPORAL_TLS: certificates are set but TLS is off")
        return False
    if bool(settings.tls_cert_path) != bool(settings.tls_key_path):
        raise SystemExit(
            "PAYMENTS_TEMPORAL_TLS_CERT_PATH and _KEY_PATH: set both (mTLS) or neither"
        )
    if not (settings.tls_ca_path or settings.tls_cert_path or settings.tls_server_name):
        return True
    return TLSConfig(
        server_root_ca_cert=(
            _read(settings.tls_ca_path, "PAYMENTS_TEMPORAL_TLS_CA_PATH")
            if settings.tls_ca_path
            else None
        ),
        client_cert=(
            _read(settings.tls_cert_path, "PAYMENTS_TEMPORAL_TLS_CERT_PATH")
            if settings.tls_cert_path
            else None
        ),
        client_private_key=(
            _read(settings.tls_key_path, "PAYMENTS_TEMPORAL_TLS_KEY_PATH")
            if settings.tls_key_path
            else None
        ),
        domain=settings.tls_server_name or None,
    )


def connect_options(settings: TemporalSettings) -> dict[str, Any]:
    """Where and how every Temporal client of the platform connects (address, namespace,
    TLS, API key); the codec and interceptors are added by `connect`."""
    return {
        "target_host": settings.address,
        "namespace": settings.namespace,
        "tls": tls_config(settings),
        "api_key": settings.api_key or None,
    }


async def connect(
    settings: Settings | None = None,
    *,
    wait_seconds: float = 60.0,
    runtime: Runtime | None = None,
    retry_seconds: float | None = None,
    lazy_after_wait: bool = False,
) -> Client:
    """Connect, retrying while the server is still starting (dev stack, restarts).

    `retry_seconds` bounds how long each call keeps retrying an unreachable server (the
    SDK's default is 10 s): the API answers 503 sooner instead of holding its client. With
    `lazy_after_wait`, a server still unreachable after `wait_seconds` gives a client that
    connects on its first call instead of an error: the API then starts and serves what
    PostgreSQL alone answers while Temporal is down (its calls fail until it is back).
    """
    settings = settings or get_settings()
    retry = None
    if retry_seconds is not None:
        retry = RetryConfig(max_elapsed_time_millis=max(1, int(retry_seconds * 1000)))
    options: dict[str, Any] = {
        **connect_options(settings.temporal),
        "runtime": runtime,
        "data_converter": data_converter(settings),
        "interceptors": temporal_interceptors(settings),
        "retry_config": retry,
    }
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        try:
            return await Client.connect(**options)
        except RuntimeError:
            if asyncio.get_running_loop().time() > deadline:
                if lazy_after_wait:
                    log.warning("temporal unreachable; connecting on first use")
                    return await Client.connect(**options, lazy=True)
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
