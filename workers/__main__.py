"""`python -m workers`: run one payments worker with the platform settings."""

from __future__ import annotations

import asyncio

from kernel.logging import configure_logging
from kernel.temporal_client import exit_without_finalizing
from workers.payments_worker import run

if __name__ == "__main__":
    configure_logging()
    asyncio.run(run())
    exit_without_finalizing(0)
