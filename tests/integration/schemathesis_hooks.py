"""Schemathesis hooks for tests/integration/test_openapi_fuzz.py (SCHEMATHESIS_HOOKS).

The built-in `positive_data_acceptance` check is configured to accept 422, because a
schema-valid request can still name an account that does not exist or an IBAN whose check
digits fail: business rules no schema can state. This check keeps the promise the built-in
one can then no longer keep: a request the document calls valid is never refused as
*malformed*.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis import CheckContext, Response
from schemathesis.engine import observations
from schemathesis.generation.case import Case

_same_origin_path = observations._same_origin_path


def _tolerant_same_origin_path(value: str, origin: tuple[str, str]) -> str | None:
    """Schemathesis 4.32.5 scans answers for URLs of the API itself and crashes the whole run
    (`ValueError: Invalid IPv6 URL`) on a string like `http://[`, which the API echoes when a
    webhook URL it accepted looks so; such a string is no URL of the API."""
    try:
        return _same_origin_path(value, origin)
    except ValueError:
        return None


observations._same_origin_path = _tolerant_same_origin_path

# the codes for a request the schema should have refused (api/problems.py)
MALFORMED = frozenset(
    {
        "validation_error",
        "invalid_json",
        "invalid_characters",
        "idempotency_key_missing",
        "idempotency_key_invalid",
        "unsupported_media_type",
    }
)


@schemathesis.check
def schema_valid_request_is_well_formed(
    ctx: CheckContext, response: Response, case: Case[Any]
) -> bool | None:
    """A positive (schema-valid) request is never answered with a malformed-request code."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    if any(value is None or value == "None" for value in (case.path_parameters or {}).values()):
        # a stateful link whose wildcard picked a null field (a reconciliation discrepancy
        # without a payment or a deposit) is sent as the path segment "None": that is the
        # fuzzer's request, not one the document calls valid (every id has a prefix)
        return None
    if response.status_code not in (400, 415, 422):
        return None
    try:
        code = response.json().get("code")
    except ValueError:
        return None
    if code in MALFORMED:
        raise AssertionError(
            f"A schema-valid request was refused as malformed ({response.status_code} {code}):"
            f" {response.text[:500]}\nState the constraint in the OpenAPI document."
        )
    return None
