"""`python -m banksim`: serve the bank simulator on settings.banksim.host:banksim_port."""

from __future__ import annotations

import uvicorn

from banksim.app import create_app
from kernel.environment import Uses, require_safe_secrets
from kernel.logging import configure_logging
from kernel.settings import get_settings


def main() -> None:
    """Run the simulator until SIGINT/SIGTERM (uvicorn then runs the lifespan shutdown)."""
    settings = get_settings()
    require_safe_secrets(settings, "banksim", (Uses.RAIL_CALLBACKS, Uses.BANK_SUBMISSIONS))
    configure_logging()
    uvicorn.run(
        create_app(settings),
        host=settings.banksim.host,
        port=settings.banksim.port,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
