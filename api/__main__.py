"""`python -m api`: serve the API with uvicorn on the configured host and port."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from kernel.environment import Uses, require_safe_secrets
from kernel.logging import configure_logging
from kernel.settings import get_settings
from kernel.temporal_client import exit_without_finalizing

if __name__ == "__main__":
    configure_logging()
    settings = get_settings()
    require_safe_secrets(
        settings,
        "api",
        (
            Uses.TEMPORAL,
            Uses.RAIL_CALLBACKS,
            Uses.CODEC_SERVER,
            Uses.WEBHOOKS,
            Uses.REVIEWS,
        ),
    )
    uvicorn.run(
        create_app(settings),
        host=settings.api.host,
        port=settings.api.port,
        log_config=None,
        access_log=False,
    )
    exit_without_finalizing(0)
