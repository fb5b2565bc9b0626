"""The NACHA file of one ACH origination window (credits to the creditors, PPD).

Deterministic: the same window and entries always give the same bytes, so a file resent
after a crash is a duplicate to the bank, never a second file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from nacha import Batch, EntryDetail, ErrorCode, FileHeader, NachaError, build_file, trace_number
from nacha.charset import meaningful, nacha_text
from rails.business_days import is_fed_business_day

CHECKING_CREDIT = 22
# a counterparty's prenote, by its account type (NACHA: zero-amount credit prenotification)
PRENOTE_CODES = {"checking": 23, "savings": 33}
CREDITS_ONLY = 220
DEBITS_ONLY = 225
# a reversal of an erroneous credit: a debit of the receiver's checking account, in a batch
# of its own whose company entry description is REVERSAL (NACHA rules)
REVERSAL_CODE = 27
REVERSAL_DESCRIPTION = "REVERSAL"


@dataclass(frozen=True)
class Origin:
    """Who originates: the platform's bank (ODFI) and the company the files are sent for."""

    odfi_routing: str
    company_id: str
    company_name: str


class AchCredit(Protocol):
    """What the file needs of each payment (the ACH batch workflow's entries have this shape)."""

    @property
    def payment_id(self) -> str: ...
    @property
    def trace_number(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def creditor_name(self) -> str: ...
    @property
    def routing_number(self) -> str: ...
    @property
    def account_number(self) -> str: ...
    @property
    def transaction_code(self) -> int: ...


def trace_number_for(odfi_routing: str, sequence: int) -> str:
    """ODFI's 8-digit identification + the sequence modulo 10^7: a trace number comes round
    again after ten million entries, so it is unique per file and per effective date (what
    NACHA asks, and what matching needs), not forever."""
    return trace_number(odfi_routing[:8], sequence % 10_000_000)


def effective_entry_date(file_created_at: datetime) -> date:
    """The effective entry date of a window's file: its creation date, or the next Federal
    Reserve business day."""
    effective = file_created_at.date()
    while not is_fed_business_day(effective):
        effective += timedelta(days=1)
    return effective


def build_window_file(
    origin: Origin,
    created_at: datetime,
    file_id_modifier: str,
    effective_date: date,
    credits: Sequence[AchCredit],
) -> str:
    """The file: a credits-only PPD batch with an entry per payment (and prenote), in trace
    order; reversals (debits) follow in a debits-only batch described REVERSAL."""
    entries = [
        EntryDetail(
            # a payment's credit (22), a prenote (23/33, zero amount), a reversal (27)
            transaction_code=credit.transaction_code,
            receiving_dfi_routing=credit.routing_number,
            dfi_account_number=credit.account_number,
            amount_cents=credit.amount,
            # the payment id's tail: 15 characters is all the record has
            individual_id=credit.payment_id[-15:],
            # the name as the API showed it (`creditor.rail_name`): the same conversion
            individual_name=nacha_text(credit.creditor_name),
            discretionary_data="",
            addenda=None,
            trace_number=credit.trace_number,
        )
        for credit in sorted(credits, key=lambda credit: credit.trace_number)
    ]
    header = FileHeader(
        immediate_destination=origin.odfi_routing,
        immediate_origin=origin.odfi_routing,
        destination_name="BANKSIM ODFI",
        origin_name=origin.company_name[:23],
        file_creation=created_at,
        file_id_modifier=file_id_modifier,
    )
    batches: list[Batch] = []
    kinds = (
        (CREDITS_ONLY, "PAYMENT", [e for e in entries if e.transaction_code != REVERSAL_CODE]),
        (
            DEBITS_ONLY,
            REVERSAL_DESCRIPTION,
            [e for e in entries if e.transaction_code == REVERSAL_CODE],
        ),
    )
    for service_class, description, batch_entries in kinds:
        # a window without reversals keeps its one batch (and its bytes) as before
        if batch_entries or (service_class == CREDITS_ONLY and not entries):
            batches.append(
                Batch(
                    service_class_code=service_class,
                    company_name=origin.company_name[:16],
                    company_identification=origin.company_id,
                    sec_code="PPD",
                    company_entry_description=description,
                    effective_entry_date=effective_date,
                    originating_dfi=origin.odfi_routing[:8],
                    batch_number=len(batches) + 1,
                    entries=batch_entries,
                )
            )
    return build_file(header, batches)


# ISO 20022 status reasons for an entry refused before it reached the bank
REASON_ROUTING = "RC01"  # BankIdentifierIncorrect
REASON_AMOUNT = "AM02"  # NotAllowedAmount
REASON_FORMAT = "CH16"  # ElementContentFormallyIncorrect
_REASON_BY_FIELD = {
    "receiving_dfi_identification": REASON_ROUTING,
    "check_digit": REASON_ROUTING,
    "amount": REASON_AMOUNT,
}


def refusal_reason(err: NachaError) -> str:
    """The status reason code a payment gets when its entry is refused: by the field at
    fault (routing number RC01, amount AM02), CH16 for anything else in the entry."""
    if err.code is ErrorCode.BAD_ROUTING_CHECK_DIGIT:
        return REASON_ROUTING
    return _REASON_BY_FIELD.get(err.field or "", REASON_FORMAT)


def check_credit(
    origin: Origin,
    created_at: datetime,
    file_id_modifier: str,
    effective_date: date,
    credit: AchCredit,
) -> None:
    """Raise `NachaError` if this entry cannot go in a file: it is built on its own, in a
    file of one entry, and parsed as the bank would (so one bad entry is found, and refused,
    without the others)."""
    if not meaningful(nacha_text(credit.creditor_name)):
        raise NachaError(
            ErrorCode.MISSING_FIELD,
            "the individual name has no letter or digit NACHA can carry",
            record_type="6",
            field="individual_name",
        )
    build_window_file(origin, created_at, file_id_modifier, effective_date, [credit])
