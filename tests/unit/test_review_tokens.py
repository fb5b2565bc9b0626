"""Review tokens prove one decision, on one workflow, by one principal, for a few minutes."""

from __future__ import annotations

import pytest

from kernel.review_tokens import mint, principal_id, refusal
from kernel.settings import secret_list

SECRET = "review-secret-for-the-unit-tests-0123"
CLAIMS = {"subject": "pay_1", "decision": "approve", "principal": "ten_a:ops-olga"}
NOW = 1_800_000_000


def token(secret: str = SECRET, expires_at: int = NOW + 300, **claims: str) -> str:
    return mint(secret, **{**CLAIMS, **claims}, expires_at=expires_at)  # type: ignore[arg-type]


def test_a_token_proves_exactly_its_claims() -> None:
    assert refusal([SECRET], token(), **CLAIMS, now=NOW) is None
    for name, other in [("subject", "pay_2"), ("decision", "reject"), ("principal", "ten_a:eve")]:
        reason = refusal([SECRET], token(), **{**CLAIMS, name: other}, now=NOW)
        assert reason is not None and "does not match" in reason, name


@pytest.mark.parametrize(
    ("forged", "expected"),
    [
        ("", "no review token"),
        ("rv1.notanumber.abc", "malformed"),
        ("rv0.1800000300.abc", "malformed"),
        ("rv1.1800000300.", "malformed"),
        (f"rv1.{NOW + 300}." + "0" * 64, "does not match"),
        # the expiry is inside the MAC: pushing it out breaks the token
        (token().replace(str(NOW + 300), str(NOW + 10**6)), "does not match"),
    ],
)
def test_a_forged_or_altered_token_is_refused(forged: str, expected: str) -> None:
    reason = refusal([SECRET], forged, **CLAIMS, now=NOW)
    assert reason is not None and expected in reason


def test_a_token_expires() -> None:
    assert refusal([SECRET], token(expires_at=NOW - 1), **CLAIMS, now=NOW) == "review token expired"


def test_rotation_keeps_the_old_secret_verifying_while_it_is_listed() -> None:
    old = token(secret="the-previous-secret-0123456789abcdef")
    secrets = secret_list(f"{SECRET}, the-previous-secret-0123456789abcdef")
    assert secrets == [SECRET, "the-previous-secret-0123456789abcdef"]
    assert refusal(secrets, old, **CLAIMS, now=NOW) is None
    assert refusal([SECRET], old, **CLAIMS, now=NOW) is not None


def test_principals_of_two_tenants_are_two_identities() -> None:
    assert principal_id("ten_a", "alice") != principal_id("ten_b", "alice")
