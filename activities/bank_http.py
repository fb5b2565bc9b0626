"""The HTTP client that talks to the bank: every request to it is signed (rails/bank_auth.py).

The worker's one client also fetches watch lists and other sources; only requests to the
bank's own origin carry a signature.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from urllib.parse import urlsplit

import httpx

from kernel.settings import secret_list
from rails.bank_auth import request_headers


class BankAuth(httpx.Auth):
    """Adds the platform's signature to every request for the bank's origin."""

    requires_request_body = True

    def __init__(self, bank_url: str, secrets: str) -> None:
        origin = urlsplit(bank_url)
        self._origin = (origin.scheme, origin.netloc)
        self._secrets = secret_list(secrets)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign the request when it goes to the bank; pass others through untouched."""
        if (request.url.scheme, request.url.netloc.decode()) == self._origin:
            target = request.url.raw_path.decode("ascii")
            request.headers.update(
                request_headers(
                    self._secrets, int(time.time()), request.method, target, request.content
                )
            )
        yield request
