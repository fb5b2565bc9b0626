"""SEPA recalls at the bank: a camt.056 cancellation request, answered by a camt.029.

The answer is decided by the recall rule of the original creditor's IBAN (admin API, `action:
"recall"`): code ACCP accepts, any other code (NOOR, CUST, LEGL, AC04, ...) rejects with it;
`delay_seconds` (simulator seconds, default banksim_recall_answer_delay_seconds) is when the
answer goes out. Without a rule the bank accepts. A recall of a transaction the bank never
settled is rejected NOOR (no original transaction received).

An accepted recall is booked back on the platform's account (credit, return code FOCR:
following cancellation request) and followed by a pacs.004 with reason FOCR; both go by
signed callback to the SEPA receiver, like the pacs.002s. The answer and the return are kept
per original message (steps 4 and 5 beside the pacs.002s), so a repeated request, or a job run
twice, answers once. The pacs.004 of a recall is not the message's own return (step 3): asking
for the payment's status still finds it settled, then recalled.
"""

from __future__ import annotations

import logging

from banksim.bank import Bank
from banksim.clock import to_datetime
from banksim.outbox import CallbackKind
from banksim.sepa import MESSAGE_ID_HEADER, current_status, report_id, send_return
from banksim.store import Job, normalize_iban
from iso20022.camt029 import ACCEPTED, REJECTED, Resolution, build_camt029
from iso20022.camt056 import CancellationRequest
from iso20022.pacs004 import ReturnedTransaction
from iso20022.pacs008 import parse_pacs008

logger = logging.getLogger("banksim")

RECALL_JOB = "sepa.recall"
RECALL_RULES = "sepa-recall"  # the rules' rail key, beside the IBAN's payment rule
ACH_RECALL_RULES = "ach-recall"  # an ACH reversal's fate, by the receiver's account number
ACCEPT_CODE = "ACCP"
NO_ORIGINAL = "NOOR"
FOLLOWING_CANCELLATION = "FOCR"
ANSWER_STEP = 4  # the camt.029
RECALL_RETURN_STEP = 5  # the pacs.004 of an accepted recall


def _creditor_iban(bank: Bank, message_id: str, end_to_end_id: str) -> str | None:
    message = bank.store.get_message(message_id)
    if message is None:
        return None
    for tx in parse_pacs008(message.body).transactions:
        if tx.end_to_end_id == end_to_end_id:
            return tx.creditor_iban
    return None


def receive_recall(bank: Bank, request: CancellationRequest) -> None:
    """Schedule the answer to a validated camt.056 (decided now, sent after the delay)."""
    status = current_status(bank, request.original_message_id, request.end_to_end_id)
    iban = _creditor_iban(bank, request.original_message_id, request.end_to_end_id)
    code, delay = ACCEPT_CODE, bank.settings.banksim.recall_answer_delay_seconds
    if status is None or status.status != "ACSC" or iban is None:
        code = NO_ORIGINAL
    else:
        rule = bank.store.rule_for(RECALL_RULES, normalize_iban(iban))
        if rule is not None:
            code = rule.code
            delay = float(rule.detail) if rule.detail else delay
    bank.scheduler.schedule(
        RECALL_JOB,
        request.original_message_id,
        bank.now() + delay,
        {
            "case_id": request.case_id,
            "end_to_end_id": request.end_to_end_id,
            "amount_minor": request.amount_minor,
            "currency": request.currency,
            "assigner_bic": request.assigner_bic,
            "assignee_bic": request.assignee_bic,
            "code": code,
        },
    )
    logger.info("recall %s of %s: answer %s in %ss", request.case_id, iban, code, delay)


def answer_recall(bank: Bank, job: Job) -> None:
    """Job: send the camt.029; for an accepted recall book the funds back and send the
    pacs.004 (reason FOCR)."""
    payload = job.payload
    if bank.store.report(job.ref, ANSWER_STEP) is not None:
        return
    code = str(payload["code"])
    accepted = code == ACCEPT_CODE
    resolution = Resolution(
        assignment_id=report_id(),
        case_id=str(payload["case_id"]),
        created_at=to_datetime(job.due_at),
        # the creditor's bank answers the debtor's bank
        assigner_bic=str(payload["assignee_bic"]),
        assignee_bic=str(payload["assigner_bic"]),
        original_message_id=job.ref,
        end_to_end_id=str(payload["end_to_end_id"]),
        status=ACCEPTED if accepted else REJECTED,
        reason_code="" if accepted else code,
    )
    xml = build_camt029(resolution)
    bank.store.save_report(job.ref, ANSWER_STEP, resolution.assignment_id, xml, job.due_at)
    _send(bank, job.ref, xml, job.due_at)
    if accepted:
        _return_funds(bank, job)
    logger.info("recall %s answered %s", resolution.case_id, resolution.status)


def _return_funds(bank: Bank, job: Job) -> None:
    payload = job.payload
    returned = ReturnedTransaction(
        str(payload["end_to_end_id"]),
        int(payload["amount_minor"]),
        str(payload["currency"]),
        FOLLOWING_CANCELLATION,
    )
    send_return(bank, job.ref, returned, job.due_at, step=RECALL_RETURN_STEP)


def _send(bank: Bank, message_id: str, body: bytes, at: float) -> None:
    bank.outbox.enqueue(
        kind=CallbackKind.SEPA_RECALL,
        stream=f"sepa:{message_id}",
        body=body,
        content_type="application/xml",
        headers={MESSAGE_ID_HEADER: message_id},
        copies=bank.faults.callback_copies(),
        created_at=at,
        hold=False,
        overtake=False,
    )


def register(bank: Bank) -> None:
    """Register the recall job handler."""
    bank.scheduler.register(RECALL_JOB, lambda job: answer_recall(bank, job))
