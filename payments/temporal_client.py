"""Connect to Temporal with the platform's settings (one place for address/namespace/TLS)."""

from __future__ import annotations

import asyncio

from temporalio.client import Client

from payments.settings import Settings, get_settings


async def connect(settings: Settings | None = None, *, wait_seconds: float = 60.0) -> Client:
    """Connect, retrying while the server is still starting (dev stack, restarts)."""
    settings = settings or get_settings()
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        try:
            return await Client.connect(
                settings.temporal_address, namespace=settings.temporal_namespace
            )
        except RuntimeError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)
