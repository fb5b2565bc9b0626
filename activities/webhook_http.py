"""The HTTP side of a webhook delivery: to the vetted address only, and never more than a
small, undecoded piece of the answer (DESIGN §9 "Outbound calls").

The receiver is a stranger: it may redirect us inside, answer with a gzip bomb, or never
stop sending. So the request goes to the address the outbound guard vetted (the URL's host
travels in the Host header and as the TLS server name, and the certificate is checked
against it), redirects are not followed, the answer is asked for and read as identity
bytes, at most `MAX_RESPONSE_BYTES` of them, and every step has a timeout.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import httpx

from kernel.settings import Settings
from services.outbound_guard import OutboundTarget

MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class WebhookAnswer:
    """What an endpoint answered: its status and the first bytes of its body, as sent."""

    status: int
    body: bytes


def webhook_client(
    settings: Settings, *, verify: ssl.SSLContext | None = None
) -> httpx.AsyncClient:
    """The HTTP client of webhook deliveries (one per worker process); `verify` replaces the
    public CAs (tests trust their own)."""
    return httpx.AsyncClient(
        verify=verify if verify is not None else True,
        follow_redirects=False,
        # a proxy from the environment would connect wherever the URL says, not to the
        # vetted address
        trust_env=False,
        timeout=httpx.Timeout(
            connect=settings.webhooks.connect_timeout_seconds,
            read=settings.webhooks.read_timeout_seconds,
            write=settings.webhooks.read_timeout_seconds,
            pool=settings.webhooks.connect_timeout_seconds,
        ),
        # connections are pooled by address: one opened (and TLS-verified) for one host name
        # must never carry a request for another host name on the same address
        limits=httpx.Limits(max_keepalive_connections=0),
    )


async def post_to_target(
    http: httpx.AsyncClient,
    target: OutboundTarget,
    body: bytes,
    headers: dict[str, str],
    *,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> WebhookAnswer:
    """POST `body` to the vetted `target`, reading at most `max_bytes` of the answer; the
    target's next address is tried when one cannot be connected to (nothing was sent)."""
    *others, last = (target.address, *target.alternatives)
    for address in others:
        try:
            return await _post_to_address(http, target, address, body, headers, max_bytes)
        except httpx.ConnectError:
            continue
    return await _post_to_address(http, target, last, body, headers, max_bytes)


async def _post_to_address(
    http: httpx.AsyncClient,
    target: OutboundTarget,
    address: str,
    body: bytes,
    headers: dict[str, str],
    max_bytes: int,
) -> WebhookAnswer:
    url = httpx.URL(
        scheme=target.scheme,
        host=address,
        port=target.port,
        raw_path=target.target.encode("ascii"),
    )
    extensions: dict[str, Any] = {}
    if target.scheme == "https":
        extensions["sni_hostname"] = target.host
    request = http.build_request(
        "POST",
        url,
        content=body,
        headers={**headers, "host": target.host_header, "accept-encoding": "identity"},
        extensions=extensions,
    )
    response = await http.send(request, stream=True, follow_redirects=False)
    received = bytearray()
    try:
        # raw bytes: whatever Content-Encoding the answer claims, nothing is decompressed
        async for chunk in response.aiter_raw():
            received += chunk[: max_bytes - len(received)]
            if len(received) >= max_bytes:
                break
    finally:
        await response.aclose()
    return WebhookAnswer(response.status_code, bytes(received))
