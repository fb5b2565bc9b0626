"""Custom search attributes of DESIGN §3 (registered by the dev stack; see README for prod)."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey

PAYMENT_STATUS = SearchAttributeKey.for_keyword("PaymentStatus")
PAYMENT_RAIL = SearchAttributeKey.for_keyword("PaymentRail")
TENANT_ID = SearchAttributeKey.for_keyword("TenantId")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
AMOUNT_MINOR = SearchAttributeKey.for_int("AmountMinor")
CURRENCY = SearchAttributeKey.for_keyword("Currency")
# a review left waiting past the escalation time (payments and onboarding alike)
REVIEW_ESCALATED = SearchAttributeKey.for_bool("ReviewEscalated")
# a customer's KYC status on its onboarding workflow (pending, in_review, approved, rejected)
KYC_STATUS = SearchAttributeKey.for_keyword("KycStatus")
# why a payment waits in action_required (outcome_unknown, rail_unreachable,
# ledger_out_of_sync); unset otherwise
ACTION_REASON = SearchAttributeKey.for_keyword("ActionReason")
# the payment batch a workflow belongs to: the batch's own workflow and each of its payments
BATCH_ID = SearchAttributeKey.for_keyword("BatchId")

ALL = (
    PAYMENT_STATUS,
    PAYMENT_RAIL,
    TENANT_ID,
    CUSTOMER_ID,
    AMOUNT_MINOR,
    CURRENCY,
    REVIEW_ESCALATED,
    KYC_STATUS,
    ACTION_REASON,
    BATCH_ID,
)


_CLI_TYPES = {"KEYWORD": "Keyword", "INT": "Int", "BOOL": "Bool"}


def cli_flags() -> list[str]:
    """`--search-attribute NAME=Type` flags for `temporal server start-dev`."""
    return [
        f"--search-attribute={key.name}={_CLI_TYPES[key.indexed_value_type.name]}" for key in ALL
    ]


def cli_create_args() -> list[str]:
    """`--name NAME --type Type …` for `temporal operator search-attribute create`, which
    adds the missing attributes and leaves the registered ones as they are."""
    args: list[str] = []
    for key in ALL:
        args += ["--name", key.name, "--type", _CLI_TYPES[key.indexed_value_type.name]]
    return args


async def register_search_attributes(client: Client) -> None:
    """Register the attributes on a server that was not started with them (test server)."""
    kinds = {
        "KEYWORD": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "INT": IndexedValueType.INDEXED_VALUE_TYPE_INT,
        "BOOL": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    }
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={key.name: kinds[key.indexed_value_type.name] for key in ALL},
        )
    )
