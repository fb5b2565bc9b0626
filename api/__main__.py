"""`python -m api`: serve the API with uvicorn on the configured host and port."""

from __future__ import annotations

import socket

import uvicorn
from starlette.types import ASGIApp

from api.app import create_app
from kernel.environment import Uses, require_safe_secrets
from kernel.logging import configure_logging
from kernel.settings import Settings, get_settings
from kernel.temporal_client import exit_without_finalizing


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def server_config(settings: Settings, app: ASGIApp) -> uvicorn.Config:
    """uvicorn's configuration for the API: X-Forwarded-For is believed only from the proxies
    `PAYMENTS_API_FORWARDED_ALLOW_IPS` names (uvicorn's own default trusts loopback, and a
    process reading its FORWARDED_ALLOW_IPS variable would trust whatever that says)."""
    trusted = [part.strip() for part in settings.api.forwarded_allow_ips.split(",") if part.strip()]
    return uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or [],
    )


def listening_sockets(settings: Settings) -> list[socket.socket]:
    """The public listener, and the internal one unless it is the same port."""
    sockets = [_listen(settings.api.host, settings.api.port)]
    if settings.api.internal_port != settings.api.port:
        sockets.append(_listen(settings.api.internal_host, settings.api.internal_port))
    return sockets


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
            Uses.LISTENERS,
        ),
    )
    server = uvicorn.Server(server_config(settings, create_app(settings)))
    # one application on two listeners (api/listeners.py): partners reach the public one,
    # only the bank (and Prometheus) the internal one
    server.run(sockets=listening_sockets(settings))
    exit_without_finalizing(0)
