"""ACH: what the bank (as ODFI) does with an accepted NACHA file.

A file settles at the first cut-off window after receipt on the simulator clock (see
`banksim.business_days`); the bank then posts a signed JSON settlement notice. Entries whose
DFI account number matches an ACH "return" rule are returned banksim_ach_return_delay_seconds
(simulated) after settlement, in a NACHA return file (addenda 99 with the R-code and the
original trace number) posted, signed, as text/plain. Every entry is booked on the platform's
ACH account (credits it originates are debits to it, and the other way round); a return
books the reverse movement.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any

from banksim.bank import Bank
from banksim.clock import to_datetime
from banksim.outbox import CallbackKind
from banksim.recalls import ACCEPT_CODE, ACH_RECALL_RULES
from banksim.store import AchEntry, AchFile, Booking, Job, Receipt
from nacha import (
    Batch,
    EntryDetail,
    FileHeader,
    NachaFile,
    build_change_entry,
    build_file,
    build_return_batch,
    build_return_entry,
    is_credit,
    is_prenote,
    parse_file,
)
from rails.ach_file import REVERSAL_CODE
from rails.windows import FILE_ID_MODIFIERS, ach_file_id

logger = logging.getLogger("banksim")

SETTLE_JOB = "ach.settle"
RETURN_JOB = "ach.return"
CHANGE_JOB = "ach.noc"
RAIL = "ach"
ACH_CURRENCY = "USD"
FILE_ID_HEADER = "Banksim-File-Id"
ORIGINAL_FILE_ID_HEADER = "Banksim-Original-File-Id"
SETTLED_EVENT = "ach.file.settled"


def file_id_of(header: FileHeader) -> str:
    """A file's identity, as ODFIs know it: origin, creation date and time, modifier."""
    return ach_file_id(
        header.immediate_origin.strip(), header.file_creation, header.file_id_modifier
    )


def _entries(parsed: NachaFile) -> list[AchEntry]:
    entries: list[AchEntry] = []
    for batch in parsed.batches:
        for entry in batch.entries:
            entries.append(
                AchEntry(
                    seq=len(entries),
                    trace_number=entry.trace_number,
                    transaction_code=entry.transaction_code,
                    amount_cents=entry.amount_cents,
                    account_number=entry.dfi_account_number.strip(),
                    individual_id=entry.individual_id.strip(),
                )
            )
    return entries


def receive(bank: Bank, text: str) -> tuple[Receipt, AchFile]:
    """Validate and record a NACHA file; if new, schedule its settlement at the next cut-off.

    Raises `NachaError` for an invalid file. Returns the receipt and the stored file (the
    original one for a duplicate).
    """
    parsed = parse_file(text)
    file_id = file_id_of(parsed.header)
    now = bank.now()
    cutoff = bank.calendar.next_cutoff(to_datetime(now))
    entries = _entries(parsed)
    candidate = AchFile(
        file_id=file_id,
        body_sha256=hashlib.sha256(text.encode("ascii")).hexdigest(),
        body=text,
        received_at=now,
        cutoff_at=cutoff.timestamp(),
        settlement_date=bank.calendar.local_date(cutoff).isoformat(),
        entry_count=len(entries),
        status="accepted",
        out_of_order=bank.faults.config.out_of_order_callbacks,
        settled_at=None,
    )
    with bank.store.transaction():
        receipt = bank.store.record_ach_file(candidate, entries)
        if receipt is Receipt.NEW:
            bank.scheduler.schedule(SETTLE_JOB, file_id, candidate.cutoff_at)
    stored = bank.store.get_ach_file(file_id)
    assert stored is not None
    return receipt, stored


def ack(file: AchFile, *, duplicate: bool) -> dict[str, Any]:
    """The acknowledgement of a received file (the same for every resend)."""
    return {
        "file_id": file.file_id,
        "duplicate": duplicate,
        "entry_count": file.entry_count,
        "settlement_date": file.settlement_date,
        "cutoff_at": to_datetime(file.cutoff_at).isoformat(),
    }


def view(bank: Bank, file: AchFile) -> dict[str, Any]:
    """`GET /v1/ach/files/{file_id}`: the file and each entry's status."""
    return {
        "file_id": file.file_id,
        "status": file.status,
        "settlement_date": file.settlement_date,
        "cutoff_at": to_datetime(file.cutoff_at).isoformat(),
        "entries": [
            {
                "trace_number": entry.trace_number,
                "amount": entry.amount_cents,
                "account_number_last4": entry.account_number[-4:],
                "status": entry.status,
                "return_code": entry.return_code,
            }
            for entry in bank.store.ach_entries(file.file_id)
        ],
    }


def _booking(
    entry: AchEntry, file_id: str, day: str, at: float, *, returned: str | None = None
) -> Booking:
    # an entry crediting the receiver takes money out of the originator's account
    out = is_credit(entry.transaction_code)
    if returned is not None:
        out = not out
    return Booking(
        rail=RAIL,
        booking_date=day,
        booked_at=at,
        direction="DBIT" if out else "CRDT",
        amount_minor=entry.amount_cents,
        currency=ACH_CURRENCY,
        end_to_end_id=entry.individual_id or None,
        tx_id=entry.trace_number,
        return_code=returned,
        source_id=file_id,
    )


def settle(bank: Bank, job: Job) -> None:
    """Job (at the cut-off): settle the file, book it, notify; schedule the returns."""
    file = bank.store.get_ach_file(job.ref)
    if file is None or file.status != "accepted":
        return
    entries = bank.store.ach_entries(file.file_id)
    returns = 0
    changes: dict[str, list[str]] = {}
    for entry in entries:
        if entry.transaction_code == REVERSAL_CODE:
            # a reversal is decided by the account's recall rule alone (ACCP or none: it posts)
            rule = bank.store.rule_for(ACH_RECALL_RULES, entry.account_number)
            code = rule.code if rule is not None and rule.code != ACCEPT_CODE else None
            rule = None
        else:
            rule = bank.store.rule_for(RAIL, entry.account_number)
            code = rule.code if rule is not None and rule.action == "return" else None
        returns += code is not None
        if rule is not None and rule.action == "noc":
            # the entry posts; the RDFI tells the originator what to correct next time
            changes[entry.trace_number] = [rule.code, rule.detail or ""]
        bank.store.set_ach_entry(file.file_id, entry.seq, "settled", code)
        if not is_prenote(entry.transaction_code):
            bank.store.add_booking(_booking(entry, file.file_id, file.settlement_date, job.due_at))
    bank.store.mark_ach_file_settled(file.file_id, job.due_at)
    notice_event = f"evt_{hashlib.sha256(f'{file.file_id}:settled'.encode()).hexdigest()[:24]}"
    notice = {
        "event_id": notice_event,
        "type": SETTLED_EVENT,
        "file_id": file.file_id,
        "settlement_date": file.settlement_date,
        "trace_numbers": [entry.trace_number for entry in entries],
        "sent_at": to_datetime(job.due_at).isoformat(),
    }
    bank.outbox.enqueue(
        kind=CallbackKind.ACH_SETTLEMENT,
        stream=f"ach:{file.file_id}",
        body=json.dumps(notice).encode(),
        content_type="application/json",
        headers={FILE_ID_HEADER: file.file_id},
        # the drop-final-callback fault may swallow it: the file's status still tells
        copies=bank.faults.final_callback_copies(),
        created_at=job.due_at,
        # under the out-of-order fault the notice waits until the return file has gone first
        hold=file.out_of_order and returns > 0,
        event_id=notice_event,
    )
    if returns:
        bank.scheduler.schedule(
            RETURN_JOB, file.file_id, job.due_at + bank.settings.banksim.ach_return_delay_seconds
        )
    if changes:
        bank.scheduler.schedule(
            CHANGE_JOB,
            file.file_id,
            job.due_at + bank.settings.banksim.ach_return_delay_seconds,
            {"changes": changes},
        )
    logger.info(
        "settled ACH file %s (%d entries, %d to return)", file.file_id, len(entries), returns
    )


def _batches_back(
    original: NachaFile,
    effective: date,
    answer: Callable[[EntryDetail], EntryDetail | None],
    sec_code: str | None = None,
) -> list[Batch]:
    """The batches travelling back for `original`: `answer` gives an entry's return or
    notification of change (None: nothing to send for it); one batch per original batch and
    RDFI (a batch back has one originator)."""
    batches: list[Batch] = []
    for batch in original.batches:
        by_rdfi: dict[str, list[EntryDetail]] = defaultdict(list)
        for entry in batch.entries:
            back = answer(entry)
            if back is not None:
                by_rdfi[entry.receiving_dfi_routing[:8]].append(back)
        for entries in by_rdfi.values():
            built = build_return_batch(
                batch, entries, batch_number=len(batches) + 1, effective_entry_date=effective
            )
            batches.append(built if sec_code is None else replace(built, sec_code=sec_code))
    return batches


def _trace_back(bank: Bank) -> int:
    return bank.store.next_value("ach_return_trace") % 10_000_000


def _return_batches(
    bank: Bank, original: NachaFile, codes: dict[str, str], effective: date
) -> list[Batch]:
    def answer(entry: EntryDetail) -> EntryDetail | None:
        code = codes.get(entry.trace_number)
        if code is None:
            return None
        return build_return_entry(entry, code, trace_sequence=_trace_back(bank))

    return _batches_back(original, effective, answer)


def build_return_file(bank: Bank, file: AchFile, codes: dict[str, str], at: float) -> str:
    """The NACHA return file for the entries of `file` named in `codes` (trace -> R-code)."""
    original = parse_file(file.body)
    local = to_datetime(at).astimezone(bank.calendar.zone).replace(tzinfo=None)
    sequence = bank.store.next_value("ach_return_file")
    header = replace(
        original.header,
        # the return travels back: from the bank to the originator
        immediate_destination=original.header.immediate_origin,
        immediate_origin=original.header.immediate_destination,
        destination_name=original.header.origin_name,
        origin_name=original.header.destination_name,
        file_creation=local,
        file_id_modifier=FILE_ID_MODIFIERS[(sequence - 1) % len(FILE_ID_MODIFIERS)],
        reference_code="RETURNS",
    )
    return build_file(header, _return_batches(bank, original, codes, local.date()))


def send_returns(bank: Bank, job: Job) -> None:
    """Job: return the settled entries marked for return, in one NACHA return file."""
    file = bank.store.get_ach_file(job.ref)
    if file is None:
        return
    pending = [
        e for e in bank.store.ach_entries(file.file_id) if e.status == "settled" and e.return_code
    ]
    if not pending:
        return
    codes = {entry.trace_number: entry.return_code for entry in pending if entry.return_code}
    text = build_return_file(bank, file, codes, job.due_at)
    day = bank.calendar.local_date(to_datetime(job.due_at)).isoformat()
    for entry in pending:
        bank.store.set_ach_entry(file.file_id, entry.seq, "returned", entry.return_code)
        if not is_prenote(entry.transaction_code):
            bank.store.add_booking(
                _booking(entry, file.file_id, day, job.due_at, returned=entry.return_code)
            )
    return_id = file_id_of(parse_file(text).header)
    bank.outbox.enqueue(
        kind=CallbackKind.ACH_RETURN,
        stream=f"ach:{file.file_id}",
        body=text.encode("ascii"),
        content_type="text/plain",
        headers={FILE_ID_HEADER: return_id, ORIGINAL_FILE_ID_HEADER: file.file_id},
        copies=bank.faults.callback_copies(),
        created_at=job.due_at,
        overtake=file.out_of_order,
    )
    logger.info("returned %d entries of ACH file %s in %s", len(pending), file.file_id, return_id)


def _change_batches(
    bank: Bank, original: NachaFile, changes: dict[str, list[str]], effective: date
) -> list[Batch]:
    def answer(entry: EntryDetail) -> EntryDetail | None:
        change = changes.get(entry.trace_number)
        if change is None:
            return None
        code, data = change
        return build_change_entry(entry, code, data, trace_sequence=_trace_back(bank))

    return _batches_back(original, effective, answer, sec_code="COR")


def send_changes(bank: Bank, job: Job) -> None:
    """Job: send the notifications of change (COR entries, addenda 98) for a settled file's
    entries a `noc` rule named, in one NACHA file on the returns channel (as RDFIs do)."""
    file = bank.store.get_ach_file(job.ref)
    changes: dict[str, list[str]] = (job.payload or {}).get("changes", {})
    if file is None or not changes:
        return
    original = parse_file(file.body)
    local = to_datetime(job.due_at).astimezone(bank.calendar.zone).replace(tzinfo=None)
    sequence = bank.store.next_value("ach_return_file")
    header = replace(
        original.header,
        immediate_destination=original.header.immediate_origin,
        immediate_origin=original.header.immediate_destination,
        destination_name=original.header.origin_name,
        origin_name=original.header.destination_name,
        file_creation=local,
        file_id_modifier=FILE_ID_MODIFIERS[(sequence - 1) % len(FILE_ID_MODIFIERS)],
        reference_code="NOC",
    )
    text = build_file(header, _change_batches(bank, original, changes, local.date()))
    bank.outbox.enqueue(
        kind=CallbackKind.ACH_RETURN,
        stream=f"ach:{file.file_id}",
        body=text.encode("ascii"),
        content_type="text/plain",
        headers={
            FILE_ID_HEADER: file_id_of(parse_file(text).header),
            ORIGINAL_FILE_ID_HEADER: file.file_id,
        },
        copies=bank.faults.callback_copies(),
        created_at=job.due_at,
    )
    logger.info("sent %d notifications of change for ACH file %s", len(changes), file.file_id)


def register(bank: Bank) -> None:
    """Register the ACH job handlers."""
    bank.scheduler.register(SETTLE_JOB, lambda job: settle(bank, job))
    bank.scheduler.register(RETURN_JOB, lambda job: send_returns(bank, job))
    bank.scheduler.register(CHANGE_JOB, lambda job: send_changes(bank, job))
