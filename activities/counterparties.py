"""Counterparty verification activities: the bank's Verification-of-Payee check (SEPA), the
prenote (ACH), and the outcome recorded on the counterparty."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.rails import AchAdapter
from kernel.settings import Settings
from rails.ach_file import PRENOTE_CODES
from services import counterparties as service
from services.events import DeliveryStarter
from workflows.models import CounterpartyRef, PayeeCheckResult, PrenoteResult, VerificationOutcome

# the bank's EPC VOP answers, as the counterparty's verification status
VOP_STATUS = {"MTCH": "verified", "CMTC": "close_match", "NMTC": "no_match"}


class CounterpartyNotCommittedError(Exception):
    """The counterparty row is not visible yet: the API starts the workflow inside the
    transaction that inserts it. Retried."""


class CounterpartyActivities:
    """Reads the counterparty, asks the bank or joins an ACH window, records the outcome."""

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
        self._settings = settings

    async def _row(self, counterparty_id: str) -> Any:
        async with self._engine.connect() as conn:
            row = await service.load_counterparty(conn, counterparty_id)
        if row is None:
            raise CounterpartyNotCommittedError(counterparty_id)
        return row

    @activity.defn(name="check_payee")
    async def check_payee(self, request: CounterpartyRef) -> PayeeCheckResult:
        """The bank's Verification-of-Payee answer for the counterparty's IBAN and name; a
        bank that cannot say (NOAP, an outage) is asked again (the step's retry policy)."""
        row = await self._row(request.counterparty_id)
        response = await self._http.post(
            f"{self._settings.rails.bank_url}/v1/sepa/payee-verifications",
            json={
                "iban": row.iban,
                "name": row.name,
                "bic": row.bic,
            },
        )
        if response.status_code != 200:
            raise RuntimeError(f"payee verification: bank answered {response.status_code}")
        answer = response.json()
        status = VOP_STATUS.get(str(answer.get("result")))
        if status is None:
            raise RuntimeError(f"payee verification not possible: {answer.get('result')}")
        matched = answer.get("name") if status == "close_match" else None
        return PayeeCheckResult(status, matched)

    @activity.defn(name="send_prenote")
    async def send_prenote(self, request: CounterpartyRef) -> PrenoteResult:
        """Put the counterparty's prenote (zero amount, 23 checking / 33 savings) in the open
        ACH window's file, under the counterparty's id: the batch and the bank's callbacks
        then signal its verification workflow as they signal a payment."""
        row = await self._row(request.counterparty_id)
        routing, account = row.routing_number, row.account_number
        if routing is None or account is None:
            raise ApplicationError("not an ACH counterparty", non_retryable=True)
        sent = await self._ach.join_window(
            request.counterparty_id,
            0,
            row.name,
            routing,
            account,
            transaction_code=PRENOTE_CODES[row.account_type],
        )
        return PrenoteResult(sent.message_id, sent.reference)

    @activity.defn(name="record_counterparty_verification")
    async def record_counterparty_verification(self, outcome: VerificationOutcome) -> None:
        """Record the outcome with its event and audit record (idempotent)."""
        await service.record_verification(self._engine, self._deliveries, outcome)
