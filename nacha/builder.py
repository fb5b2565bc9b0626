"""Build a NACHA file from a header and batches: controls, hashes, blocking all derived."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from nacha.errors import ErrorCode, NachaError
from nacha.parser import parse_file
from nacha.records import (
    ADDENDA_LAYOUT,
    ADDENDA_TYPE_CHANGE,
    ADDENDA_TYPE_PAYMENT,
    ADDENDA_TYPE_RETURN,
    BATCH_CONTROL_LAYOUT,
    BATCH_HEADER_LAYOUT,
    BLOCKING_FACTOR,
    CHANGE_ADDENDA_LAYOUT,
    ENTRY_DETAIL_LAYOUT,
    ENTRY_HASH_MODULUS,
    FILE_CONTROL_LAYOUT,
    FILE_HEADER_LAYOUT,
    PADDING_RECORD,
    RETURN_ADDENDA_LAYOUT,
    Batch,
    EntryDetail,
    FieldValue,
    FileHeader,
    Layout,
    RunningTotals,
    format_yymmdd,
    render,
)


def trace_number(odfi: str, sequence: int) -> str:
    """A trace number: the 8-digit ODFI identification then a 7-digit sequence number."""
    if len(odfi) != 8 or not odfi.isascii() or not odfi.isdigit():
        raise NachaError(ErrorCode.NON_NUMERIC_FIELD, f"ODFI must be 8 digits, got {odfi!r}")
    if not 0 <= sequence <= 9_999_999:
        raise NachaError(ErrorCode.FIELD_OVERFLOW, f"sequence {sequence} does not fit 7 digits")
    return f"{odfi}{sequence:07d}"


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def emit(self, layout: Layout, values: dict[str, FieldValue]) -> None:
        values["record_type_code"] = layout.record_type
        self.lines.append(render(layout, values, line=len(self.lines) + 1))

    @property
    def next_line(self) -> int:
        return len(self.lines) + 1


def build_file(header: FileHeader, batches: Sequence[Batch], *, line_ending: str = "\n") -> str:
    """The NACHA file for `header` and `batches`, records separated (and ended) by `line_ending`.

    Batch and file controls (counts, entry hash, debit/credit totals), the block count and
    the '9' padding to a multiple of 10 records are computed here. The result is then run
    through `parse_file`, so anything a receiving bank would refuse (bad check digits, trace
    numbers out of order, a debit in a credits-only batch, ...) raises `NachaError` here, with
    the line number the offending record has in the output.
    """
    if line_ending not in ("\n", "\r\n"):
        raise ValueError("line_ending must be '\\n' or '\\r\\n'")
    out = _Writer()
    _write_file_header(out, header)
    file_totals = RunningTotals()
    for batch in batches:
        file_totals.absorb(_write_batch(out, batch))

    record_count = len(out.lines) + 1  # with the file control about to be written
    block_count = -(-record_count // BLOCKING_FACTOR)
    out.emit(
        FILE_CONTROL_LAYOUT,
        {
            "batch_count": len(batches),
            "block_count": block_count,
            "entry_addenda_count": file_totals.entry_addenda_count,
            "entry_hash": file_totals.entry_hash % ENTRY_HASH_MODULUS,
            "total_debit_entry_dollar_amount_in_file": file_totals.debit_cents,
            "total_credit_entry_dollar_amount_in_file": file_totals.credit_cents,
        },
    )
    out.lines.extend([PADDING_RECORD] * (block_count * BLOCKING_FACTOR - record_count))
    text = line_ending.join(out.lines) + line_ending
    parse_file(text)
    return text


def _write_file_header(out: _Writer, header: FileHeader) -> None:
    # minute precision is all the format holds; seconds are dropped, not rounded
    created = header.file_creation
    if not isinstance(created, datetime):
        # a bare date would silently be written as midnight
        raise NachaError(
            ErrorCode.INVALID_DATE,
            f"file_creation must be a datetime, got {created!r}",
            line=1,
            record_type="1",
            field="file_creation",
        )
    out.emit(
        FILE_HEADER_LAYOUT,
        {
            "priority_code": "01",
            "immediate_destination": header.immediate_destination,
            "immediate_origin": header.immediate_origin,
            "file_creation_date": format_yymmdd(
                created.date(), field="file_creation_date", record_type="1", line=1
            ),
            "file_creation_time": created.strftime("%H%M"),
            "file_id_modifier": header.file_id_modifier,
            "record_size": "094",
            "blocking_factor": f"{BLOCKING_FACTOR:02d}",
            "format_code": "1",
            "immediate_destination_name": header.destination_name,
            "immediate_origin_name": header.origin_name,
            "reference_code": header.reference_code,
        },
    )


def _write_batch(out: _Writer, batch: Batch) -> RunningTotals:
    out.emit(
        BATCH_HEADER_LAYOUT,
        {
            "service_class_code": batch.service_class_code,
            "company_name": batch.company_name,
            "company_discretionary_data": batch.company_discretionary_data,
            "company_identification": batch.company_identification,
            "standard_entry_class_code": batch.sec_code,
            "company_entry_description": batch.company_entry_description,
            "company_descriptive_date": batch.company_descriptive_date,
            "effective_entry_date": format_yymmdd(
                batch.effective_entry_date,
                field="effective_entry_date",
                record_type="5",
                line=out.next_line,
            ),
            "settlement_date": batch.settlement_date,
            "originator_status_code": batch.originator_status_code,
            "originating_dfi_identification": batch.originating_dfi,
            "batch_number": batch.batch_number,
        },
    )
    totals = RunningTotals()
    for entry in batch.entries:
        _write_entry(out, entry)
        totals.add(entry)
    out.emit(
        BATCH_CONTROL_LAYOUT,
        {
            "service_class_code": batch.service_class_code,
            "entry_addenda_count": totals.entry_addenda_count,
            "entry_hash": totals.entry_hash % ENTRY_HASH_MODULUS,
            "total_debit_entry_dollar_amount": totals.debit_cents,
            "total_credit_entry_dollar_amount": totals.credit_cents,
            "company_identification": batch.company_identification,
            "message_authentication_code": batch.message_authentication_code,
            "originating_dfi_identification": batch.originating_dfi,
            "batch_number": batch.batch_number,
        },
    )
    return totals


def _write_entry(out: _Writer, entry: EntryDetail) -> None:
    if entry.addenda_count > 1:
        raise NachaError(
            ErrorCode.ADDENDA_CONFLICT,
            "an entry carries one addenda: a 05, a return (99) or a change (98)",
            line=out.next_line,
            record_type="6",
        )
    routing = entry.receiving_dfi_routing
    if not isinstance(routing, str) or len(routing) != 9:
        raise NachaError(
            ErrorCode.NON_NUMERIC_FIELD,
            f"receiving DFI routing must be 9 digits, got {routing!r}",
            line=out.next_line,
            record_type="6",
            field="receiving_dfi_identification",
        )
    out.emit(
        ENTRY_DETAIL_LAYOUT,
        {
            "transaction_code": entry.transaction_code,
            "receiving_dfi_identification": routing[:8],
            "check_digit": routing[8:],
            "dfi_account_number": entry.dfi_account_number,
            "amount": entry.amount_cents,
            "individual_identification_number": entry.individual_id,
            "individual_name": entry.individual_name,
            "discretionary_data": entry.discretionary_data,
            "addenda_record_indicator": "1" if entry.addenda_count else "0",
            "trace_number": entry.trace_number,
        },
    )
    if entry.addenda is not None:
        out.emit(
            ADDENDA_LAYOUT,
            {
                "addenda_type_code": ADDENDA_TYPE_PAYMENT,
                "payment_related_information": entry.addenda,
                # PPD/CCD allow one addenda, so its sequence number is always 1
                "addenda_sequence_number": 1,
                "entry_detail_sequence_number": entry.trace_number[-7:],
            },
        )
    ret = entry.return_addenda
    if ret is not None:
        death = ret.date_of_death
        out.emit(
            RETURN_ADDENDA_LAYOUT,
            {
                "addenda_type_code": ADDENDA_TYPE_RETURN,
                "return_reason_code": ret.return_reason_code,
                "original_entry_trace_number": ret.original_entry_trace_number,
                "date_of_death": ""
                if death is None
                else format_yymmdd(
                    death, field="date_of_death", record_type="7", line=out.next_line
                ),
                "original_receiving_dfi_identification": ret.original_receiving_dfi,
                "addenda_information": ret.addenda_information,
                "trace_number": entry.trace_number,
            },
        )
    change = entry.change_addenda
    if change is not None:
        out.emit(
            CHANGE_ADDENDA_LAYOUT,
            {
                "addenda_type_code": ADDENDA_TYPE_CHANGE,
                "change_code": change.change_code,
                "original_entry_trace_number": change.original_entry_trace_number,
                "original_receiving_dfi_identification": change.original_receiving_dfi,
                "corrected_data": change.corrected_data,
                "trace_number": entry.trace_number,
            },
        )
