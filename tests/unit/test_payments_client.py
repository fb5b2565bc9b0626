"""The partner client's own behaviour: retries and their waits, idempotency keys across
retries, pagination, problem documents, and webhook signatures as the platform makes them.

The API is replaced by an `httpx.MockTransport` here (the client's HTTP boundary); the
README's tour in Python runs the client against the real stack
(tests/integration/test_readme_commands.py). No test sleeps: the client's `sleep` records.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from activities.notify import event_body, sign, signing_secrets
from payments_client import ApiError, PaymentsClient, WebhookVerificationError, verify_webhook
from payments_client.models import PaymentCreate

BODY: PaymentCreate = {
    "account_id": "acc_1",
    "amount": 2_500,
    "currency": "EUR",
    "rail": "sepa",
    "creditor": {"name": "Erika Mustermann", "country": "DE", "iban": "DE89370400440532013000"},
}
PAYMENT = {"id": "pay_1", "object": "payment", "status": "processing"}


def client(
    answers: list[httpx.Response], seen: list[httpx.Request], waits: list[float], **options: Any
) -> PaymentsClient:
    """A client whose API answers `answers` in turn, recording requests and waits."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[len(seen) - 1]

    return PaymentsClient(
        "http://api.test",
        "psk_test",
        transport=httpx.MockTransport(handle),
        sleep=waits.append,
        **options,
    )


def problem(status: int, code: str, **headers: str) -> httpx.Response:
    body = {"type": "about:blank", "title": code, "status": status, "detail": code, "code": code}
    return httpx.Response(status, json=body, headers=headers)


def test_a_post_carries_a_generated_idempotency_key_kept_across_retries() -> None:
    seen: list[httpx.Request] = []
    waits: list[float] = []
    answers = [
        problem(503, "temporal_unavailable", **{"Retry-After": "2"}),
        problem(429, "rate_limited", **{"Retry-After": "1"}),
        httpx.Response(202, json=PAYMENT),
    ]
    with client(answers, seen, waits) as api:
        assert api.create_payment(BODY)["id"] == "pay_1"
    keys = {request.headers["Idempotency-Key"] for request in seen}
    assert len(seen) == 3 and len(keys) == 1 and keys != {""}
    # each wait at least what Retry-After asked
    assert waits[0] >= 2 and waits[1] >= 1
    assert all(json.loads(request.content) == BODY for request in seen)
    assert seen[0].headers["Authorization"] == "Bearer psk_test"


def test_a_key_still_in_flight_is_waited_for_but_a_reused_key_is_not() -> None:
    """409 `idempotency_request_in_progress`: this call's own earlier attempt (one that timed
    out) is still being answered; any other 409 is a decision and raised."""
    seen: list[httpx.Request] = []
    waits: list[float] = []
    answers = [problem(409, "idempotency_request_in_progress"), httpx.Response(202, json=PAYMENT)]
    with client(answers, seen, waits) as api:
        assert api.create_payment(BODY)["id"] == "pay_1"
    assert len(seen) == 2 and len(waits) == 1
    with (
        client([problem(409, "payment_not_cancelable")], [], waits) as api,
        pytest.raises(ApiError, match="payment_not_cancelable"),
    ):
        api.cancel_payment("pay_1")


def test_a_given_idempotency_key_is_sent_as_given() -> None:
    seen: list[httpx.Request] = []
    with client([httpx.Response(202, json=PAYMENT)], seen, []) as api:
        api.create_payment(BODY, idempotency_key="order-42")
    assert seen[0].headers["Idempotency-Key"] == "order-42"


def test_two_calls_get_two_keys() -> None:
    seen: list[httpx.Request] = []
    answers = [httpx.Response(202, json=PAYMENT), httpx.Response(202, json=PAYMENT)]
    with client(answers, seen, []) as api:
        api.create_payment(BODY)
        api.create_payment(BODY)
    assert seen[0].headers["Idempotency-Key"] != seen[1].headers["Idempotency-Key"]


def test_backoff_grows_without_retry_after_and_gives_up_with_the_problem() -> None:
    seen: list[httpx.Request] = []
    waits: list[float] = []
    answers = [problem(503, "database_unavailable") for _ in range(4)]
    with (
        client(answers, seen, waits, max_retries=3, backoff=1.0, max_backoff=8.0) as api,
        pytest.raises(ApiError) as raised,
    ):
        api.get_payment("pay_1")
    assert len(seen) == 4 and len(waits) == 3
    # full jitter: each wait lies under its exponential ceiling
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(waits, (1, 2, 4), strict=True))
    assert (raised.value.status, raised.value.code) == (503, "database_unavailable")


def test_a_retry_after_longer_than_allowed_is_not_waited_for() -> None:
    seen: list[httpx.Request] = []
    waits: list[float] = []
    answers = [problem(429, "rate_limited", **{"Retry-After": "3600"})]
    with client(answers, seen, waits, max_retry_wait=60) as api, pytest.raises(ApiError) as raised:
        api.get_payment("pay_1")
    assert waits == [] and raised.value.retry_after == 3600


def test_other_errors_are_raised_at_once_with_their_problem() -> None:
    seen: list[httpx.Request] = []
    answer = problem(422, "validation_error")
    answer = httpx.Response(
        422, json={**answer.json(), "param": "amount"}, headers={"content-type": "application/json"}
    )
    with client([answer], seen, []) as api, pytest.raises(ApiError) as raised:
        api.create_payment(BODY)
    assert len(seen) == 1
    assert (raised.value.code, raised.value.param) == ("validation_error", "amount")


def test_connection_failures_are_retried_with_the_same_key() -> None:
    seen: list[httpx.Request] = []
    waits: list[float] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(201, json={"id": "dep_1"})

    transport = httpx.MockTransport(handle)
    with PaymentsClient("http://api.test", "k", transport=transport, sleep=waits.append) as api:
        api.create_deposit({"account_id": "acc_1", "amount": 1, "currency": "EUR"})
    assert len(seen) == 2 and len(waits) == 1
    assert seen[0].headers["Idempotency-Key"] == seen[1].headers["Idempotency-Key"]


def test_lists_follow_starting_after_lazily() -> None:
    seen: list[httpx.Request] = []
    pages = [
        httpx.Response(200, json={"data": [{"id": "pay_3"}, {"id": "pay_2"}], "has_more": True}),
        httpx.Response(200, json={"data": [{"id": "pay_1"}], "has_more": False}),
    ]
    with client(pages, seen, []) as api:
        listed = api.list_payments(status="settled", page_size=2)
        assert seen == []  # nothing fetched before the first item is asked for
        assert [payment["id"] for payment in listed] == ["pay_3", "pay_2", "pay_1"]
    assert [dict(request.url.params) for request in seen] == [
        {"limit": "2", "status": "settled"},
        {"limit": "2", "status": "settled", "starting_after": "pay_2"},
    ]


# ------------------------------------------------------------------ webhooks


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def delivery(signers: list[str], at: int = 1_700_000_000) -> tuple[bytes, dict[str, str]]:
    """A delivery as activities/notify.py makes it: the platform's body and signatures."""
    body = event_body("evt_1", "payment.settled", "2026-12-07T12:00:00+00:00", {"id": "pay_1"})
    signature = " ".join(sign(secret, "evt_1", at, body) for secret in signers)
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(at), "webhook-signature": signature}
    return body, headers


def test_a_platform_delivery_verifies_and_gives_its_event() -> None:
    secret = new_secret()
    body, headers = delivery([secret])
    event = verify_webhook(body, headers, secret, now=1_700_000_010)
    assert (event["id"], event["type"], event["data"]) == (
        "evt_1",
        "payment.settled",
        {"id": "pay_1"},
    )
    # header names in any case, as frameworks hand them over
    upper = {name.title(): value for name, value in headers.items()}
    assert verify_webhook(body, upper, secret, now=1_700_000_010)["id"] == "evt_1"


def test_during_a_rotation_either_secret_verifies() -> None:
    """The platform signs with the new and the previous secret while both are valid."""
    new, old = new_secret(), new_secret()
    endpoint = SimpleNamespace(
        secret=new,
        previous_secret=old,
        previous_secret_expires_at=datetime.max.replace(tzinfo=UTC),
    )
    body, headers = delivery(signing_secrets(endpoint))
    assert len(headers["webhook-signature"].split(" ")) == 2
    for held in (new, old, [old, new]):
        assert verify_webhook(body, headers, held, now=1_700_000_000)["id"] == "evt_1"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, headers: (body.replace(b"pay_1", b"pay_2"), headers),
        lambda body, headers: (body, {**headers, "webhook-id": "evt_2"}),
        lambda body, headers: (body, {**headers, "webhook-timestamp": "1700000001"}),
        lambda body, headers: (body, {k: v for k, v in headers.items() if k != "webhook-id"}),
        lambda body, headers: (body, {**headers, "webhook-signature": "v1,AAAA"}),
    ],
    ids=["body", "id", "timestamp", "missing-header", "signature"],
)
def test_a_tampered_delivery_is_refused(
    tamper: Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]],
) -> None:
    secret = new_secret()
    body, headers = tamper(*delivery([secret]))
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body, headers, secret, now=1_700_000_000)


def test_another_secret_or_an_old_delivery_is_refused() -> None:
    secret = new_secret()
    body, headers = delivery([secret])
    with pytest.raises(WebhookVerificationError, match="no signature"):
        verify_webhook(body, headers, new_secret(), now=1_700_000_000)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_webhook(body, headers, secret, now=1_700_000_000 + 301)
