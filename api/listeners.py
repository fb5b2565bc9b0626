"""Two listeners, one application: the public port for partners, the internal one for the bank.

The bank's callbacks move money (a forged `ACSC` would settle a payment), and `/metrics`
tells an attacker what the platform is doing; neither belongs where partners connect. The
API process listens on two ports and this middleware keeps each route on its own: rail
callbacks and metrics only on the internal port, everything else only on the public one.
Only the public port is published (docker-compose, the Kubernetes Ingress), and a network
policy lets only the bank reach the internal one. Health checks answer on both.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import problem_response
from api.problems import ROUTE_NOT_FOUND

INTERNAL_PREFIXES = ("/v1/rails/", "/metrics")
BOTH = frozenset({"/healthz", "/readyz"})


def is_internal(path: str) -> bool:
    """Whether `path` is served on the internal listener only."""
    return path.startswith(INTERNAL_PREFIXES)


class ListenerSplitMiddleware:
    """Answers 404 to a route asked on the other listener's port."""

    def __init__(self, app: ASGIApp, *, public_port: int, internal_port: int) -> None:
        self.app = app
        self.public_port = public_port
        self.internal_port = internal_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on when its route belongs to the port it came in on."""
        if scope["type"] != "http" or self.public_port == self.internal_port:
            await self.app(scope, receive, send)
            return
        server = scope.get("server")
        port = server[1] if server else None
        path = scope.get("path", "")
        internal_port = port == self.internal_port
        if path in BOTH or is_internal(path) == internal_port:
            await self.app(scope, receive, send)
            return
        # the same answer as for a route that does not exist: nothing to learn from it
        response = problem_response(ROUTE_NOT_FOUND.status, ROUTE_NOT_FOUND.code, "Not Found")
        await response(scope, receive, send)
