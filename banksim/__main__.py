"""`python -m banksim`: serve the bank simulator on settings.banksim_host:banksim_port."""

from __future__ import annotations

import logging
import sys

import uvicorn

from banksim.app import create_app
from payments.settings import get_settings


def main() -> None:
    """Run the simulator until SIGINT/SIGTERM (uvicorn then runs the lifespan shutdown)."""
    settings = get_settings()
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    uvicorn.run(
        create_app(settings),
        host=settings.banksim_host,
        port=settings.banksim_port,
        log_level="info",
    )


if __name__ == "__main__":
    main()
