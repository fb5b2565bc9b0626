"""Whatever arrives in a header or a callback body, the API answers with a problem document or
acts on it, never with a 500 (#16 item 8): hypothesis against the running API and its
internal listener, including header bytes that are not UTF-8 and bodies that are signed
correctly but are not what the bank sends."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.settings import secret_list
from ops.devstack import Stack

# h11 refuses CR, LF and NUL in a header value before anything is sent: everything else goes
HEADER_BYTES = st.binary(max_size=300).filter(lambda b: not set(b) & {0, 10, 13})
HEADER_NAMES = st.sampled_from(
    [
        "Authorization",
        "Idempotency-Key",
        "Content-Type",
        "Accept",
        "Accept-Encoding",
        "X-Namespace",
        "Banksim-Signature",
        "Banksim-Timestamp",
        "Banksim-Event-Id",
        "If-None-Match",
    ]
)
FUZZ = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# what the HTTP server itself answers to a request it cannot parse, before the application
PROTOCOL_REFUSAL = (400, "Invalid HTTP request received.")


def _assert_answered(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if (response.status_code, response.text) == PROTOCOL_REFUSAL:
        return
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"]


def _send(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
    """The answer, or None when the HTTP client itself refuses to send such a header."""
    try:
        return client.request(method, path, **kwargs)
    except httpx.LocalProtocolError:
        return None


@FUZZ
@given(
    headers=st.dictionaries(HEADER_NAMES, HEADER_BYTES, max_size=4),
    target=st.sampled_from(
        [
            ("GET", "/v1/payments", None),
            ("POST", "/v1/payments", b'{"amount": 1}'),
            ("POST", "/v1/customers", b"{}"),
            ("GET", "/v1/events", None),
            ("POST", "/codec/decode", b'{"payloads": []}'),
        ]
    ),
)
def test_no_header_makes_the_public_api_fail(
    stack: Stack, headers: dict[str, bytes], target: tuple[str, str, bytes | None]
) -> None:
    method, path, body = target
    with httpx.Client(base_url=stack.settings.api.url, timeout=30) as client:
        response = _send(client, method, path, content=body, headers=headers)
    if response is not None:
        _assert_answered(response)


def _signed(stack: Stack, body: bytes) -> dict[str, str]:
    event_id, timestamp = f"evt-fuzz-{uuid.uuid4().hex}", str(int(time.time()))
    secret = secret_list(stack.settings.rails.callback_secret)[0]
    mac = hmac.new(secret.encode(), f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return {
        "Banksim-Event-Id": event_id,
        "Banksim-Timestamp": timestamp,
        "Banksim-Signature": f"v2={mac.hexdigest()}",
    }


@FUZZ
@given(
    path=st.sampled_from(
        ["/v1/rails/sepa/callbacks", "/v1/rails/ach/callbacks", "/v1/rails/ach/returns"]
    ),
    body=st.one_of(
        st.binary(max_size=2000),
        st.text(max_size=500).map(str.encode),
        # shapes close to the real ones: XML, a settlement notice, NACHA-looking lines
        st.builds(lambda t: f"<Document>{t}</Document>".encode(), st.text(max_size=200)),
        st.builds(
            lambda f, t: (
                f'{{"event_id":"e","type":"ach.file.settled","file_id":"{f}",'
                f'"settlement_date":"2026-12-07","trace_numbers":["{t}"]}}'
            ).encode(),
            st.text(max_size=30),
            st.text(max_size=30),
        ),
        st.builds(lambda t: ("1" + t.ljust(93) + "\n").encode(), st.text(max_size=93)),
    ),
    extra=st.dictionaries(st.sampled_from(["Content-Type", "Content-Encoding"]), HEADER_BYTES),
)
def test_no_signed_callback_body_makes_the_internal_listener_fail(
    stack: Stack, path: str, body: bytes, extra: dict[str, bytes]
) -> None:
    headers: dict[str, str | bytes] = {**extra, **_signed(stack, body)}
    with httpx.Client(base_url=stack.settings.api.internal_url, timeout=30) as client:
        response = _send(client, "POST", path, content=body, headers=headers)
    if response is not None:
        _assert_answered(response)
        assert response.status_code in (200, 400), response.text[:300]
