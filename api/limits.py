"""Request limits: body size (413), media type (415) and per-key rate limits (429)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PROBLEM_JSON, ProblemError, problem_body

JSON_TYPES = ("application/json",)
# the bank's callbacks are XML and verified by signature, not by API key
NON_JSON_PREFIXES = ("/v1/rails/",)
CODEC_MAX_BODY_BYTES = 4 * 1024 * 1024
# a payment batch may also come as CSV or pain.001 XML, and is larger than any other body
BATCH_PATH = "/v1/payment-batches"
BATCH_TYPES = ("text/csv", "application/xml", "text/xml")


async def _send_problem(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps(problem_body(status, code, detail)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestLimitsMiddleware:
    """Refuse NUL characters, oversized bodies and non-JSON bodies before any handler runs.

    The body is read here (bounded), so a client streaming gigabytes is cut off at the limit
    instead of filling memory, then replayed to the application unchanged.
    """

    def __init__(
        self, app: ASGIApp, max_body_bytes: int, batch_max_body_bytes: int = 16 * 1024 * 1024
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.batch_max_body_bytes = batch_max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"")
        ):
            # PostgreSQL text cannot hold NUL: refuse it at the door, not as a database error
            await _send_problem(send, 400, "invalid_characters", "NUL characters are not allowed.")
            return
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        # header bytes are Latin-1 (RFC 9110, as Starlette reads them): a byte that is not
        # UTF-8 is a value to refuse or ignore, never a crash
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        # the codec server receives whole batches of history payloads
        limit = CODEC_MAX_BODY_BYTES if scope["path"].startswith("/codec/") else self.max_body_bytes
        batch = scope["path"] == BATCH_PATH
        if batch:
            limit = self.batch_max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _send_problem(
                send,
                413,
                "payload_too_large",
                f"Bodies are limited to {limit} bytes.",
            )
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _send_problem(
                    send,
                    413,
                    "payload_too_large",
                    f"Bodies are limited to {limit} bytes.",
                )
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if (
            body
            and not scope["path"].startswith(NON_JSON_PREFIXES)
            and media_type not in JSON_TYPES
            and not media_type.endswith("+json")
            and not (batch and media_type in BATCH_TYPES)
        ):
            await _send_problem(
                send,
                415,
                "unsupported_media_type",
                "Send JSON with Content-Type: application/json.",
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets per API key, in this process (each replica limits on its own).

    A key may make `rate` requests per `per_seconds` on average, with bursts of up to `rate`.
    """

    # beyond this many buckets, idle ones are dropped: keyed by source address (failed
    # authentications), the map would otherwise grow with every address that ever knocked
    MAX_BUCKETS = 10_000

    def __init__(self, default_rate: int, *, per_seconds: float = 1.0) -> None:
        self.default_rate = default_rate
        self._per_seconds = per_seconds
        self._buckets: dict[str, _Bucket] = {}

    def check(self, key_id: str, rate: int | None) -> float | None:
        """Take a token; None if allowed, else the seconds to wait before retrying."""
        return self._take(key_id, rate, take=True)

    def peek(self, key_id: str, rate: int | None = None) -> float | None:
        """None while `key_id` has a token left (none is taken), else the seconds to wait."""
        return self._take(key_id, rate, take=False)

    def _take(self, key_id: str, rate: int | None, *, take: bool) -> float | None:
        rate = rate or self.default_rate
        refill = rate / self._per_seconds  # tokens per second
        now = time.monotonic()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            if len(self._buckets) >= self.MAX_BUCKETS:
                self._drop_idle(now)
            bucket = self._buckets[key_id] = _Bucket(float(rate), now)
        bucket.tokens = min(float(rate), bucket.tokens + (now - bucket.updated) * refill)
        bucket.updated = now
        if bucket.tokens >= 1:
            if take:
                bucket.tokens -= 1
            return None
        return (1 - bucket.tokens) / refill

    def _drop_idle(self, now: float) -> None:
        # a bucket untouched for `per_seconds` has refilled whole, whatever its rate: forgetting
        # it changes nothing its owner could observe
        idle = [k for k, b in self._buckets.items() if now - b.updated >= self._per_seconds]
        for key in idle:
            del self._buckets[key]


def retry_after_header(wait_seconds: float) -> str:
    """Retry-After in whole seconds, never 0."""
    return str(max(1, math.ceil(wait_seconds)))


def take_or_refuse(limiter: RateLimiter, key_id: str, rate: int | None, what: str) -> None:
    """Take a token from `key_id`'s bucket, or refuse with 429 `rate_limited` and the
    `Retry-After` the bucket says."""
    wait = limiter.check(key_id, rate)
    if wait is not None:
        raise ProblemError(
            429,
            "rate_limited",
            f"Too many {what} for this API key; slow down.",
            headers={"Retry-After": retry_after_header(wait)},
        )
