"""Rail activities: hand a payment to its rail and ask for its status, through one adapter
per rail (SEPA: a pacs.008 per payment; ACH: an entry in the window's NACHA file).

Every message id derives from the payment (SEPA: the payment id; ACH: the window's file
id), so a resubmission after a crash is recognised by the bank as the same message and
never pays twice.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from iso20022.pacs002 import parse_pacs002
from iso20022.pacs004 import parse_pacs004
from iso20022.pacs008 import CreditTransfer, build_pacs008
from iso20022.pacs028 import StatusRequest, build_pacs028, parse_status_answer
from kernel.codec import FieldSealer, data_key_store
from kernel.settings import Settings
from nacha import NachaError
from rails.ach_file import (
    CHECKING_CREDIT,
    REASON_FORMAT,
    Origin,
    build_window_file,
    check_credit,
    effective_entry_date,
    refusal_reason,
    trace_number_for,
)
from rails.windows import AchWindow, ach_window
from workflows.ach_batch import AchBatchWorkflow, batch_workflow_id
from workflows.models import (
    AchBatchInput,
    AchEntryInput,
    AchFileInput,
    AchFileResult,
    OutcomeAnswer,
    OutcomeInput,
    PollInput,
    PollResult,
    RailEvent,
    RailStatus,
    RefusedEntry,
    SubmitInput,
    SubmitResult,
)
from workflows.models.vocabulary import FINAL_RAIL_STATUSES, BankRecord
from workflows.payment import RETURNED


def message_id_for(payment_id: str) -> str:
    """The SEPA message id of a payment (≤ 35 characters, as ISO 20022 requires)."""
    return payment_id[:35]


def _refused(message: str) -> ApplicationError:
    return ApplicationError(message, type="message_refused", non_retryable=True)


def _raise_for_outage(response: httpx.Response, what: str) -> None:
    if response.status_code >= 500 or response.status_code == 429:
        # the bank is unwell; the retry policy decides how long we keep trying
        raise RuntimeError(f"bank unavailable for {what}: HTTP {response.status_code}")


class RailAdapter(Protocol):
    """What the rail activities need from a rail."""

    async def submit(self, request: SubmitInput) -> SubmitResult:
        """Hand the payment to the rail (idempotent)."""
        ...

    async def poll(self, request: PollInput) -> PollResult:
        """The rail's latest status for the payment, if it has one."""
        ...

    async def ask(self, request: OutcomeInput) -> OutcomeAnswer:
        """What the bank has of a submission whose answer was lost; raises when the bank
        cannot be asked (the caller then knows nothing)."""
        ...


class SepaAdapter:
    """One pacs.008 per payment; the bank answers with pacs.002 status reports."""

    def __init__(self, client: httpx.AsyncClient, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    async def submit(self, request: SubmitInput) -> SubmitResult:
        """Send the payment's pacs.008; refused messages are final, outages are retried."""
        if request.creditor.iban is None:
            raise _refused("a SEPA payment needs the creditor's IBAN")
        message_id = message_id_for(request.payment_id)
        document = build_pacs008(
            CreditTransfer(
                message_id=message_id,
                end_to_end_id=request.payment_id,
                amount_minor=request.amount,
                currency=request.currency,
                debtor_name=request.debtor_name,
                debtor_iban=self._settings.sepa.debtor_iban,
                debtor_bic=self._settings.sepa.debtor_bic,
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
            f"{self._settings.rails.bank_url}/v1/sepa/messages",
            content=document,
            headers={"Content-Type": "application/xml"},
        )
        _raise_for_outage(response, message_id)
        if response.status_code in (200, 202):
            return SubmitResult(message_id, bool(response.json().get("duplicate", False)))
        raise _refused(
            f"bank refused message {message_id}: {response.status_code} {response.text[:300]}"
        )

    async def poll(self, request: PollInput) -> PollResult:
        """The bank's latest pacs.002 for our message; once settled, its return (pacs.004)
        if the creditor's bank sent the money back."""
        message_url = f"{self._settings.rails.bank_url}/v1/sepa/messages/{request.message_id}"
        response = await self._client.get(f"{message_url}/status")
        if response.status_code != 200:
            return PollResult(None)
        report = parse_pacs002(response.content)
        tx = next((t for t in report.transactions if t.end_to_end_id == request.payment_id), None)
        if tx is None:
            return PollResult(None)
        if tx.status == "ACSC":  # only a settled payment can come back
            reason = await self._return_reason(message_url, request.payment_id)
            if reason is not None:
                return PollResult(RailEvent(request.message_id, RETURNED, reason))
        return PollResult(RailEvent(request.message_id, tx.status, tx.reason_code))

    async def ask(self, request: OutcomeInput) -> OutcomeAnswer:
        """Ask the bank with an ISO 20022 status request (pacs.028) what it has of the
        message; its pacs.002 says: no record (RJCT AG09), or the payment's status. Anything
        but a clear answer raises: unknown stays unknown."""
        message_id = request.message_id or message_id_for(request.payment_id)
        status_request = StatusRequest(
            # one request id per asking: a bank may keep them, and they must be unique
            message_id=f"Q{uuid.uuid4().hex[:30]}",
            created_at=datetime.now(UTC),
            original_message_id=message_id,
            original_end_to_end_id=request.payment_id,
        )
        response = await self._client.post(
            f"{self._settings.rails.bank_url}/v1/sepa/status-requests",
            content=build_pacs028(status_request),
            headers={"Content-Type": "application/xml"},
        )
        if response.status_code != 200:
            raise RuntimeError(f"status request for {message_id}: HTTP {response.status_code}")
        # UnrelatedAnswer (a ValueError) propagates: an answer about something else is none
        answer = parse_status_answer(
            response.content, request.payment_id, original_message_id=message_id
        )
        if not answer.known:
            return OutcomeAnswer(BankRecord.NO_RECORD, message_id)
        event = None
        status = RailStatus(answer.status) if answer.status else None
        if status in FINAL_RAIL_STATUSES:
            event = RailEvent(message_id, str(status), answer.reason_code)
            if status == RailStatus.SETTLED:
                # a settled payment may have come back since (pacs.004)
                message_url = f"{self._settings.rails.bank_url}/v1/sepa/messages/{message_id}"
                reason = await self._return_reason(message_url, request.payment_id)
                if reason is not None:
                    event = RailEvent(message_id, RETURNED, reason)
        return OutcomeAnswer(BankRecord.RECEIVED, message_id, event=event)

    async def _return_reason(self, message_url: str, payment_id: str) -> str | None:
        """The reason code of the bank's pacs.004 for the payment; None if not returned."""
        returned = await self._client.get(f"{message_url}/return")
        if returned.status_code != 200:
            return None
        return next(
            (
                sent_back.reason_code
                for sent_back in parse_pacs004(returned.content).transactions
                if sent_back.end_to_end_id == payment_id
            ),
            None,
        )


ACH_ENTRY = text("SELECT trace_number, window_id, file_id FROM ach_entries WHERE payment_id = :p")
UPSERT_ACH_ENTRY = text(
    "INSERT INTO ach_entries (payment_id, trace_number, window_id, file_id, effective_date)"
    " VALUES (:p, :trace, :window, :file, :effective) ON CONFLICT (payment_id) DO UPDATE"
    " SET trace_number = excluded.trace_number, window_id = excluded.window_id,"
    " file_id = excluded.file_id, effective_date = excluded.effective_date, updated_at = now()"
)
# a trace number is unique per effective date (migration 0011): the sequence came round to
# one that date already has
_TRACE_TAKEN = "ach_entries_trace_date_key"
_NEXT_TRACE = text("SELECT nextval('ach_trace_seq')")
_ACH_FILE_STATUS = {"settled": "ACSC", "returned": RETURNED}
_MAX_WINDOWS_TRIED = 5


class AchAdapter:
    """An entry in the current window's NACHA file, sent by that window's batch workflow."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        engine: AsyncEngine,
        temporal: Client,
        settings: Settings,
    ) -> None:
        self._client = client
        self._engine = engine
        self._temporal = temporal
        self._settings = settings
        # an entry's name and account number travel through the window's batch workflow,
        # whose history holds every payment of the window: sealed under the payment's own
        # data key, so erasing one customer shreds its entries there too (issue #17)
        self._sealer = FieldSealer(data_key_store(settings))

    def window(self, now: datetime) -> AchWindow:
        """The window a payment arriving at `now` goes out in."""
        settings = self._settings
        return ach_window(
            now,
            cutoffs=settings.ach.cutoffs,
            lead_seconds=settings.ach.submit_lead_seconds,
            window_seconds=settings.ach.window_seconds,
        )

    async def submit(self, request: SubmitInput) -> SubmitResult:
        """Join the open window's file (the next one if it is being sent right now).

        Crash-safe: the window about to be tried is written down first, so a retried
        activity finds the one file the payment may already be in and never joins a second.
        """
        creditor = request.creditor
        if creditor.routing_number is None or creditor.account_number is None:
            raise _refused("an ACH payment needs the creditor's routing and account number")
        return await self.join_window(
            request.payment_id,
            request.amount,
            creditor.name,
            creditor.routing_number,
            creditor.account_number,
            not_in_file=request.not_in_file,
        )

    async def join_window(
        self,
        payment_id: str,
        amount: int,
        name: str,
        routing_number: str,
        account_number: str,
        *,
        not_in_file: str = "",
        transaction_code: int = CHECKING_CREDIT,
        sealed_for: str = "",
    ) -> SubmitResult:
        """Put the entry `payment_id` (a payment, a counterparty's prenote, a payment's
        reversal) in the open window's file; see `submit`. Its name and account number are
        sealed under `sealed_for`'s data key (default: the entry's own id), so a reversal's
        go with its payment's when the customer is erased."""
        async with self._engine.connect() as conn:
            stored = (await conn.execute(ACH_ENTRY, {"p": payment_id})).first()
        if (
            stored is not None
            and stored.file_id != not_in_file
            and payment_id in await self._entries_of(stored.window_id)
        ):
            return SubmitResult(stored.file_id, reference=stored.trace_number)
        # a trace number names one entry of one file: an entry that left a file (never
        # received by the bank) gets a new one, so no trace ever appears in two files
        if stored is not None and stored.file_id != not_in_file:
            trace = str(stored.trace_number)
        else:
            trace = await self._new_trace_number()
        entry = AchEntryInput(
            payment_id,
            trace,
            amount,
            await self._sealer.seal(sealed_for or payment_id, name),
            routing_number,
            await self._sealer.seal(sealed_for or payment_id, account_number),
            transaction_code=transaction_code,
        )
        window = self.window(datetime.now(UTC))
        for _ in range(_MAX_WINDOWS_TRIED):
            batch = self._batch_input(window)
            trace = await self._record_entry(payment_id, trace, window, batch.file_id)
            entry = replace(entry, trace_number=trace)
            start = WithStartWorkflowOperation(
                AchBatchWorkflow.run,
                batch,
                id=batch_workflow_id(window.window_id),
                task_queue=self._settings.temporal.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                # a finished window must not start again: its file is already at the bank
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
            try:
                result = await self._temporal.execute_update_with_start_workflow(
                    AchBatchWorkflow.add_entry, entry, start_workflow_operation=start
                )
                return SubmitResult(result.file_id, reference=result.trace_number)
            except WorkflowUpdateFailedError as err:
                cause = err.cause
                if not (isinstance(cause, ApplicationError) and cause.type == "window_closed"):
                    raise
            except WorkflowAlreadyStartedError:
                pass  # the window's batch has finished: its file is already at the bank
            window = self.window(window.submit_at + timedelta(seconds=1))
        raise RuntimeError("no ACH window accepted the payment")  # retried by the activity

    async def ask(self, request: OutcomeInput) -> OutcomeAnswer:
        """What the bank has: of a file (`message_id`), or of a payment's entry. An entry is
        received if the bank has it in its file, or if its window's file is still to be sent;
        it has no record if it never joined a file, or its file is not at the bank and its
        window is over (the batch sends a file once)."""
        if not request.payment_id:
            found = await self._bank_file(request.message_id)
            record = BankRecord.NO_RECORD if found is None else BankRecord.RECEIVED
            return OutcomeAnswer(record, request.message_id)
        async with self._engine.connect() as conn:
            stored = (await conn.execute(ACH_ENTRY, {"p": request.payment_id})).first()
        if stored is None:
            return OutcomeAnswer(BankRecord.NO_RECORD)
        file_id, trace = str(stored.file_id), str(stored.trace_number)
        found = await self._bank_file(file_id)
        entry = _entry_of(found, trace) if found is not None else None
        if entry is not None:
            return OutcomeAnswer(
                BankRecord.RECEIVED, file_id, trace, _entry_event(entry, file_id, trace)
            )
        if found is None and await self._window_open_with(stored.window_id, request.payment_id):
            return OutcomeAnswer(BankRecord.RECEIVED, file_id, trace)
        return OutcomeAnswer(BankRecord.NO_RECORD, file_id)

    async def _bank_file(self, file_id: str) -> dict[str, Any] | None:
        """The bank's view of a file; None if it never received it; raises if it cannot
        say."""
        response = await self._client.get(f"{self._settings.rails.bank_url}/v1/ach/files/{file_id}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RuntimeError(f"bank did not answer for file {file_id}: {response.status_code}")
        body: dict[str, Any] = response.json()
        return body

    async def _window_open_with(self, window_id: str, payment_id: str) -> bool:
        """True while the window's batch has not sent its file and holds the payment."""
        handle = self._temporal.get_workflow_handle(batch_workflow_id(window_id))
        try:
            described = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        if described.status != WorkflowExecutionStatus.RUNNING:
            return False
        return payment_id in await self._entries_of(window_id)

    async def _entries_of(self, window_id: str) -> list[str]:
        handle = self._temporal.get_workflow_handle(batch_workflow_id(window_id))
        try:
            return await handle.query(AchBatchWorkflow.entries)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return []  # never started: the payment is in no file
            raise

    async def _record_entry(
        self, payment_id: str, trace: str, window: AchWindow, file_id: str
    ) -> str:
        """Write down the window (and file) the payment is about to join; returns its trace
        number: `trace`, or a new one if the file's effective date already has `trace` (the
        sequence came round). The payment is in no file yet, so its trace may still change."""
        effective = effective_entry_date(window.file_created_at)
        while True:
            params = {
                "p": payment_id,
                "trace": trace,
                "window": window.window_id,
                "file": file_id,
                "effective": effective,
            }
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(UPSERT_ACH_ENTRY, params)
            except IntegrityError as err:
                if _violated_constraint(err) != _TRACE_TAKEN:
                    raise
                trace = await self._new_trace_number()
                continue
            return trace

    async def _new_trace_number(self) -> str:
        async with self._engine.begin() as conn:
            sequence = (await conn.execute(_NEXT_TRACE)).scalar_one()
        return trace_number_for(self._settings.ach.odfi_routing, int(sequence))

    def _file_id(self, window: AchWindow) -> str:
        return window.file_id(self._settings.ach.odfi_routing)

    def _batch_input(self, window: AchWindow) -> AchBatchInput:
        return AchBatchInput(
            window.window_id,
            window.submit_at.isoformat(),
            window.file_created_at.isoformat(),
            window.file_id_modifier,
            self._file_id(window),
            submit_max_attempts=self._settings.ach.submit_max_attempts,
        )

    async def submit_file(self, request: AchFileInput) -> AchFileResult:
        """Build the window's NACHA file and send it, one bad entry never failing the others.

        Each entry is built and validated on its own first; one that cannot go in a file is
        left out and reported in `refused`. If the bank still refuses the file and names the
        entries at fault, the file is sent again without them (the bank stored nothing of a
        refused file, so the same file id is free). Deterministic: a retried activity leaves
        out the same entries and sends the same bytes, a duplicate to the bank. A refusal
        that names no entry is final for the whole file, as before.
        """
        settings = self._settings
        batch = request.batch
        origin = Origin(
            settings.ach.odfi_routing, settings.ach.company_id, settings.ach.company_name
        )
        created = datetime.fromisoformat(batch.file_created_at)
        effective = effective_entry_date(created)
        refused: list[RefusedEntry] = []
        entries: list[AchEntryInput] = []
        for sealed in request.entries:
            # the same plain text on every attempt: a retried activity sends the same bytes
            entry = replace(
                sealed,
                creditor_name=await self._sealer.open(sealed.creditor_name),
                account_number=await self._sealer.open(sealed.account_number),
            )
            try:
                check_credit(origin, created, batch.file_id_modifier, effective, entry)
            except NachaError as err:
                refused.append(RefusedEntry(entry.payment_id, refusal_reason(err), str(err)))
                activity.logger.warning("ACH entry %s refused: %s", entry.payment_id, err)
            else:
                entries.append(entry)
        while entries:
            try:
                document = build_window_file(
                    origin, created, batch.file_id_modifier, effective, entries
                )
            except NachaError as err:  # each entry was valid alone: the file as a whole is not
                raise ApplicationError(str(err), type="file_refused", non_retryable=True) from err
            response = await self._client.post(
                f"{settings.rails.bank_url}/v1/ach/files",
                content=document,
                headers={"Content-Type": "text/plain"},
            )
            _raise_for_outage(response, batch.file_id)
            if response.status_code in (200, 202):
                body = response.json()
                return AchFileResult(
                    str(body["file_id"]), bool(body.get("duplicate", False)), refused=refused
                )
            named = _entries_named(response, entries)
            if not named:
                raise ApplicationError(
                    f"bank refused file {batch.file_id}: {response.status_code}"
                    f" {response.text[:300]}",
                    type="file_refused",
                    non_retryable=True,
                )
            refused.extend(named)
            left_out = {entry.payment_id for entry in named}
            entries = [entry for entry in entries if entry.payment_id not in left_out]
        # every entry refused: there is no file to send
        return AchFileResult(batch.file_id, status=RailStatus.EMPTY, refused=refused)

    async def poll(self, request: PollInput) -> PollResult:
        """The entry's status in the bank's view of the file."""
        response = await self._client.get(
            f"{self._settings.rails.bank_url}/v1/ach/files/{request.message_id}"
        )
        if response.status_code != 200:
            return PollResult(None)
        entry = _entry_of(response.json(), request.reference)
        if entry is None:
            return PollResult(None)
        return PollResult(_entry_event(entry, request.message_id, request.reference))


def _entry_of(file: dict[str, Any], trace: str) -> dict[str, Any] | None:
    """The entry with trace number `trace` in the bank's view of a file, if it holds one."""
    for entry in file.get("entries", []):
        if entry.get("trace_number") == trace:
            return dict(entry)
    return None


def _entry_event(entry: dict[str, Any], file_id: str, trace: str) -> RailEvent | None:
    """The entry's settlement or return as a rail event; None while the bank has not
    decided."""
    status = _ACH_FILE_STATUS.get(str(entry.get("status")))
    if status is None:
        return None
    return RailEvent(file_id, status, entry.get("return_code"), reference=trace)


# the records before the first entry of a window's file: the file header, the batch header
_ENTRY_FIRST_LINE = 3


def _entries_named(response: httpx.Response, entries: list[AchEntryInput]) -> list[RefusedEntry]:
    """The entries a bank's refusal (400 `invalid_file`, each error with the line of the
    record at fault) names. The file has one batch and no addenda, in trace order, so the
    entry on line n is the (n - 3)th. Empty if the refusal names no entry record."""
    if response.status_code != 400:
        return []
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    in_file = sorted(entries, key=lambda entry: entry.trace_number)
    named: dict[str, RefusedEntry] = {}
    for error in errors:
        if not isinstance(error, dict) or error.get("record_type") != "6":
            continue
        line = error.get("line")
        if not isinstance(line, int) or not 0 <= line - _ENTRY_FIRST_LINE < len(in_file):
            continue
        entry = in_file[line - _ENTRY_FIRST_LINE]
        detail = f"refused by the bank: {error.get('code')}: {error.get('message')}"
        named.setdefault(entry.payment_id, RefusedEntry(entry.payment_id, REASON_FORMAT, detail))
    return list(named.values())


def _violated_constraint(err: IntegrityError) -> str | None:
    diag = getattr(err.orig, "diag", None)
    return getattr(diag, "constraint_name", None)


class RailActivities:
    """The rail activities, dispatching to the payment's rail adapter."""

    def __init__(self, sepa: SepaAdapter, ach: AchAdapter) -> None:
        self._sepa = sepa
        self._ach = ach

    def _adapter(self, rail: str) -> RailAdapter:
        if rail == "sepa":
            return self._sepa
        if rail == "ach":
            return self._ach
        raise _refused(f"rail {rail} is not available")

    @activity.defn(name="submit_to_rail")
    async def submit_to_rail(self, request: SubmitInput) -> SubmitResult:
        """Hand the payment to its rail; refusals are final, outages are retried."""
        return await self._adapter(request.rail).submit(request)

    @activity.defn(name="poll_rail_status")
    async def poll_rail_status(self, request: PollInput) -> PollResult:
        """Fallback when no callback came: ask the rail for the payment's status."""
        return await self._adapter(request.rail).poll(request)

    @activity.defn(name="ask_rail_outcome")
    async def ask_rail_outcome(self, request: OutcomeInput) -> OutcomeAnswer:
        """A submission's answer was lost: ask the bank what it has of it (raises when the
        bank cannot be asked; the workflow then treats the outcome as unknown)."""
        return await self._adapter(request.rail).ask(request)

    @activity.defn(name="submit_ach_file")
    async def submit_ach_file(self, request: AchFileInput) -> AchFileResult:
        """Send an ACH window's file (called by the batch workflow)."""
        return await self._ach.submit_file(request)
