"""`python -m workers`: run one payments worker with the platform settings."""

from __future__ import annotations

import asyncio

from kernel.environment import Uses, require_safe_secrets
from kernel.logging import configure_logging
from kernel.settings import get_settings
from kernel.temporal_client import exit_without_finalizing
from workers.payments_worker import run, selected_roles

if __name__ == "__main__":
    configure_logging()
    settings = get_settings()
    # the worker signs nothing for the bank and serves no codec: payload keys and webhooks;
    # the one that runs the workflows (payments role) also checks review tokens
    uses = [Uses.TEMPORAL, Uses.WEBHOOKS, Uses.BANK_SUBMISSIONS]
    if "payments" in selected_roles(settings):
        uses.append(Uses.REVIEWS)
    require_safe_secrets(settings, "worker", uses)
    asyncio.run(run())
    exit_without_finalizing(0)
