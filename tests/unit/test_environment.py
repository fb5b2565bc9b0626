"""Outside dev, no process starts on a published, example or guessable secret (DESIGN §9)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Mapping

import pytest

from kernel.environment import Uses, production_problems
from kernel.settings import PROJECT_ROOT, Settings

ALL_USES = tuple(Uses)
RANDOM_KEY = base64.b64encode(bytes(range(7, 39))).decode()
GOOD = {
    "codec.payload_keys": f"prod-2026-12:{RANDOM_KEY}",
    "codec.payload_key_id": "prod-2026-12",
    "rails.callback_secret": "s3cr3t-from-the-vault-0123456789abcdef",
    "reviews.token_secrets": "review-s3cr3t-from-the-vault-0123456789",
    "rails.submission_secret": "submission-s3cr3t-from-the-vault-01234",
}


def settings(fields: Mapping[str, object] | None = None) -> Settings:
    return Settings().updated({"env": "production", **(fields or {})})


def test_defaults_are_refused_in_production_naming_each_setting() -> None:
    problems = production_problems(settings(), ALL_USES)
    named = {problem.split(":")[0] for problem in problems}
    assert {"PAYMENTS_PAYLOAD_KEYS", "PAYMENTS_PAYLOAD_KEY_ID"} <= named
    assert {"PAYMENTS_RAIL_CALLBACK_SECRET", "PAYMENTS_REVIEW_TOKEN_SECRETS"} <= named


def test_real_secrets_pass_and_dev_accepts_the_published_ones() -> None:
    assert production_problems(settings(GOOD), ALL_USES) == []
    assert production_problems(Settings().updated({"env": "dev"}), ALL_USES) == []


@pytest.mark.parametrize(
    ("field", "value", "setting"),
    [
        # the Kubernetes example's placeholder: an all-zero key
        (
            "codec.payload_keys",
            "CHANGE-ME:" + base64.b64encode(bytes(32)).decode(),
            "PAYMENTS_PAYLOAD_KEYS",
        ),
        (
            "codec.payload_keys",
            "k1:" + base64.b64encode(b"short").decode(),
            "PAYMENTS_PAYLOAD_KEYS",
        ),
        ("codec.payload_keys", "k1:not base64!", "PAYMENTS_PAYLOAD_KEYS"),
        ("codec.payload_keys", "", "PAYMENTS_PAYLOAD_KEYS"),
        ("codec.payload_key_id", "CHANGE-ME", "PAYMENTS_PAYLOAD_KEY_ID"),
        (
            "rails.callback_secret",
            "compose-dev-rail-callback-secret",
            "PAYMENTS_RAIL_CALLBACK_SECRET",
        ),
        ("rails.callback_secret", "CHANGE-ME", "PAYMENTS_RAIL_CALLBACK_SECRET"),
        # mid-rotation, the published secret is still one of the two
        (
            "rails.callback_secret",
            "s3cr3t-from-the-vault-0123456789abcdef,dev-rail-callback-secret",
            "PAYMENTS_RAIL_CALLBACK_SECRET",
        ),
        ("rails.callback_secret", "too-short", "PAYMENTS_RAIL_CALLBACK_SECRET"),
        ("codec.allow_loopback", True, "PAYMENTS_CODEC_ALLOW_LOOPBACK"),
        ("api.internal_port", 8000, "PAYMENTS_API_INTERNAL_PORT"),
        ("reviews.token_secrets", "dev-review-token-secret", "PAYMENTS_REVIEW_TOKEN_SECRETS"),
        (
            "reviews.token_secrets",
            "a-long-enough-new-secret-0123456789,short",
            "PAYMENTS_REVIEW_TOKEN_SECRETS",
        ),
        ("reviews.token_secrets", " , ", "PAYMENTS_REVIEW_TOKEN_SECRETS"),
        (
            "rails.submission_secret",
            "dev-rail-submission-secret",
            "PAYMENTS_RAIL_SUBMISSION_SECRET",
        ),
        ("rails.submission_secret", "short", "PAYMENTS_RAIL_SUBMISSION_SECRET"),
        ("webhooks.allow_private_networks", True, "PAYMENTS_WEBHOOK_ALLOW_PRIVATE_NETWORKS"),
    ],
)
def test_each_unsafe_value_is_named(field: str, value: object, setting: str) -> None:
    problems = production_problems(settings({**GOOD, field: value}), ALL_USES)
    assert len(problems) == 1
    assert problems[0].startswith(f"{setting}:")


def test_a_process_checks_only_the_secrets_it_uses() -> None:
    # `payments ledger verify` encrypts nothing: the dev payload key is no reason to refuse
    assert production_problems(settings(), ()) == []
    assert all(
        "PAYLOAD" in problem for problem in production_problems(settings(), (Uses.TEMPORAL,))
    )


@pytest.mark.parametrize("module", ["api", "workers", "banksim"])
def test_a_process_with_nothing_set_exits_naming_the_settings(module: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")}
    env["PAYMENTS_ENV"] = "production"
    finished = subprocess.run(
        [sys.executable, "-m", module],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2, finished.stderr
    assert "Traceback" not in finished.stderr
    expected = "PAYMENTS_RAIL_CALLBACK_SECRET" if module == "banksim" else "PAYMENTS_PAYLOAD_KEYS"
    assert expected in finished.stderr


def test_the_web_uis_identity_provider_must_be_pinned_in_production() -> None:
    oidc = {
        "codec.oidc_jwks": "https://id.example.com/certs",
        "codec.oidc_issuer": "https://id.example.com",
        "codec.oidc_audience": "temporal-ui",
    }
    assert production_problems(settings({**GOOD, **oidc}), ALL_USES) == []
    for change, setting in (
        ({"codec.oidc_jwks": "http://id.example.com/certs"}, "PAYMENTS_CODEC_OIDC_JWKS"),
        ({"codec.oidc_issuer": ""}, "PAYMENTS_CODEC_OIDC_ISSUER"),
        ({"codec.oidc_audience": ""}, "PAYMENTS_CODEC_OIDC_AUDIENCE"),
    ):
        problems = production_problems(settings({**GOOD, **oidc, **change}), ALL_USES)
        assert [problem.split(":")[0] for problem in problems] == [setting]
