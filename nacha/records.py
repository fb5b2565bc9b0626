"""NACHA record layouts (positions exactly as in the NACHA Operating Rules, Appendix Three) and
the dataclasses a file maps to.

Positions are 1-based and inclusive, as printed in the Rules, so each layout can be checked
against the published tables by eye.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from nacha.errors import ErrorCode, NachaError

RECORD_SIZE = 94
BLOCKING_FACTOR = 10
PADDING_RECORD = "9" * RECORD_SIZE
MAX_AMOUNT_CENTS = 9_999_999_999  # 10-digit amount field: $99,999,999.99
ENTRY_HASH_MODULUS = 10**10  # the hash fields keep the low-order 10 digits

# record type codes
FILE_HEADER = "1"
BATCH_HEADER = "5"
ENTRY_DETAIL = "6"
ADDENDA = "7"
BATCH_CONTROL = "8"
FILE_CONTROL = "9"
RECORD_TYPES = frozenset(
    {FILE_HEADER, BATCH_HEADER, ENTRY_DETAIL, ADDENDA, BATCH_CONTROL, FILE_CONTROL}
)

# service class codes
MIXED = 200
CREDITS_ONLY = 220
DEBITS_ONLY = 225
SERVICE_CLASS_CODES = frozenset({MIXED, CREDITS_ONLY, DEBITS_ONLY})

# COR: an RDFI's notification of change (automated NOC entries, addenda type 98)
SEC_CODES = frozenset({"PPD", "CCD", "COR"})

# transaction codes: 2x checking (demand), 3x savings
CHECKING_RETURN_CREDIT = 21
CHECKING_CREDIT = 22
CHECKING_CREDIT_PRENOTE = 23
CHECKING_RETURN_DEBIT = 26
CHECKING_DEBIT = 27
CHECKING_DEBIT_PRENOTE = 28
SAVINGS_RETURN_CREDIT = 31
SAVINGS_CREDIT = 32
SAVINGS_CREDIT_PRENOTE = 33
SAVINGS_RETURN_DEBIT = 36
SAVINGS_DEBIT = 37
SAVINGS_DEBIT_PRENOTE = 38
PRENOTE_CODES = frozenset({23, 28, 33, 38})
RETURN_CODES = frozenset({21, 26, 31, 36})
TRANSACTION_CODES = frozenset({22, 27, 32, 37}) | PRENOTE_CODES | RETURN_CODES

ADDENDA_TYPE_PAYMENT = "05"
ADDENDA_TYPE_RETURN = "99"
ADDENDA_TYPE_CHANGE = "98"

_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_FILE_ID_MODIFIER = re.compile(r"[A-Z0-9]")
_JULIAN_DAY = re.compile(r"[0-9]{3}")


def is_credit(transaction_code: int) -> bool:
    """Whether entries with this code count towards the credit totals.

    The Rules' convention: second digit 0-4 is a credit (incl. 21/31, the return of a
    credit), 5-9 a debit.
    """
    return transaction_code % 10 <= 4


def is_debit(transaction_code: int) -> bool:
    """Whether entries with this code count towards the debit totals."""
    return not is_credit(transaction_code)


def is_prenote(transaction_code: int) -> bool:
    """Zero-dollar prenotification entries (23/28/33/38)."""
    return transaction_code in PRENOTE_CODES


def is_return(transaction_code: int) -> bool:
    """Automated return entries (21/26/31/36), which carry a type 99 addenda."""
    return transaction_code in RETURN_CODES


# --------------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True, slots=True)
class FileHeader:
    """The File Header Record (type 1), minus the constants (priority 01, size 094, ...).

    `immediate_destination` and `immediate_origin` are 9-digit routing numbers; the file
    carries them as a blank followed by the nine digits. `file_creation` is written with
    minute precision (seconds are dropped) as the wall-clock time it holds; parsing gives a
    naive datetime.
    """

    immediate_destination: str
    immediate_origin: str
    destination_name: str
    origin_name: str
    file_creation: datetime
    file_id_modifier: str = "A"
    reference_code: str = ""


@dataclass(frozen=True, slots=True)
class ReturnAddenda:
    """The Addenda Record for a return entry (type 7, addenda type 99).

    Its own trace number is always the return entry's, so it is not stored twice.
    """

    return_reason_code: str
    original_entry_trace_number: str
    original_receiving_dfi: str
    date_of_death: date | None = None
    addenda_information: str = ""


@dataclass(frozen=True, slots=True)
class ChangeAddenda:
    """The Addenda Record of a notification of change (type 7, addenda type 98): what to
    correct (`change_code` C01-C07, `corrected_data` laid out per code) in the entry with
    `original_entry_trace_number`. Its own trace number is the COR entry's."""

    change_code: str
    original_entry_trace_number: str
    original_receiving_dfi: str
    corrected_data: str


@dataclass(frozen=True, slots=True)
class EntryDetail:
    """An Entry Detail Record (type 6) for PPD or CCD, with its optional addenda.

    `receiving_dfi_routing` is the full 9-digit routing number (the record splits it into the
    8-digit DFI identification and the check digit). For CCD, `individual_id` and
    `individual_name` hold the Identification Number and the Receiving Company Name, which
    occupy the same positions. `addenda` is the 80-character Payment Related Information of a
    type 05 addenda; `return_addenda` is set only on return entries (codes 21/26/31/36).
    """

    transaction_code: int
    receiving_dfi_routing: str
    dfi_account_number: str
    amount_cents: int
    individual_id: str
    individual_name: str
    discretionary_data: str
    addenda: str | None
    trace_number: str
    return_addenda: ReturnAddenda | None = None
    # set only on a notification of change (COR entry, codes 21/26/31/36 with amount 0)
    change_addenda: ChangeAddenda | None = None

    @property
    def addenda_count(self) -> int:
        """How many addenda records follow this entry in the file (0 or 1)."""
        return (
            int(self.addenda is not None)
            + int(self.return_addenda is not None)
            + int(self.change_addenda is not None)
        )


@dataclass(frozen=True, slots=True)
class Batch:
    """A Company/Batch Header (type 5) with its entries; the Batch Control (type 8) is derived.

    `originating_dfi` is the 8-digit ODFI identification (routing number without its check
    digit). `settlement_date` (Julian day) is left blank by originators and filled in by the
    ACH Operator; it is kept so a parsed operator file round-trips. `entries` is stored as a
    tuple whatever sequence is passed, so equality does not depend on list vs tuple.
    """

    service_class_code: int
    company_name: str
    company_identification: str
    sec_code: str
    company_entry_description: str
    effective_entry_date: date
    originating_dfi: str
    batch_number: int
    entries: Sequence[EntryDetail]
    company_discretionary_data: str = ""
    company_descriptive_date: str = ""
    settlement_date: str = ""
    originator_status_code: str = "1"
    message_authentication_code: str = ""

    def __post_init__(self) -> None:
        # frozen: object.__setattr__ is the sanctioned way to normalise in __post_init__
        object.__setattr__(self, "entries", tuple(self.entries))


@dataclass(frozen=True, slots=True)
class NachaFile:
    """A parsed file: the header and its batches (controls and padding are implied)."""

    header: FileHeader
    batches: Sequence[Batch]

    def __post_init__(self) -> None:
        object.__setattr__(self, "batches", tuple(self.batches))


@dataclass(slots=True)
class RunningTotals:
    """Counts, entry hash and debit/credit sums, as the batch and file controls carry them."""

    entry_addenda_count: int = 0
    entry_hash: int = 0
    debit_cents: int = 0
    credit_cents: int = 0

    def add(self, entry: EntryDetail) -> None:
        """Account for one entry and its addenda."""
        self.entry_addenda_count += 1 + entry.addenda_count
        # only the 8-digit DFI identification is hashed, never the check digit
        self.entry_hash += int(entry.receiving_dfi_routing[:8])
        if is_credit(entry.transaction_code):
            self.credit_cents += entry.amount_cents
        else:
            self.debit_cents += entry.amount_cents

    def absorb(self, other: RunningTotals) -> None:
        """Add a whole batch's totals (for the file control)."""
        self.entry_addenda_count += other.entry_addenda_count
        self.entry_hash += other.entry_hash
        self.debit_cents += other.debit_cents
        self.credit_cents += other.credit_cents


# ------------------------------------------------------------------------------------ layouts


class Kind(StrEnum):
    """How a field is justified, filled and validated."""

    NUMERIC = "N"  # an int, right-justified, zero-filled
    DIGITS = "D"  # a string of exactly `width` ASCII digits (routing/trace numbers, dates)
    ALPHANUMERIC = "A"  # printable ASCII, left-justified, space-filled
    BLANK = "B"  # reserved: always spaces


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a record layout, positions 1-based and inclusive as in the Rules."""

    name: str
    start: int
    end: int
    kind: Kind

    @property
    def width(self) -> int:
        """Number of characters the field occupies."""
        return self.end - self.start + 1


@dataclass(frozen=True, slots=True)
class Layout:
    """A record layout: its record type code and fields covering positions 1-94."""

    record_type: str
    name: str
    fields: tuple[Field, ...]

    def __post_init__(self) -> None:
        # a gap or overlap would silently shift every later field, so refuse at import
        position = 1
        for f in self.fields:
            if f.start != position or f.end < f.start:
                raise RuntimeError(f"{self.name}: field {f.name} does not start at {position}")
            position = f.end + 1
        if position != RECORD_SIZE + 1:
            raise RuntimeError(f"{self.name}: fields cover {position - 1} characters, not 94")


N, D, A, B = Kind.NUMERIC, Kind.DIGITS, Kind.ALPHANUMERIC, Kind.BLANK

FILE_HEADER_LAYOUT = Layout(
    FILE_HEADER,
    "file header",
    (
        Field("record_type_code", 1, 1, D),
        Field("priority_code", 2, 3, D),
        # Immediate Destination/Origin are 10 characters: a blank then the routing number
        Field("immediate_destination_blank", 4, 4, B),
        Field("immediate_destination", 5, 13, D),
        Field("immediate_origin_blank", 14, 14, B),
        Field("immediate_origin", 15, 23, D),
        Field("file_creation_date", 24, 29, D),
        Field("file_creation_time", 30, 33, D),
        Field("file_id_modifier", 34, 34, A),
        Field("record_size", 35, 37, D),
        Field("blocking_factor", 38, 39, D),
        Field("format_code", 40, 40, D),
        Field("immediate_destination_name", 41, 63, A),
        Field("immediate_origin_name", 64, 86, A),
        Field("reference_code", 87, 94, A),
    ),
)

BATCH_HEADER_LAYOUT = Layout(
    BATCH_HEADER,
    "batch header",
    (
        Field("record_type_code", 1, 1, D),
        Field("service_class_code", 2, 4, N),
        Field("company_name", 5, 20, A),
        Field("company_discretionary_data", 21, 40, A),
        Field("company_identification", 41, 50, A),
        Field("standard_entry_class_code", 51, 53, A),
        Field("company_entry_description", 54, 63, A),
        Field("company_descriptive_date", 64, 69, A),
        Field("effective_entry_date", 70, 75, D),
        Field("settlement_date", 76, 78, A),
        Field("originator_status_code", 79, 79, D),
        Field("originating_dfi_identification", 80, 87, D),
        Field("batch_number", 88, 94, N),
    ),
)

ENTRY_DETAIL_LAYOUT = Layout(
    ENTRY_DETAIL,
    "entry detail",
    (
        Field("record_type_code", 1, 1, D),
        Field("transaction_code", 2, 3, N),
        Field("receiving_dfi_identification", 4, 11, D),
        Field("check_digit", 12, 12, D),
        Field("dfi_account_number", 13, 29, A),
        Field("amount", 30, 39, N),
        Field("individual_identification_number", 40, 54, A),
        Field("individual_name", 55, 76, A),
        Field("discretionary_data", 77, 78, A),
        Field("addenda_record_indicator", 79, 79, D),
        Field("trace_number", 80, 94, D),
    ),
)

ADDENDA_LAYOUT = Layout(
    ADDENDA,
    "addenda (05)",
    (
        Field("record_type_code", 1, 1, D),
        Field("addenda_type_code", 2, 3, D),
        Field("payment_related_information", 4, 83, A),
        Field("addenda_sequence_number", 84, 87, N),
        Field("entry_detail_sequence_number", 88, 94, D),
    ),
)

RETURN_ADDENDA_LAYOUT = Layout(
    ADDENDA,
    "return addenda (99)",
    (
        Field("record_type_code", 1, 1, D),
        Field("addenda_type_code", 2, 3, D),
        Field("return_reason_code", 4, 6, A),
        Field("original_entry_trace_number", 7, 21, D),
        Field("date_of_death", 22, 27, A),
        Field("original_receiving_dfi_identification", 28, 35, D),
        Field("addenda_information", 36, 79, A),
        Field("trace_number", 80, 94, D),
    ),
)

CHANGE_ADDENDA_LAYOUT = Layout(
    ADDENDA,
    "change addenda (98)",
    (
        Field("record_type_code", 1, 1, D),
        Field("addenda_type_code", 2, 3, D),
        Field("change_code", 4, 6, A),
        Field("original_entry_trace_number", 7, 21, D),
        Field("reserved", 22, 27, B),
        Field("original_receiving_dfi_identification", 28, 35, D),
        Field("corrected_data", 36, 64, A),
        Field("reserved_2", 65, 79, B),
        Field("trace_number", 80, 94, D),
    ),
)

BATCH_CONTROL_LAYOUT = Layout(
    BATCH_CONTROL,
    "batch control",
    (
        Field("record_type_code", 1, 1, D),
        Field("service_class_code", 2, 4, N),
        Field("entry_addenda_count", 5, 10, N),
        Field("entry_hash", 11, 20, N),
        Field("total_debit_entry_dollar_amount", 21, 32, N),
        Field("total_credit_entry_dollar_amount", 33, 44, N),
        Field("company_identification", 45, 54, A),
        Field("message_authentication_code", 55, 73, A),
        Field("reserved", 74, 79, B),
        Field("originating_dfi_identification", 80, 87, D),
        Field("batch_number", 88, 94, N),
    ),
)

FILE_CONTROL_LAYOUT = Layout(
    FILE_CONTROL,
    "file control",
    (
        Field("record_type_code", 1, 1, D),
        Field("batch_count", 2, 7, N),
        Field("block_count", 8, 13, N),
        Field("entry_addenda_count", 14, 21, N),
        Field("entry_hash", 22, 31, N),
        Field("total_debit_entry_dollar_amount_in_file", 32, 43, N),
        Field("total_credit_entry_dollar_amount_in_file", 44, 55, N),
        Field("reserved", 56, 94, B),
    ),
)

LAYOUTS: tuple[Layout, ...] = (
    FILE_HEADER_LAYOUT,
    BATCH_HEADER_LAYOUT,
    ENTRY_DETAIL_LAYOUT,
    ADDENDA_LAYOUT,
    RETURN_ADDENDA_LAYOUT,
    CHANGE_ADDENDA_LAYOUT,
    BATCH_CONTROL_LAYOUT,
    FILE_CONTROL_LAYOUT,
)

# ---------------------------------------------------------------------- rendering and slicing

FieldValue = str | int


def render(layout: Layout, values: Mapping[str, FieldValue], *, line: int | None = None) -> str:
    """Format one record; every non-blank field of `layout` must be in `values`.

    NUMERIC fields take an int (never a float or bool: amounts are integer cents), DIGITS
    fields a string of exactly the field's width, ALPHANUMERIC fields a printable-ASCII string
    no longer than the field. Raises `NachaError` naming the offending field.
    """
    parts: list[str] = []
    for f in layout.fields:
        if f.kind is B:
            parts.append(" " * f.width)
            continue
        value = values[f.name]

        def fail(code: ErrorCode, detail: str, f: Field = f) -> NachaError:
            return NachaError(code, detail, line=line, record_type=layout.record_type, field=f.name)

        if f.kind is N:
            if not isinstance(value, int) or isinstance(value, bool):
                raise fail(ErrorCode.NON_NUMERIC_FIELD, f"expected an int, got {value!r}")
            if value < 0:
                raise fail(ErrorCode.INVALID_FIELD, f"negative value {value}")
            text = str(value)
            if len(text) > f.width:
                raise fail(ErrorCode.FIELD_OVERFLOW, f"{value} does not fit in {f.width} digits")
            parts.append(text.rjust(f.width, "0"))
        elif f.kind is D:
            if not isinstance(value, str) or re.fullmatch(f"[0-9]{{{f.width}}}", value) is None:
                raise fail(ErrorCode.NON_NUMERIC_FIELD, f"expected {f.width} digits, got {value!r}")
            parts.append(value)
        else:
            if not isinstance(value, str):
                raise fail(ErrorCode.INVALID_FIELD, f"expected a string, got {value!r}")
            if _PRINTABLE_ASCII.fullmatch(value) is None:
                raise fail(ErrorCode.INVALID_CHARACTER, f"not printable ASCII: {value!r}")
            if len(value) > f.width:
                raise fail(ErrorCode.FIELD_OVERFLOW, f"{value!r} is longer than {f.width}")
            parts.append(value.ljust(f.width))
    return "".join(parts)


class RawRecord:
    """One 94-character line sliced by a layout, every field checked against its kind.

    Alphanumeric values come back with trailing spaces stripped (they are padding).
    """

    def __init__(self, layout: Layout, text: str, line: int) -> None:
        self.layout = layout
        self.line = line
        self._values: dict[str, str] = {}
        for f in layout.fields:
            raw = text[f.start - 1 : f.end]
            if f.kind in (N, D):
                if re.fullmatch("[0-9]+", raw) is None:
                    raise self.error(ErrorCode.NON_NUMERIC_FIELD, f"{raw!r} is not numeric", f.name)
                self._values[f.name] = raw
            elif f.kind is A:
                if _PRINTABLE_ASCII.fullmatch(raw) is None:
                    raise self.error(ErrorCode.INVALID_CHARACTER, f"{raw!r}", f.name)
                self._values[f.name] = raw.rstrip(" ")
            elif raw.strip(" "):
                raise self.error(ErrorCode.INVALID_FIELD, f"reserved but holds {raw!r}", f.name)

    def error(self, code: ErrorCode, detail: str, field: str | None = None) -> NachaError:
        """A `NachaError` located at this record."""
        return NachaError(
            code, detail, line=self.line, record_type=self.layout.record_type, field=field
        )

    def text(self, name: str) -> str:
        """An alphanumeric field, trailing padding removed."""
        return self._values[name]

    def digits(self, name: str) -> str:
        """A numeric field as its digit string (leading zeros kept)."""
        return self._values[name]

    def number(self, name: str) -> int:
        """A numeric field as an int."""
        return int(self._values[name])

    def required_text(self, name: str) -> str:
        """An alphanumeric field the Rules mark mandatory: it must not be blank."""
        value = self._values[name]
        if not value.strip():
            raise self.error(ErrorCode.MISSING_FIELD, "mandatory field is blank", name)
        return value

    def yymmdd(self, name: str) -> date:
        """A YYMMDD date field (years 2000-2099)."""
        raw = self._values[name]
        try:
            return date(2000 + int(raw[0:2]), int(raw[2:4]), int(raw[4:6]))
        except ValueError:
            raise self.error(
                ErrorCode.INVALID_DATE, f"{raw!r} is not a YYMMDD date", name
            ) from None


def format_yymmdd(value: date, *, field: str, record_type: str, line: int | None) -> str:
    """Render a date as YYMMDD; only 2000-2099 so the two-digit year reads back unambiguously."""
    if not 2000 <= value.year <= 2099:
        raise NachaError(
            ErrorCode.INVALID_DATE,
            f"{value} is outside 2000-2099",
            line=line,
            record_type=record_type,
            field=field,
        )
    return value.strftime("%y%m%d")


def file_id_modifier_valid(value: str) -> bool:
    """File ID Modifier: one upper-case letter or digit."""
    return _FILE_ID_MODIFIER.fullmatch(value) is not None


def settlement_date_valid(value: str) -> bool:
    """Settlement Date: blank (originator) or a Julian day 001-366 (set by the ACH Operator)."""
    return value == "" or (_JULIAN_DAY.fullmatch(value) is not None and 1 <= int(value) <= 366)
