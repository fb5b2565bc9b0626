"""Notifications of change (NOC): an RDFI's COR entry telling the originator to correct the
receiver's details for future entries (addenda type 98, change codes C01-C07)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from nacha.errors import ErrorCode, NachaError
from nacha.records import ChangeAddenda, EntryDetail
from nacha.returns import build_return_entry

# the change codes of the NACHA Operating Rules (Appendix Five), with what they correct
CHANGE_CODES: dict[str, str] = {
    "C01": "Incorrect DFI Account Number",
    "C02": "Incorrect Routing Number",
    "C03": "Incorrect Routing Number and Incorrect DFI Account Number",
    "C04": "Incorrect Individual Name / Receiving Company Name",
    "C05": "Incorrect Transaction Code",
    "C06": "Incorrect DFI Account Number and Incorrect Transaction Code",
    "C07": "Incorrect Routing Number, Incorrect DFI Account Number, and Incorrect Transaction Code",
}


@dataclass(frozen=True)
class Correction:
    """What a change code's Corrected Data field says, by field (None: not corrected)."""

    routing_number: str | None = None
    account_number: str | None = None
    transaction_code: int | None = None
    name: str | None = None


def _code(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


def read_corrected_data(change_code: str, data: str) -> Correction:
    """The corrections in a COR addenda's 29-character Corrected Data, laid out per code:
    C01 account (1-17); C02 routing (1-9); C03 routing (1-9), account (13-29); C04 name
    (1-22); C05 transaction code (1-2); C06 account (1-17), transaction code (22-23); C07
    routing (1-9), account (10-26), transaction code (27-28)."""
    data = data.ljust(29)
    if change_code == "C01":
        return Correction(account_number=data[0:17].strip())
    if change_code == "C02":
        return Correction(routing_number=data[0:9].strip())
    if change_code == "C03":
        return Correction(routing_number=data[0:9].strip(), account_number=data[12:29].strip())
    if change_code == "C04":
        return Correction(name=data[0:22].strip())
    if change_code == "C05":
        return Correction(transaction_code=_code(data[0:2]))
    if change_code == "C06":
        return Correction(account_number=data[0:17].strip(), transaction_code=_code(data[21:23]))
    if change_code == "C07":
        return Correction(
            routing_number=data[0:9].strip(),
            account_number=data[9:26].strip(),
            transaction_code=_code(data[26:28]),
        )
    raise ValueError(f"unknown change code {change_code!r}")


def build_change_entry(
    original: EntryDetail, change_code: str, corrected_data: str, *, trace_sequence: int
) -> EntryDetail:
    """The COR entry an RDFI sends for `original`: zero amount, the return transaction code
    of the original's account type (21 for 22/23, 31 for 32/33, ...), travelling back to the
    ODFI like a return, with a type 98 addenda carrying the change."""
    if change_code not in CHANGE_CODES:
        raise NachaError(ErrorCode.INVALID_CHANGE_CODE, f"unknown change code {change_code!r}")
    # a return entry's routing, trace and transaction code, with the change instead of the R-code
    returned = build_return_entry(original, "R01", trace_sequence=trace_sequence)
    return replace(
        returned,
        amount_cents=0,
        return_addenda=None,
        change_addenda=ChangeAddenda(
            change_code=change_code,
            original_entry_trace_number=original.trace_number,
            original_receiving_dfi=original.receiving_dfi_routing[:8],
            corrected_data=corrected_data[:29],
        ),
    )
