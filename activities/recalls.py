"""Recall activities: the camt.056 to the bank (SEPA) or the reversal entry in an ACH
window's file, the outcome recorded on the payment and told to its workflow, and the payment
workflow's check of a `recalled` signal against the database (services/recalls.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.metrics import count
from activities.rails import AchAdapter, message_id_for
from iso20022.camt056 import CancellationRequest, build_camt056
from kernel.settings import Settings
from kernel.tables import payment_status_history, payments
from rails.ach_file import REVERSAL_CODE
from services import recalls as service
from services.events import DeliveryStarter
from workflows.models import (
    PaymentTold,
    RecallClaim,
    RecallConfirmation,
    RecallFundsOverdue,
    RecallOutcome,
    RecallRef,
    RecallSent,
)
from workflows.recall import recall_workflow_id

log = structlog.get_logger(__name__)


class RecallNotCommittedError(Exception):
    """The payment's recall is not visible yet: the API starts the workflow inside the
    transaction that records it. Retried."""


class RecallActivities:
    """Sends a payment's recall and records how it ended."""

    def __init__(
        self,
        engine: AsyncEngine,
        http: httpx.AsyncClient,
        ach: AchAdapter,
        client: Client,
        settings: Settings,
    ) -> None:
        self._engine = engine
        self._http = http
        self._ach = ach
        self._deliveries = DeliveryStarter(client, settings)
        self._client = client
        self._settings = settings

    async def _payment(self, payment_id: str) -> tuple[Any, datetime]:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(payments).where(payments.c.id == payment_id))).one()
            settled = (
                await conn.execute(
                    select(payment_status_history.c.at)
                    .where(
                        payment_status_history.c.payment_id == payment_id,
                        payment_status_history.c.status == "settled",
                    )
                    .limit(1)
                )
            ).scalar()
        return row, settled or row.updated_at or datetime.now(UTC)

    @activity.defn(name="send_recall")
    async def send_recall(self, request: RecallRef) -> RecallSent:
        """SEPA: the camt.056 (the same bytes on every attempt: its id and time derive from the
        recall, so the bank takes a resend as the same request). ACH: the reversal entry (a
        debit of the amount, company entry description REVERSAL) in the open window's file,
        under the recall workflow's id, whose batch and callbacks then signal it."""
        row, settled = await self._payment(request.payment_id)
        recall = row.recall
        if recall is None:
            raise RecallNotCommittedError(request.payment_id)
        if row.rail == "ach":
            creditor = row.creditor
            sent = await self._ach.join_window(
                recall_workflow_id(row.id),
                row.amount,
                str(creditor.get("name") or ""),
                str(creditor.get("routing_number") or ""),
                str(creditor.get("account_number") or ""),
                transaction_code=REVERSAL_CODE,
                sealed_for=row.id,
            )
            return RecallSent(sent.message_id, sent.reference)
        sepa = self._settings.sepa
        case_id = message_id_for(row.id)
        document = build_camt056(
            CancellationRequest(
                assignment_id=f"R{case_id}"[:35],
                case_id=case_id,
                created_at=datetime.fromisoformat(str(recall.get("requested_at")))
                if recall.get("requested_at")
                else settled,
                assigner_bic=sepa.debtor_bic,
                assignee_bic=str(row.creditor.get("bic") or sepa.counterpart_bic),
                original_message_id=message_id_for(row.id),
                end_to_end_id=row.id,
                amount_minor=row.amount,
                currency=row.currency,
                settlement_date=settled.date(),
                reason_code=str(recall.get("reason")),
                additional_info=str(recall.get("note") or ""),
            )
        )
        response = await self._http.post(
            f"{self._settings.rails.bank_url}/v1/sepa/recalls",
            content=document,
            headers={"Content-Type": "application/xml"},
        )
        if response.status_code == 400:
            raise ApplicationError(
                f"bank refused the recall: {response.text[:300]}",
                type="message_refused",
                non_retryable=True,
            )
        if response.status_code not in (200, 202):
            raise RuntimeError(f"recall of {row.id}: bank answered {response.status_code}")
        return RecallSent(case_id)

    @activity.defn(name="record_recall_outcome")
    async def record_recall_outcome(self, outcome: RecallOutcome) -> None:
        """Record the outcome with its event and audit record (idempotent)."""
        await service.record_recall_outcome(self._engine, self._deliveries, outcome)

    @activity.defn(name="record_recall_funds_overdue")
    async def record_recall_funds_overdue(self, overdue: RecallFundsOverdue) -> None:
        """Mark the accepted recall's funds overdue, with its event and audit record (once)."""
        await service.record_recall_funds_overdue(self._engine, self._deliveries, overdue)

    @activity.defn(name="tell_payment_recalled")
    async def tell_payment_recalled(self, outcome: RecallOutcome) -> PaymentTold:
        """Signal the payment's workflow `recalled` (a closed or unknown one is done; any
        other failure raises and is retried)."""
        return PaymentTold(await service.tell_payment_recalled(self._client, outcome))

    @activity.defn(name="confirm_recall")
    async def confirm_recall(self, claim: RecallClaim) -> RecallConfirmation:
        """Whether the database holds the accepted recall a `recalled` signal claims; a
        refusal is a security event (audit record, counter, warning)."""
        # one audit record per check, however often this attempt is retried
        info = activity.info()
        key = f"{info.workflow_id}:{info.workflow_run_id}:{info.activity_id}"
        answer = await service.confirm_recall(self._engine, claim, idempotency_key=key)
        if not answer.confirmed:
            log.warning("recalled signal refused", payment_id=claim.payment_id, why=answer.refusal)
            count(
                "payments_recall_signals_refused",
                "recalled signals the database did not bear out",
                reason=answer.refusal,
            )
        return answer
