"""`python -m workers`: run one payments worker with the platform settings."""

from __future__ import annotations

import asyncio

from kernel.environment import Uses, require_safe_secrets
from kernel.logging import configure_logging
from kernel.settings import get_settings
from kernel.temporal_client import exit_without_finalizing
from workers.payments_worker import run

if __name__ == "__main__":
    configure_logging()
    # the worker signs nothing for the bank and serves no codec: payload keys and webhooks
    require_safe_secrets(get_settings(), "worker", (Uses.TEMPORAL, Uses.WEBHOOKS))
    asyncio.run(run())
    exit_without_finalizing(0)
