"""Rail activities: hand a payment to the bank (SEPA pacs.008) and ask for its status.

The message id is the payment id, so a resubmission after a crash is recognised by the bank
as the same message (it answers with the original acknowledgement) and never pays twice.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from iso20022.pacs002 import parse_pacs002
from iso20022.pacs008 import CreditTransfer, build_pacs008
from payments.settings import Settings
from workflows.models import PollInput, PollResult, RailEvent, SubmitInput, SubmitResult


def message_id_for(payment_id: str) -> str:
    """The rail message id of a payment (≤ 35 characters, as ISO 20022 requires)."""
    return payment_id[:35]


class RailActivities:
    """Talks to the bank over HTTP; the client and settings are injected."""

    def __init__(self, client: httpx.AsyncClient, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    @activity.defn(name="submit_to_rail")
    async def submit_to_rail(self, request: SubmitInput) -> SubmitResult:
        """Send the payment's pacs.008; refused messages are final, outages are retried."""
        if request.rail != "sepa" or request.creditor.iban is None:
            raise ApplicationError(
                f"rail {request.rail} is not available", type="message_refused", non_retryable=True
            )
        message_id = message_id_for(request.payment_id)
        document = build_pacs008(
            CreditTransfer(
                message_id=message_id,
                end_to_end_id=request.payment_id,
                amount_minor=request.amount,
                currency=request.currency,
                debtor_name=request.debtor_name,
                debtor_iban=self._settings.sepa_debtor_iban,
                debtor_bic=self._settings.sepa_debtor_bic,
                creditor_name=request.creditor.name,
                creditor_iban=request.creditor.iban,
                creditor_bic=request.creditor.bic,
                remittance_info=request.remittance_info,
                created_at=(
                    datetime.fromisoformat(request.created_at)
                    if request.created_at
                    else datetime.now(UTC)
                ),
            )
        )
        response = await self._client.post(
            f"{self._settings.banksim_url}/v1/sepa/messages",
            content=document,
            headers={"Content-Type": "application/xml"},
        )
        if response.status_code in (200, 202):
            return SubmitResult(message_id, bool(response.json().get("duplicate", False)))
        if 400 <= response.status_code < 500 and response.status_code != 429:
            raise ApplicationError(
                f"bank refused message {message_id}: {response.status_code} {response.text[:300]}",
                type="message_refused",
                non_retryable=True,
            )
        # 5xx / 429: the bank is unwell; the retry policy decides how long we keep trying
        raise RuntimeError(f"bank unavailable: HTTP {response.status_code}")

    @activity.defn(name="poll_rail_status")
    async def poll_rail_status(self, request: PollInput) -> PollResult:
        """Fallback when no callback came: read the bank's pacs.002 for our message."""
        response = await self._client.get(
            f"{self._settings.banksim_url}/v1/sepa/messages/{request.message_id}/status"
        )
        if response.status_code != 200:
            return PollResult(None)
        report = parse_pacs002(response.content)
        for tx in report.transactions:
            if tx.end_to_end_id == request.payment_id:
                return PollResult(RailEvent(request.message_id, tx.status, tx.reason_code))
        return PollResult(None)
