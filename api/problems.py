"""The catalogue of problem codes and the OpenAPI declaration of each operation's errors.

Every error response an operation can give is declared on it with the problem-document
schema narrowed to the `code` values that status can carry, so a client (and the fuzzer's
response check) knows the complete set. tests/unit/test_openapi_contract.py checks that
every code the API and services raise is in this catalogue.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from api.errors import PROBLEM_JSON, problem_body

PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"


@dataclass(frozen=True)
class ProblemCode:
    """One stable `code` and the status it is answered with."""

    status: int
    code: str
    meaning: str


# --- at the door: every operation --------------------------------------------------------
INVALID_CHARACTERS = ProblemCode(400, "invalid_characters", "NUL in the path or query.")
INTERNAL_ERROR = ProblemCode(500, "internal_error", "An unexpected error (logged, not shown).")

# --- outages (issue #24): send the same request again after `Retry-After` ----------------
DATABASE_UNAVAILABLE = ProblemCode(
    503,
    "database_unavailable",
    "PostgreSQL is down; retry after `Retry-After` with the same Idempotency-Key.",
)
ORCHESTRATOR_UNAVAILABLE = ProblemCode(
    503,
    "orchestrator_unavailable",
    "Temporal is down; retry after `Retry-After` with the same Idempotency-Key. No payment"
    " was created.",
)

# --- authentication and rate limits: every operation with a key ---------------------------
UNAUTHENTICATED = ProblemCode(401, "unauthenticated", "No `Authorization: Bearer` key.")
INVALID_API_KEY = ProblemCode(401, "invalid_api_key", "The key is unknown or revoked.")
INSUFFICIENT_SCOPE = ProblemCode(403, "insufficient_scope", "The key lacks the scope.")
RATE_LIMITED = ProblemCode(429, "rate_limited", "Too many requests; see `Retry-After`.")

# --- request shape -----------------------------------------------------------------------
VALIDATION_ERROR = ProblemCode(422, "validation_error", "A field breaks the schema; see `param`.")
INVALID_JSON = ProblemCode(422, "invalid_json", "The body is not JSON.")
PAYLOAD_TOO_LARGE = ProblemCode(413, "payload_too_large", "The body exceeds the size limit.")
UNSUPPORTED_MEDIA_TYPE = ProblemCode(415, "unsupported_media_type", "The body is not JSON.")
IDEMPOTENCY_KEY_MISSING = ProblemCode(400, "idempotency_key_missing", "No Idempotency-Key.")
IDEMPOTENCY_KEY_INVALID = ProblemCode(400, "idempotency_key_invalid", "Key over 255 chars.")
IDEMPOTENCY_KEY_REUSED = ProblemCode(
    422, "idempotency_key_reused", "The key was used with a different body."
)
IDEMPOTENCY_KEY_EXPIRED = ProblemCode(
    409, "idempotency_key_expired", "The key's record expired; it named an existing object."
)
IDEMPOTENCY_IN_PROGRESS = ProblemCode(
    409, "idempotency_request_in_progress", "The first request with this key is in flight."
)

# --- objects and business rules ----------------------------------------------------------
CUSTOMER_NOT_FOUND = ProblemCode(404, "customer_not_found", "No such customer of yours.")
UNKNOWN_CUSTOMER = ProblemCode(422, "customer_not_found", "`customer_id` names no customer.")
ACCOUNT_NOT_FOUND = ProblemCode(404, "account_not_found", "No such account of yours.")
UNKNOWN_ACCOUNT = ProblemCode(422, "account_not_found", "`account_id` names no account.")
PAYMENT_NOT_FOUND = ProblemCode(404, "payment_not_found", "No such payment of yours.")
# no such route (or a route of the other listener: api/listeners.py), as Starlette answers
ROUTE_NOT_FOUND = ProblemCode(404, "not_found", "No such route.")
WEBHOOK_ENDPOINT_NOT_FOUND = ProblemCode(
    404, "webhook_endpoint_not_found", "No such webhook endpoint of yours."
)
RECONCILIATION_NOT_FOUND = ProblemCode(404, "reconciliation_not_found", "No such run.")
INVALID_CURSOR = ProblemCode(422, "invalid_cursor", "`starting_after` names nothing in this list.")
UNSUPPORTED_CURRENCY = ProblemCode(422, "unsupported_currency", "No accounts in this currency.")
CURRENCY_MISMATCH = ProblemCode(422, "currency_mismatch", "The account holds another currency.")
CURRENCY_NOT_SUPPORTED_BY_RAIL = ProblemCode(
    422, "currency_not_supported_by_rail", "SEPA carries EUR, ACH carries USD."
)
IBAN_REQUIRED = ProblemCode(422, "iban_required", "SEPA needs `creditor.iban`.")
INVALID_IBAN = ProblemCode(422, "invalid_iban", "The IBAN fails its country format or check.")
INVALID_BIC = ProblemCode(422, "invalid_bic", "The BIC is not a valid BIC.")
ROUTING_AND_ACCOUNT_REQUIRED = ProblemCode(
    422, "routing_and_account_required", "ACH needs routing and account numbers."
)
INVALID_ROUTING_NUMBER = ProblemCode(
    422, "invalid_routing_number", "The ABA routing number fails its check digit."
)
INVALID_ACCOUNT_NUMBER = ProblemCode(
    422, "invalid_account_number", "ACH account numbers are 4 to 17 digits."
)
AMOUNT_EXCEEDS_RAIL_LIMIT = ProblemCode(
    422,
    "amount_exceeds_rail_limit",
    "Above what the rail carries: ACH 9,999,999,999 (NACHA's 10-digit field), SEPA"
    " 99,999,999,999 minor units.",
)
TEXT_NOT_REPRESENTABLE = ProblemCode(
    422,
    "text_not_representable",
    "Transliterated into the rail's character set, the text has no letter or digit left.",
)
REMITTANCE_INFO_TOO_LONG = ProblemCode(
    422,
    "remittance_info_too_long",
    "Transliterated into the EPC character set, the remittance exceeds 140 characters.",
)
COUNTERPARTY_NOT_FOUND = ProblemCode(
    404, "counterparty_not_found", "No such counterparty of yours."
)
UNKNOWN_COUNTERPARTY = ProblemCode(
    422, "counterparty_not_found", "`counterparty_id` names no counterparty of yours."
)
COUNTERPARTY_DISABLED = ProblemCode(
    422, "counterparty_disabled", "The counterparty was disabled: payments cannot name it."
)
COUNTERPARTY_RAIL_MISMATCH = ProblemCode(
    422, "counterparty_rail_mismatch", "The counterparty's account is on the other rail."
)
CREDITOR_REQUIRED = ProblemCode(
    422, "creditor_required", "Give exactly one of `creditor` and `counterparty_id`."
)
ACCOUNT_DETAILS_REQUIRED = ProblemCode(
    422,
    "account_details_required",
    "Give `iban` (+`bic`) or `routing_number` and `account_number`, not both.",
)
LEDGER_REFUSED = ProblemCode(409, "ledger_refused", "The ledger refused the transfer.")
WEBHOOK_URL_NOT_ALLOWED = ProblemCode(
    422, "webhook_url_not_allowed", "The URL's host is or resolves to a non-public address."
)
WEBHOOK_URL_UNRESOLVABLE = ProblemCode(
    422, "webhook_url_unresolvable", "The URL's host name does not resolve."
)
WEBHOOK_ENDPOINT_LIMIT_REACHED = ProblemCode(
    409, "webhook_endpoint_limit_reached", "The tenant has its maximum of enabled endpoints."
)
FOUR_EYES_VIOLATION = ProblemCode(403, "four_eyes_violation", "The initiator may not review.")
REVIEW_TOKEN_INVALID = ProblemCode(
    403,
    "review_token_invalid",
    "The workers could not verify the review's token (their review secrets differ from the "
    "API's); nothing was decided.",
)
PAYMENT_NOT_IN_REVIEW = ProblemCode(409, "payment_not_in_review", "The payment is not in review.")
PAYMENT_NOT_CANCELABLE = ProblemCode(
    409, "payment_not_cancelable", "The payment has reached the rail, or the bank paid it."
)
PAYMENT_IN_SANCTIONS_REVIEW = ProblemCode(
    409, "payment_in_sanctions_review", "A screening hit is decided by its review."
)
PAYMENT_NOT_RETRYABLE = ProblemCode(
    409, "payment_not_retryable", "The payment is not in `action_required`."
)
PAYMENT_NOT_RECALLABLE = ProblemCode(
    409, "payment_not_recallable", "Only a settled payment is recalled."
)
PAYMENT_ALREADY_RECALLED = ProblemCode(
    409, "payment_already_recalled", "The payment has a recall already (one per payment)."
)
RECALL_NOT_ALLOWED = ProblemCode(
    409,
    "recall_not_allowed",
    "The rail's rules refuse this recall: an ACH reversal corrects an erroneous entry only "
    "(DUPL, TECH) within five banking days of settlement.",
)
DEPOSIT_NOT_FOUND = ProblemCode(404, "deposit_not_found", "No such deposit of yours.")
DEPOSIT_NOT_IN_REVIEW = ProblemCode(
    409, "deposit_not_in_review", "The deposit is not in `pending_review`."
)
BANK_REFERENCE_IN_USE = ProblemCode(
    409, "bank_reference_in_use", "A deposit already books this bank reference."
)
CUSTOMER_NOT_IN_REVIEW = ProblemCode(
    409, "customer_not_in_review", "The customer's KYC is not in review."
)
CUSTOMER_HAS_OPEN_PAYMENTS = ProblemCode(
    409,
    "customer_has_open_payments",
    "A payment or workflow of the customer is not over yet (a return window included).",
)
CUSTOMER_HAS_BALANCE = ProblemCode(
    409, "customer_has_balance", "An account of the customer holds money; pay it out first."
)
PAYMENT_BATCH_NOT_FOUND = ProblemCode(404, "payment_batch_not_found", "No such batch of yours.")
PAYMENT_BATCH_INVALID = ProblemCode(
    422,
    "payment_batch_invalid",
    "Items are invalid: each is listed in `errors` (index, line, field, code); nothing was"
    " created. Fix them, or send again with `on_invalid_item: skip`.",
)
PAYMENT_BATCH_TOO_LARGE = ProblemCode(
    422, "payment_batch_too_large", "More items than a batch holds (10,000 by default)."
)
PAYMENT_BATCH_EMPTY = ProblemCode(422, "payment_batch_empty", "The batch has no items.")
INVALID_CSV = ProblemCode(
    422, "invalid_csv", "The CSV is not UTF-8, unreadable, or lacks the documented header."
)
INVALID_PAIN001 = ProblemCode(
    422, "invalid_pain001", "The XML is not a pain.001.001.09 the official schema accepts."
)
PAYMENT_BATCH_NOT_IN_REVIEW = ProblemCode(
    409, "payment_batch_not_in_review", "The batch is not waiting for a review."
)
PAYMENT_BATCH_NOT_CANCELABLE = ProblemCode(
    409, "payment_batch_not_cancelable", "The batch has completed or was canceled."
)

# --- payments on a date and payment schedules (issue #19 item 4) ---------------------------
EXECUTE_AT_IN_PAST = ProblemCode(
    422, "execute_at_in_past", "`execute_at` (or a schedule's `start_at`) is not in the future."
)
EXECUTE_AT_TOO_FAR = ProblemCode(
    422, "execute_at_too_far", "`execute_at` (or `start_at`) is more than a year ahead."
)
PAYMENT_SCHEDULE_NOT_FOUND = ProblemCode(
    404, "payment_schedule_not_found", "No such payment schedule of yours."
)
SCHEDULE_RULE_INVALID = ProblemCode(
    422,
    "schedule_rule_invalid",
    "Give exactly one of `interval` and `calendar`; an interval at least the minimum (1 h by"
    " default), a calendar with a known time zone; `end_at` after `start_at`.",
)
PAYMENT_SCHEDULE_DELETED = ProblemCode(
    409, "payment_schedule_deleted", "The schedule was deleted; it runs no more."
)

# raised by services/erasure.py for `payments customers hold` (no API operation reads holds)
LEGAL_HOLD_NOT_FOUND = ProblemCode(
    404, "legal_hold_not_found", "No legal hold of this customer, or it has ended."
)
# raised by services/credentials.py for `payments keys rotate` (keys are managed from the CLI)
API_KEY_NOT_FOUND = ProblemCode(404, "api_key_not_found", "No active API key with this id.")

# what every authenticated operation can answer, whatever it does
AUTHENTICATED = (
    INVALID_CHARACTERS,
    UNAUTHENTICATED,
    INVALID_API_KEY,
    INSUFFICIENT_SCOPE,
    RATE_LIMITED,
    INTERNAL_ERROR,
    DATABASE_UNAVAILABLE,
)
# what an operation that starts, signals or updates a workflow can answer about Temporal
ORCHESTRATED = (ORCHESTRATOR_UNAVAILABLE,)
# what an operation with a JSON body can answer before its handler runs
WITH_BODY = (VALIDATION_ERROR, INVALID_JSON, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE)
# what an operation with constrained path or query parameters can answer
WITH_PARAMETERS = (VALIDATION_ERROR,)
# what the checks of a payment's body can answer (`POST /v1/payments`, a schedule's payment)
PAYMENT_CHECKS = (
    UNKNOWN_ACCOUNT,
    UNSUPPORTED_CURRENCY,
    CURRENCY_MISMATCH,
    CURRENCY_NOT_SUPPORTED_BY_RAIL,
    IBAN_REQUIRED,
    INVALID_IBAN,
    INVALID_BIC,
    ROUTING_AND_ACCOUNT_REQUIRED,
    INVALID_ROUTING_NUMBER,
    INVALID_ACCOUNT_NUMBER,
    AMOUNT_EXCEEDS_RAIL_LIMIT,
    TEXT_NOT_REPRESENTABLE,
    REMITTANCE_INFO_TOO_LONG,
    CREDITOR_REQUIRED,
    UNKNOWN_COUNTERPARTY,
    COUNTERPARTY_DISABLED,
    COUNTERPARTY_RAIL_MISMATCH,
    EXECUTE_AT_IN_PAST,
    EXECUTE_AT_TOO_FAR,
)
# what an operation taking an Idempotency-Key can answer about it
IDEMPOTENT = (
    IDEMPOTENCY_KEY_MISSING,
    IDEMPOTENCY_KEY_INVALID,
    IDEMPOTENCY_KEY_REUSED,
    IDEMPOTENCY_IN_PROGRESS,
    IDEMPOTENCY_KEY_EXPIRED,
)

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Whole seconds to wait before retrying.",
        "schema": {"type": "string", "pattern": "^[1-9][0-9]*$"},
    }
}


def problem_schema(codes: list[str]) -> dict[str, Any]:
    """The problem document narrowed to `codes`."""
    return {
        "allOf": [
            {"$ref": PROBLEM_SCHEMA_REF},
            {"type": "object", "properties": {"code": {"type": "string", "enum": codes}}},
        ]
    }


def problems(*groups: ProblemCode | tuple[ProblemCode, ...]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` declaring these problems, one response per status."""
    by_status: dict[int, list[ProblemCode]] = defaultdict(list)
    for group in groups:
        for problem in group if isinstance(group, tuple) else (group,):
            if problem not in by_status[problem.status]:
                by_status[problem.status].append(problem)
    responses: dict[int | str, dict[str, Any]] = {}
    for status in sorted(by_status):
        listed = by_status[status]
        codes = sorted({p.code for p in listed})
        first = listed[0]
        response: dict[str, Any] = {
            "description": "; ".join(f"`{p.code}`: {p.meaning}" for p in listed),
            "content": {
                PROBLEM_JSON: {
                    "schema": problem_schema(codes),
                    "example": example_problem(first),
                }
            },
        }
        if status in (429, 503):
            response["headers"] = _RETRY_AFTER
        responses[status] = response
    return responses


def example_problem(problem: ProblemCode) -> dict[str, Any]:
    """A problem document as the API answers it."""
    return problem_body(problem.status, problem.code, problem.meaning)


def catalogue() -> list[ProblemCode]:
    """Every problem code declared in this module."""
    return [value for value in globals().values() if isinstance(value, ProblemCode)]
