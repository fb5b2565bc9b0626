"""SEPA: what the bank does with an accepted pacs.008.

At receipt (simulator time t) the bank schedules two steps: at t a pacs.002 with every
transaction ACCP (accepted, settlement in process), and at t + banksim_settle_delay_seconds the
final pacs.002: ACSC (settled) or RJCT with an ExternalStatusReason code (AM03 not euro, AC01
invalid IBAN, or the code of an injected reject rule). Each pacs.002 is its own message,
delivered by signed callback in that order (reversed under the out-of-order fault). Settled
transactions are booked on the platform's SEPA account; a "return" rule sends the money back
banksim_sepa_return_delay_seconds later: booked on the account (credit, with the reason code)
and reported by a pacs.004 payment return, delivered by signed callback like the pacs.002s
and kept for `GET /v1/sepa/messages/{id}/return`.

A pacs.028 status request is answered at once with a pacs.002 about the one transaction it
names: its latest status if the bank has the message (ACCP until decided, then ACSC/RJCT), or
RJCT AG09 (original payment never received) if the bank has no record of it.
"""

from __future__ import annotations

import hashlib
import logging
import uuid

import schwifty

from banksim.bank import Bank
from banksim.clock import to_datetime
from banksim.outbox import CallbackKind
from banksim.store import Booking, Job, Receipt, normalize_iban
from iso20022.pacs002 import StatusReport, TransactionStatus, build_pacs002, parse_pacs002
from iso20022.pacs004 import PaymentReturn, ReturnedTransaction, build_pacs004
from iso20022.pacs008 import ParsedTransaction, parse_pacs008
from iso20022.pacs028 import NOT_RECEIVED_INFO, NOT_RECEIVED_REASON, StatusRequest
from iso20022.schemas import PACS008

logger = logging.getLogger("banksim")

ACCEPT_JOB = "sepa.accept"
SETTLE_JOB = "sepa.settle"
RETURN_JOB = "sepa.return"
ACCEPTED_STEP = 1
FINAL_STEP = 2
RETURN_STEP = 3  # the pacs.004, stored beside the pacs.002s (one return per message kept)
SEPA_CURRENCY = "EUR"
RAIL = "sepa"
MESSAGE_ID_HEADER = "Banksim-Message-Id"


def booking_date(timestamp: float) -> str:
    """SEPA books on the UTC date of the simulated instant."""
    return to_datetime(timestamp).date().isoformat()


def report_id() -> str:
    """A fresh pacs.002 MsgId: 4 + 31 characters (ISO ids are at most 35 long)."""
    return f"BSIM{uuid.uuid4().hex[:31]}"


def receive(bank: Bank, message_id: str, body: bytes) -> Receipt:
    """Record a validated pacs.008; if new, schedule its ACCP and its settlement."""
    now = bank.now()
    with bank.store.transaction():
        receipt = bank.store.record_message(
            message_id,
            hashlib.sha256(body).hexdigest(),
            body,
            now,
            out_of_order=bank.faults.config.out_of_order_callbacks,
        )
        if receipt is Receipt.NEW:
            bank.scheduler.schedule(ACCEPT_JOB, message_id, now)
            bank.scheduler.schedule(
                SETTLE_JOB, message_id, now + bank.settings.banksim.settle_delay_seconds
            )
    return receipt


def _valid_iban(iban: str) -> bool:
    try:
        schwifty.IBAN(iban)
    except ValueError:  # schwifty's errors (checksum, length, structure) are ValueErrors
        return False
    return True


def decide_transaction(bank: Bank, tx: ParsedTransaction) -> tuple[TransactionStatus, str | None]:
    """The bank's verdict on one transaction, and the return code if it is to be returned."""
    if tx.currency != SEPA_CURRENCY:
        # SEPA clears euros only (AM03: currency not processable)
        return TransactionStatus(tx.end_to_end_id, "RJCT", "AM03"), None
    if tx.creditor_iban is None or not _valid_iban(tx.creditor_iban):
        return TransactionStatus(tx.end_to_end_id, "RJCT", "AC01"), None
    rule = bank.store.rule_for(RAIL, normalize_iban(tx.creditor_iban))
    if rule is not None and rule.action == "reject":
        return TransactionStatus(tx.end_to_end_id, "RJCT", rule.code), None
    return TransactionStatus(tx.end_to_end_id, "ACSC"), (
        rule.code if rule is not None and rule.action == "return" else None
    )


def _send(
    bank: Bank,
    message_id: str,
    report: bytes,
    at: float,
    *,
    step: int,
    hold: bool,
    overtake: bool,
    kind: CallbackKind = CallbackKind.SEPA_STATUS,
) -> None:
    # only the final status can be lost to the drop fault: the ACCP tells the platform nothing
    # it must act on, the final status is what it would otherwise wait for forever
    final = step == FINAL_STEP
    bank.outbox.enqueue(
        kind=kind,
        stream=f"sepa:{message_id}",
        body=report,
        content_type="application/xml",
        headers={MESSAGE_ID_HEADER: message_id},
        copies=bank.faults.final_callback_copies() if final else bank.faults.callback_copies(),
        created_at=at,
        hold=hold,
        overtake=overtake,
    )
    logger.info("message %s: status report step %d queued", message_id, step)


def accept(bank: Bank, job: Job) -> None:
    """Job: report every transaction ACCP."""
    message = bank.store.get_message(job.ref)
    if message is None or bank.store.report(job.ref, ACCEPTED_STEP) is not None:
        return
    parsed = parse_pacs008(message.body)
    report = StatusReport(
        message_id=report_id(),
        original_message_id=message.message_id,
        created_at=to_datetime(job.due_at),
        transactions=[TransactionStatus(tx.end_to_end_id, "ACCP") for tx in parsed.transactions],
    )
    xml = build_pacs002(report)
    bank.store.save_report(message.message_id, ACCEPTED_STEP, report.message_id, xml, job.due_at)
    # under the out-of-order fault the ACCP waits until the final status has gone first
    _send(
        bank,
        message.message_id,
        xml,
        job.due_at,
        step=ACCEPTED_STEP,
        hold=message.out_of_order,
        overtake=False,
    )


def settle(bank: Bank, job: Job) -> None:
    """Job: decide every transaction, book the settled ones, report ACSC/RJCT."""
    message = bank.store.get_message(job.ref)
    if message is None or bank.store.report(job.ref, FINAL_STEP) is not None:
        return
    parsed = parse_pacs008(message.body)
    statuses: list[TransactionStatus] = []
    day = booking_date(job.due_at)
    for tx in parsed.transactions:
        status, return_code = decide_transaction(bank, tx)
        statuses.append(status)
        if status.status != "ACSC":
            continue
        bank.store.add_booking(
            Booking(
                RAIL,
                day,
                job.due_at,
                "DBIT",
                tx.amount_minor,
                tx.currency,
                tx.end_to_end_id,
                None,
                source_id=message.message_id,
            )
        )
        if return_code is not None:
            bank.scheduler.schedule(
                RETURN_JOB,
                message.message_id,
                job.due_at + bank.settings.banksim.sepa_return_delay_seconds,
                {
                    "end_to_end_id": tx.end_to_end_id,
                    "amount_minor": tx.amount_minor,
                    "currency": tx.currency,
                    "code": return_code,
                },
            )
    report = StatusReport(
        message_id=report_id(),
        original_message_id=message.message_id,
        created_at=to_datetime(job.due_at),
        transactions=statuses,
    )
    xml = build_pacs002(report)
    bank.store.save_report(message.message_id, FINAL_STEP, report.message_id, xml, job.due_at)
    _send(
        bank,
        message.message_id,
        xml,
        job.due_at,
        step=FINAL_STEP,
        hold=False,
        overtake=message.out_of_order,
    )
    logger.info(
        "decided message %s: %s",
        message.message_id,
        ", ".join(f"{s.end_to_end_id}={s.status}" for s in statuses),
    )


def book_return(bank: Bank, job: Job) -> None:
    """Job: the creditor bank sends a settled transaction back; credit it with the reason."""
    payload = job.payload
    returned = ReturnedTransaction(
        str(payload["end_to_end_id"]),
        int(payload["amount_minor"]),
        str(payload["currency"]),
        str(payload["code"]),
    )
    send_return(bank, job.ref, returned, job.due_at, step=RETURN_STEP)


def send_return(
    bank: Bank, message_id: str, returned: ReturnedTransaction, at: float, *, step: int
) -> None:
    """Book `returned` back on the platform's account (credit, with its reason code) and
    report it by a pacs.004, kept as the message's report `step` and sent by callback."""
    bank.store.add_booking(
        Booking(
            RAIL,
            booking_date(at),
            at,
            "CRDT",
            returned.amount_minor,
            returned.currency,
            returned.end_to_end_id,
            None,
            returned.reason_code,
            source_id=message_id,
        )
    )
    payment_return = PaymentReturn(
        message_id=report_id(),
        original_message_id=message_id,
        created_at=to_datetime(at),
        transactions=[returned],
    )
    xml = build_pacs004(payment_return)
    bank.store.save_report(message_id, step, payment_return.message_id, xml, at)
    _send(
        bank,
        message_id,
        xml,
        at,
        step=step,
        hold=False,
        overtake=False,
        kind=CallbackKind.SEPA_RETURN,
    )
    logger.info(
        "message %s: %s returned %s", message_id, returned.end_to_end_id, returned.reason_code
    )


def current_status(bank: Bank, message_id: str, end_to_end_id: str) -> TransactionStatus | None:
    # the bank's books for one transaction: None if it never received it
    message = bank.store.get_message(message_id)
    if message is None:
        return None
    transactions = parse_pacs008(message.body).transactions
    if not any(tx.end_to_end_id == end_to_end_id for tx in transactions):
        return None
    latest = bank.store.latest_report(message_id)
    if latest is not None:
        for tx in parse_pacs002(latest).transactions:
            if tx.end_to_end_id == end_to_end_id:
                return tx
    # received and schema-valid, but the ACCP job has not run yet: accepted all the same
    return TransactionStatus(end_to_end_id, "ACCP")


def answer_status_request(bank: Bank, request: StatusRequest) -> bytes:
    """The pacs.002 answering a pacs.028: the transaction's current status, or RJCT AG09 if
    the bank has no record of it. Read-only: asking changes nothing at the bank."""
    status = None
    # the bank only ever receives pacs.008s: a request about any other message finds nothing
    if request.original_message_name == PACS008:
        status = current_status(bank, request.original_message_id, request.original_end_to_end_id)
    if status is None:
        status = TransactionStatus(
            request.original_end_to_end_id,
            "RJCT",
            NOT_RECEIVED_REASON,
            additional_info=NOT_RECEIVED_INFO,
        )
    report = StatusReport(
        message_id=report_id(),
        original_message_id=request.original_message_id,
        created_at=to_datetime(bank.now()),
        transactions=[status],
    )
    logger.info(
        "status request %s: %s of %s is %s%s",
        request.message_id,
        request.original_end_to_end_id,
        request.original_message_id,
        status.status,
        f" {status.reason_code}" if status.reason_code else "",
    )
    return build_pacs002(report)


def register(bank: Bank) -> None:
    """Register the SEPA job handlers."""
    bank.scheduler.register(ACCEPT_JOB, lambda job: accept(bank, job))
    bank.scheduler.register(SETTLE_JOB, lambda job: settle(bank, job))
    bank.scheduler.register(RETURN_JOB, lambda job: book_return(bank, job))
