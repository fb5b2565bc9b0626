"""The API's errors as exceptions: every 4xx and 5xx is an RFC 9457 problem document."""

from __future__ import annotations

from typing import Any

import httpx


class PaymentsError(Exception):
    """Base of every error this client raises."""


class ApiError(PaymentsError):
    """The API answered with a problem document (`code` is stable, `param` names the field).

    `retry_after` is the answer's `Retry-After` in seconds, when it gave one (429, 503).
    """

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.status = response.status_code
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        problem: dict[str, Any] = body if isinstance(body, dict) else {}
        self.problem = problem
        self.code: str = str(problem.get("code", "unknown"))
        self.title: str = str(problem.get("title", response.reason_phrase))
        self.detail: str = str(problem.get("detail", response.text[:500]))
        self.param: str | None = problem.get("param")
        self.type: str = str(problem.get("type", "about:blank"))
        self.retry_after = retry_after_seconds(response)
        super().__init__(f"{self.status} {self.code}: {self.detail}")


class WebhookVerificationError(PaymentsError):
    """A webhook delivery whose signature, timestamp or headers do not verify."""


def retry_after_seconds(response: httpx.Response) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from datetime import UTC, datetime
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
