"""Return entries: what an RDFI sends back when it cannot post an entry (R-codes, addenda 99)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from nacha.errors import ErrorCode, NachaError
from nacha.records import (
    Batch,
    EntryDetail,
    ReturnAddenda,
    is_return,
)
from nacha.routing import routing_check_digit, routing_number_valid

# NACHA return reason codes (the ones an RDFI may use on PPD/CCD entries, plus the common
# ODFI/operator ones), with the Rules' titles.
RETURN_REASON_CODES: dict[str, str] = {
    "R01": "Insufficient Funds",
    "R02": "Account Closed",
    "R03": "No Account/Unable to Locate Account",
    "R04": "Invalid Account Number Structure",
    "R05": "Unauthorized Debit to Consumer Account Using Corporate SEC Code",
    "R06": "Returned per ODFI's Request",
    "R07": "Authorization Revoked by Customer",
    "R08": "Payment Stopped",
    "R09": "Uncollected Funds",
    "R10": "Customer Advises Originator is Not Known to Receiver and/or Originator is Not "
    "Authorized by Receiver to Debit Receiver's Account",
    "R11": "Customer Advises Entry Not in Accordance with the Terms of the Authorization",
    "R12": "Account Sold to Another DFI",
    "R13": "Invalid ACH Routing Number",
    "R14": "Representative Payee Deceased or Unable to Continue in That Capacity",
    "R15": "Beneficiary or Account Holder (Other Than a Representative Payee) Deceased",
    "R16": "Account Frozen/Entry Returned per OFAC Instruction",
    "R17": "File Record Edit Criteria/Entry with Invalid Account Number Initiated Under "
    "Questionable Circumstances",
    "R18": "Improper Effective Entry Date",
    "R19": "Amount Field Error",
    "R20": "Non-Transaction Account",
    "R21": "Invalid Company Identification",
    "R22": "Invalid Individual ID Number",
    "R23": "Credit Entry Refused by Receiver",
    "R24": "Duplicate Entry",
    "R25": "Addenda Error",
    "R26": "Mandatory Field Error",
    "R27": "Trace Number Error",
    "R28": "Routing Number Check Digit Error",
    "R29": "Corporate Customer Advises Not Authorized",
    "R31": "Permissible Return Entry (CCD and CTX only)",
    "R33": "Return of XCK Entry",
}

# a return keeps the account type and direction of the original: 22/23 -> 21, 27/28 -> 26, ...
_RETURN_TRANSACTION_CODE: dict[int, int] = {
    22: 21,
    23: 21,
    27: 26,
    28: 26,
    32: 31,
    33: 31,
    37: 36,
    38: 36,
}


def return_transaction_code(original_code: int) -> int:
    """The transaction code of the return of an entry with `original_code`."""
    try:
        return _RETURN_TRANSACTION_CODE[original_code]
    except KeyError:
        raise NachaError(
            ErrorCode.INVALID_TRANSACTION_CODE,
            f"entries with transaction code {original_code} cannot be returned",
        ) from None


def build_return_entry(
    original: EntryDetail,
    return_code: str,
    *,
    trace_sequence: int,
    date_of_death: date | None = None,
    addenda_information: str = "",
) -> EntryDetail:
    """The return entry an RDFI sends for `original`, with its type 99 addenda.

    The return travels back: its Receiving DFI is the original ODFI (read from the original
    trace number, check digit recomputed), its trace number is the RDFI's own (original
    RDFI identification + `trace_sequence`), and amount, account, names and discretionary
    data are copied. `date_of_death` is only meaningful for R14/R15.
    """
    if return_code not in RETURN_REASON_CODES:
        raise NachaError(ErrorCode.INVALID_RETURN_CODE, f"unknown return code {return_code!r}")
    if not routing_number_valid(original.receiving_dfi_routing):
        raise NachaError(
            ErrorCode.BAD_ROUTING_CHECK_DIGIT,
            f"original RDFI routing {original.receiving_dfi_routing!r} is invalid",
        )
    if not 0 <= trace_sequence <= 9_999_999:
        raise NachaError(ErrorCode.FIELD_OVERFLOW, f"trace sequence {trace_sequence} > 7 digits")
    odfi = original.trace_number[:8]
    rdfi = original.receiving_dfi_routing[:8]
    return replace(
        original,
        transaction_code=return_transaction_code(original.transaction_code),
        receiving_dfi_routing=odfi + routing_check_digit(odfi),
        addenda=None,
        trace_number=f"{rdfi}{trace_sequence:07d}",
        return_addenda=ReturnAddenda(
            return_reason_code=return_code,
            original_entry_trace_number=original.trace_number,
            original_receiving_dfi=rdfi,
            date_of_death=date_of_death,
            addenda_information=addenda_information,
        ),
    )


def build_return_batch(
    original: Batch,
    returns: Sequence[EntryDetail],
    *,
    batch_number: int,
    effective_entry_date: date,
) -> Batch:
    """A batch carrying `returns` (from `build_return_entry`) of entries of `original`.

    Company fields and SEC code are the original batch's; the originating DFI is the
    returning RDFI, taken from the return trace numbers, which must therefore all agree.
    """
    if not returns:
        raise NachaError(ErrorCode.EMPTY_BATCH, "a return batch needs at least one return")
    rdfis = {entry.trace_number[:8] for entry in returns}
    if len(rdfis) != 1:
        raise NachaError(
            ErrorCode.TRACE_NUMBER_MISMATCH,
            f"returns come from several RDFIs {sorted(rdfis)}; one batch per RDFI",
        )
    if not all(is_return(entry.transaction_code) for entry in returns):
        raise NachaError(ErrorCode.INVALID_TRANSACTION_CODE, "not every entry is a return")
    return replace(
        original,
        effective_entry_date=effective_entry_date,
        originating_dfi=rdfis.pop(),
        batch_number=batch_number,
        entries=tuple(sorted(returns, key=lambda entry: entry.trace_number)),
        settlement_date="",
        message_authentication_code="",
    )
