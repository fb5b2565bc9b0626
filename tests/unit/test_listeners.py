"""Each route on its own listener: the bank's callbacks and metrics only on the internal port,
the partner API only on the public one (api/listeners.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from api.listeners import ListenerSplitMiddleware

PUBLIC, INTERNAL = 8000, 8001


async def reached(app: Any, scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"reached"})


async def status_of(path: str, port: int, *, internal_port: int = INTERNAL) -> tuple[int, Any]:
    middleware = ListenerSplitMiddleware(
        lambda scope, receive, send: reached(None, scope, receive, send),
        public_port=PUBLIC,
        internal_port=internal_port,
    )
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "path": path, "server": ("127.0.0.1", port), "headers": []}
    await middleware(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], (body if body == b"reached" else json.loads(body))


@pytest.mark.parametrize(
    ("path", "public", "internal"),
    [
        ("/v1/rails/sepa/callbacks", 404, 200),
        ("/v1/rails/ach/returns", 404, 200),
        ("/metrics", 404, 200),
        ("/v1/payments", 200, 404),
        ("/codec/decode", 200, 404),
        ("/docs", 200, 404),
        ("/healthz", 200, 200),
        ("/readyz", 200, 200),
    ],
)
async def test_a_route_answers_on_its_own_listener_only(
    path: str, public: int, internal: int
) -> None:
    assert (await status_of(path, PUBLIC))[0] == public
    assert (await status_of(path, INTERNAL))[0] == internal


async def test_the_other_listeners_route_looks_like_no_route_at_all() -> None:
    status, body = await status_of("/v1/rails/sepa/callbacks", PUBLIC)
    assert (status, body["code"], body["title"]) == (404, "not_found", "Not Found")


async def test_one_port_for_both_serves_everything() -> None:
    # PAYMENTS_API_INTERNAL_PORT = PAYMENTS_API_PORT: a dev convenience, refused in production
    for path in ("/v1/rails/sepa/callbacks", "/metrics", "/v1/payments"):
        assert (await status_of(path, PUBLIC, internal_port=PUBLIC))[0] == 200
