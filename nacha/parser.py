"""Parse a NACHA file and validate it record by record, the way a receiving bank does.

The first problem found stops the parse with a `NachaError` carrying the physical line, the
record type and a machine code; problems are found in line order, except the block checks
(record count, padding, block count), which need the whole file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from enum import Enum

from nacha.changes import CHANGE_CODES
from nacha.errors import ErrorCode, NachaError
from nacha.records import (
    ADDENDA,
    ADDENDA_LAYOUT,
    ADDENDA_TYPE_CHANGE,
    ADDENDA_TYPE_PAYMENT,
    ADDENDA_TYPE_RETURN,
    BATCH_CONTROL,
    BATCH_CONTROL_LAYOUT,
    BATCH_HEADER,
    BATCH_HEADER_LAYOUT,
    BLOCKING_FACTOR,
    CHANGE_ADDENDA_LAYOUT,
    CREDITS_ONLY,
    DEBITS_ONLY,
    ENTRY_DETAIL,
    ENTRY_DETAIL_LAYOUT,
    ENTRY_HASH_MODULUS,
    FILE_CONTROL,
    FILE_CONTROL_LAYOUT,
    FILE_HEADER,
    FILE_HEADER_LAYOUT,
    PADDING_RECORD,
    RECORD_SIZE,
    RECORD_TYPES,
    RETURN_ADDENDA_LAYOUT,
    SEC_CODES,
    SERVICE_CLASS_CODES,
    TRANSACTION_CODES,
    Batch,
    ChangeAddenda,
    EntryDetail,
    FileHeader,
    NachaFile,
    RawRecord,
    ReturnAddenda,
    RunningTotals,
    file_id_modifier_valid,
    is_credit,
    is_prenote,
    is_return,
    settlement_date_valid,
)
from nacha.returns import RETURN_REASON_CODES
from nacha.routing import routing_number_valid

ORIGINATOR_STATUS_CODES = frozenset({"0", "1", "2"})


def parse_file(text: str) -> NachaFile:
    """Parse and validate a whole NACHA file; raise `NachaError` on the first problem.

    Records are separated by '\\n' ('\\r\\n' is tolerated); one trailing line ending is
    ignored. Returns the same dataclasses `build_file` takes, so build -> parse round-trips.
    """
    return _Parser(_split_records(text)).run()


def _split_records(text: str) -> list[str]:
    if text.endswith("\n"):
        text = text[:-1]
    if text.endswith("\r"):
        text = text[:-1]
    if not text:
        return []
    return [line.removesuffix("\r") for line in text.split("\n")]


class _State(Enum):
    START = "the start of the file"
    FILE_HEADER = "a file header"
    BATCH_HEADER = "a batch header"
    ENTRY = "an entry detail"
    ADDENDA = "an addenda"
    BATCH_CONTROL = "a batch control"
    FILE_CONTROL = "the file control"


# which record types may follow each state
_FOLLOWERS: dict[_State, frozenset[str]] = {
    _State.START: frozenset({FILE_HEADER}),
    # a file control straight after the header is refused as NO_BATCHES by _out_of_order
    _State.FILE_HEADER: frozenset({BATCH_HEADER}),
    _State.BATCH_HEADER: frozenset({ENTRY_DETAIL}),
    _State.ENTRY: frozenset({ENTRY_DETAIL, ADDENDA, BATCH_CONTROL}),
    _State.ADDENDA: frozenset({ENTRY_DETAIL, BATCH_CONTROL}),
    _State.BATCH_CONTROL: frozenset({BATCH_HEADER, FILE_CONTROL}),
}


@dataclass(slots=True)
class _PendingEntry:
    # an entry is only complete once we know whether an addenda follows it
    entry: EntryDetail
    line: int
    indicator: str
    addenda: str | None = None
    return_addenda: ReturnAddenda | None = None
    change_addenda: ChangeAddenda | None = None


@dataclass(slots=True)
class _OpenBatch:
    # the header's fields as a Batch without entries; completed at its batch control
    template: Batch
    entries: list[EntryDetail] = field(default_factory=list)
    totals: RunningTotals = field(default_factory=RunningTotals)
    last_trace: str = ""
    pending: _PendingEntry | None = None


class _Parser:
    def __init__(self, records: list[str]) -> None:
        self.records = records
        self.state = _State.START
        self.header: FileHeader | None = None
        self.batches: list[Batch] = []
        self.batch: _OpenBatch | None = None
        self.last_batch_number = -1
        self.file_totals = RunningTotals()
        self.block_count = 0
        self.file_control_line = 0
        self.padding = 0

    def run(self) -> NachaFile:
        if not self.records:
            raise NachaError(ErrorCode.EMPTY_FILE, "the file holds no records", line=1)
        for number, record in enumerate(self.records, start=1):
            self._record(number, record)
        if self.state is not _State.FILE_CONTROL:
            raise NachaError(
                ErrorCode.TRUNCATED,
                f"the file ends after {self.state.value}, without a file control",
                line=len(self.records),
            )
        self._check_blocks()
        assert self.header is not None  # the state machine saw a file header
        return NachaFile(self.header, self.batches)

    def _record(self, number: int, record: str) -> None:
        record_type = record[:1] or None
        if len(record) != RECORD_SIZE:
            raise NachaError(
                ErrorCode.RECORD_LENGTH,
                f"{len(record)} characters, expected {RECORD_SIZE}",
                line=number,
                record_type=record_type,
            )
        rt = record[0]
        if rt not in RECORD_TYPES:
            raise NachaError(
                ErrorCode.UNKNOWN_RECORD_TYPE, f"record type {rt!r}", line=number, record_type=rt
            )
        if self.state is _State.FILE_CONTROL:
            self._padding(number, record)
            return
        if rt not in _FOLLOWERS[self.state]:
            raise self._out_of_order(number, rt)
        if record == PADDING_RECORD:
            raise NachaError(
                ErrorCode.SEQUENCE,
                "block padding before the file control",
                line=number,
                record_type=rt,
            )
        if rt == FILE_HEADER:
            self._file_header(RawRecord(FILE_HEADER_LAYOUT, record, number))
        elif rt == BATCH_HEADER:
            self._batch_header(RawRecord(BATCH_HEADER_LAYOUT, record, number))
        elif rt == ENTRY_DETAIL:
            self._entry(RawRecord(ENTRY_DETAIL_LAYOUT, record, number))
        elif rt == ADDENDA:
            self._addenda(number, record)
        elif rt == BATCH_CONTROL:
            self._batch_control(RawRecord(BATCH_CONTROL_LAYOUT, record, number))
        else:
            self._file_control(RawRecord(FILE_CONTROL_LAYOUT, record, number))

    def _out_of_order(self, number: int, rt: str) -> NachaError:
        # the common ways to be out of order get their own, more telling, codes
        if rt == BATCH_CONTROL and self.state is _State.BATCH_HEADER:
            code, detail = ErrorCode.EMPTY_BATCH, "batch control right after its header"
        elif rt == FILE_CONTROL and self.state is _State.FILE_HEADER:
            code, detail = ErrorCode.NO_BATCHES, "the file holds no batches"
        elif rt == ADDENDA and self.state is _State.ADDENDA:
            code, detail = ErrorCode.TOO_MANY_ADDENDA, "PPD/CCD entries carry at most one addenda"
        else:
            code = ErrorCode.SEQUENCE
            detail = f"record type {rt} cannot follow {self.state.value}"
        return NachaError(code, detail, line=number, record_type=rt)

    # ------------------------------------------------------------------------------ records

    def _file_header(self, rec: RawRecord) -> None:
        if rec.digits("priority_code") != "01":
            raise rec.error(ErrorCode.INVALID_FIELD, "priority code must be 01", "priority_code")
        for name in ("immediate_destination", "immediate_origin"):
            if not routing_number_valid(rec.digits(name)):
                raise rec.error(
                    ErrorCode.BAD_ROUTING_CHECK_DIGIT, f"{rec.digits(name)} fails the check", name
                )
        created = rec.yymmdd("file_creation_date")
        hhmm = rec.digits("file_creation_time")
        if int(hhmm[:2]) > 23 or int(hhmm[2:]) > 59:
            raise rec.error(ErrorCode.INVALID_DATE, f"{hhmm!r} is not HHMM", "file_creation_time")
        modifier = rec.text("file_id_modifier")
        if not file_id_modifier_valid(modifier):
            raise rec.error(ErrorCode.INVALID_FIELD, "must be A-Z or 0-9", "file_id_modifier")
        if rec.digits("record_size") != f"{RECORD_SIZE:03d}":
            raise rec.error(ErrorCode.INVALID_FIELD, "record size must be 094", "record_size")
        if rec.digits("blocking_factor") != f"{BLOCKING_FACTOR:02d}":
            raise rec.error(ErrorCode.BLOCKING_FACTOR, "must be 10", "blocking_factor")
        if rec.digits("format_code") != "1":
            raise rec.error(ErrorCode.INVALID_FIELD, "format code must be 1", "format_code")
        self.header = FileHeader(
            immediate_destination=rec.digits("immediate_destination"),
            immediate_origin=rec.digits("immediate_origin"),
            destination_name=rec.text("immediate_destination_name"),
            origin_name=rec.text("immediate_origin_name"),
            file_creation=datetime.combine(created, time(int(hhmm[:2]), int(hhmm[2:]))),
            file_id_modifier=modifier,
            reference_code=rec.text("reference_code"),
        )
        self.state = _State.FILE_HEADER

    def _batch_header(self, rec: RawRecord) -> None:
        service_class = rec.number("service_class_code")
        if service_class not in SERVICE_CLASS_CODES:
            raise rec.error(
                ErrorCode.INVALID_SERVICE_CLASS, f"{service_class}", "service_class_code"
            )
        company_name = rec.required_text("company_name")
        company_id = rec.required_text("company_identification")
        sec_code = rec.text("standard_entry_class_code")
        if sec_code not in SEC_CODES:
            raise rec.error(
                ErrorCode.INVALID_SEC_CODE,
                f"{sec_code!r} (PPD, CCD or COR)",
                "standard_entry_class_code",
            )
        description = rec.required_text("company_entry_description")
        effective = rec.yymmdd("effective_entry_date")
        settlement = rec.text("settlement_date")
        if not settlement_date_valid(settlement):
            raise rec.error(ErrorCode.INVALID_FIELD, "not a Julian day", "settlement_date")
        status = rec.digits("originator_status_code")
        if status not in ORIGINATOR_STATUS_CODES:
            raise rec.error(ErrorCode.INVALID_FIELD, f"{status!r}", "originator_status_code")
        batch_number = rec.number("batch_number")
        if batch_number <= self.last_batch_number:
            raise rec.error(
                ErrorCode.BATCH_NUMBER_ORDER,
                f"batch {batch_number} after batch {self.last_batch_number}",
                "batch_number",
            )
        self.last_batch_number = batch_number
        self.batch = _OpenBatch(
            Batch(
                service_class_code=service_class,
                company_name=company_name,
                company_identification=company_id,
                sec_code=sec_code,
                company_entry_description=description,
                effective_entry_date=effective,
                originating_dfi=rec.digits("originating_dfi_identification"),
                batch_number=batch_number,
                entries=(),
                company_discretionary_data=rec.text("company_discretionary_data"),
                company_descriptive_date=rec.text("company_descriptive_date"),
                settlement_date=settlement,
                originator_status_code=status,
            )
        )
        self.state = _State.BATCH_HEADER

    def _entry(self, rec: RawRecord) -> None:
        batch = self._open_batch()
        self._close_entry(batch)
        code = rec.number("transaction_code")
        if code not in TRANSACTION_CODES:
            raise rec.error(ErrorCode.INVALID_TRANSACTION_CODE, f"{code}", "transaction_code")
        service_class = batch.template.service_class_code
        if (service_class == CREDITS_ONLY and not is_credit(code)) or (
            service_class == DEBITS_ONLY and is_credit(code)
        ):
            raise rec.error(
                ErrorCode.SERVICE_CLASS_MISMATCH,
                f"transaction code {code} in a service class {service_class} batch",
                "transaction_code",
            )
        routing = rec.digits("receiving_dfi_identification") + rec.digits("check_digit")
        if not routing_number_valid(routing):
            raise rec.error(ErrorCode.BAD_ROUTING_CHECK_DIGIT, routing, "check_digit")
        account = rec.required_text("dfi_account_number")
        amount = rec.number("amount")
        if is_prenote(code) and amount != 0:
            raise rec.error(ErrorCode.PRENOTE_AMOUNT, f"prenote for {amount} cents", "amount")
        indicator = rec.digits("addenda_record_indicator")
        if indicator not in ("0", "1"):
            raise rec.error(ErrorCode.INVALID_FIELD, "must be 0 or 1", "addenda_record_indicator")
        trace = rec.digits("trace_number")
        if trace[:8] != batch.template.originating_dfi:
            raise rec.error(
                ErrorCode.TRACE_NUMBER_MISMATCH,
                f"trace {trace} does not start with the ODFI {batch.template.originating_dfi}",
                "trace_number",
            )
        if trace <= batch.last_trace:
            raise rec.error(
                ErrorCode.TRACE_NUMBER_ORDER,
                f"trace {trace} after {batch.last_trace}: must ascend within a batch",
                "trace_number",
            )
        batch.last_trace = trace
        batch.pending = _PendingEntry(
            entry=EntryDetail(
                transaction_code=code,
                receiving_dfi_routing=routing,
                dfi_account_number=account,
                amount_cents=amount,
                individual_id=rec.text("individual_identification_number"),
                individual_name=rec.text("individual_name"),
                discretionary_data=rec.text("discretionary_data"),
                addenda=None,
                trace_number=trace,
            ),
            line=rec.line,
            indicator=indicator,
        )
        self.state = _State.ENTRY

    def _addenda(self, number: int, record: str) -> None:
        pending = self._open_batch().pending
        assert pending is not None  # only an entry detail leads to the ENTRY state
        entry = pending.entry
        addenda_type = record[1:3]
        if addenda_type not in (ADDENDA_TYPE_PAYMENT, ADDENDA_TYPE_RETURN, ADDENDA_TYPE_CHANGE):
            raise NachaError(
                ErrorCode.INVALID_ADDENDA_TYPE,
                f"{addenda_type!r} (05, 98 or 99)",
                line=number,
                record_type=ADDENDA,
                field="addenda_type_code",
            )
        if pending.indicator != "1":
            raise NachaError(
                ErrorCode.ADDENDA_INDICATOR_MISMATCH,
                f"addenda follows an entry whose indicator is {pending.indicator}",
                line=number,
                record_type=ADDENDA,
            )
        # returns (99) and notifications of change (98) ride on codes 21/26/31/36
        if (addenda_type != ADDENDA_TYPE_PAYMENT) != is_return(entry.transaction_code):
            raise NachaError(
                ErrorCode.ADDENDA_TYPE_MISMATCH,
                f"addenda type {addenda_type} on transaction code {entry.transaction_code}",
                line=number,
                record_type=ADDENDA,
                field="addenda_type_code",
            )
        if addenda_type == ADDENDA_TYPE_PAYMENT:
            rec = RawRecord(ADDENDA_LAYOUT, record, number)
            if rec.number("addenda_sequence_number") != 1:
                raise rec.error(
                    ErrorCode.ADDENDA_SEQUENCE, "must be 0001", "addenda_sequence_number"
                )
            if rec.digits("entry_detail_sequence_number") != entry.trace_number[-7:]:
                raise rec.error(
                    ErrorCode.ADDENDA_SEQUENCE,
                    "does not match the entry's trace number",
                    "entry_detail_sequence_number",
                )
            pending.addenda = rec.text("payment_related_information")
        elif addenda_type == ADDENDA_TYPE_CHANGE:
            pending.change_addenda = _change_addenda(
                RawRecord(CHANGE_ADDENDA_LAYOUT, record, number), entry
            )
        else:
            rec = RawRecord(RETURN_ADDENDA_LAYOUT, record, number)
            reason = rec.text("return_reason_code")
            if reason not in RETURN_REASON_CODES:
                raise rec.error(ErrorCode.INVALID_RETURN_CODE, f"{reason!r}", "return_reason_code")
            if rec.digits("trace_number") != entry.trace_number:
                raise rec.error(
                    ErrorCode.ADDENDA_SEQUENCE,
                    "does not match the entry's trace number",
                    "trace_number",
                )
            death: date | None = None
            if rec.text("date_of_death"):
                death = rec.yymmdd("date_of_death")
            pending.return_addenda = ReturnAddenda(
                return_reason_code=reason,
                original_entry_trace_number=rec.digits("original_entry_trace_number"),
                original_receiving_dfi=rec.digits("original_receiving_dfi_identification"),
                date_of_death=death,
                addenda_information=rec.text("addenda_information"),
            )
        self.state = _State.ADDENDA

    def _batch_control(self, rec: RawRecord) -> None:
        batch = self._open_batch()
        self._close_entry(batch)
        header, totals = batch.template, batch.totals
        checks: list[tuple[ErrorCode, str, object, object]] = [
            (
                ErrorCode.SERVICE_CLASS_MISMATCH,
                "service_class_code",
                rec.number("service_class_code"),
                header.service_class_code,
            ),
            (
                ErrorCode.ENTRY_COUNT_MISMATCH,
                "entry_addenda_count",
                rec.number("entry_addenda_count"),
                totals.entry_addenda_count,
            ),
            (
                ErrorCode.ENTRY_HASH_MISMATCH,
                "entry_hash",
                rec.number("entry_hash"),
                totals.entry_hash % ENTRY_HASH_MODULUS,
            ),
            (
                ErrorCode.BATCH_TOTALS_MISMATCH,
                "total_debit_entry_dollar_amount",
                rec.number("total_debit_entry_dollar_amount"),
                totals.debit_cents,
            ),
            (
                ErrorCode.BATCH_TOTALS_MISMATCH,
                "total_credit_entry_dollar_amount",
                rec.number("total_credit_entry_dollar_amount"),
                totals.credit_cents,
            ),
            (
                ErrorCode.COMPANY_ID_MISMATCH,
                "company_identification",
                rec.text("company_identification"),
                header.company_identification,
            ),
            (
                ErrorCode.ODFI_MISMATCH,
                "originating_dfi_identification",
                rec.digits("originating_dfi_identification"),
                header.originating_dfi,
            ),
            (
                ErrorCode.BATCH_NUMBER_MISMATCH,
                "batch_number",
                rec.number("batch_number"),
                header.batch_number,
            ),
        ]
        _check_all(rec, checks)
        self.batches.append(
            replace(
                header,
                entries=batch.entries,
                message_authentication_code=rec.text("message_authentication_code"),
            )
        )
        self.file_totals.absorb(totals)
        self.batch = None
        self.state = _State.BATCH_CONTROL

    def _file_control(self, rec: RawRecord) -> None:
        totals = self.file_totals
        _check_all(
            rec,
            [
                (
                    ErrorCode.BATCH_COUNT_MISMATCH,
                    "batch_count",
                    rec.number("batch_count"),
                    len(self.batches),
                ),
                (
                    ErrorCode.ENTRY_COUNT_MISMATCH,
                    "entry_addenda_count",
                    rec.number("entry_addenda_count"),
                    totals.entry_addenda_count,
                ),
                (
                    ErrorCode.ENTRY_HASH_MISMATCH,
                    "entry_hash",
                    rec.number("entry_hash"),
                    totals.entry_hash % ENTRY_HASH_MODULUS,
                ),
                (
                    ErrorCode.FILE_TOTALS_MISMATCH,
                    "total_debit_entry_dollar_amount_in_file",
                    rec.number("total_debit_entry_dollar_amount_in_file"),
                    totals.debit_cents,
                ),
                (
                    ErrorCode.FILE_TOTALS_MISMATCH,
                    "total_credit_entry_dollar_amount_in_file",
                    rec.number("total_credit_entry_dollar_amount_in_file"),
                    totals.credit_cents,
                ),
            ],
        )
        self.block_count = rec.number("block_count")
        self.file_control_line = rec.line
        self.state = _State.FILE_CONTROL

    def _padding(self, number: int, record: str) -> None:
        if record != PADDING_RECORD:
            if record[0] == FILE_CONTROL:
                raise NachaError(
                    ErrorCode.INVALID_PADDING,
                    "padding records are 94 nines",
                    line=number,
                    record_type=FILE_CONTROL,
                )
            raise NachaError(
                ErrorCode.SEQUENCE,
                f"record type {record[0]} after the file control",
                line=number,
                record_type=record[0],
            )
        self.padding += 1

    def _check_blocks(self) -> None:
        count = len(self.records)
        if count % BLOCKING_FACTOR:
            raise NachaError(
                ErrorCode.BLOCKING_FACTOR,
                f"{count} records is not a whole number of blocks of {BLOCKING_FACTOR}",
                line=count,
                record_type=self.records[-1][0],
            )
        if self.padding >= BLOCKING_FACTOR:
            raise NachaError(
                ErrorCode.EXCESS_PADDING,
                f"{self.padding} padding records: only the last block is filled",
                line=count,
                record_type=FILE_CONTROL,
            )
        if self.block_count != count // BLOCKING_FACTOR:
            raise NachaError(
                ErrorCode.BLOCK_COUNT_MISMATCH,
                f"block count {self.block_count}, file has {count // BLOCKING_FACTOR} blocks",
                line=self.file_control_line,
                record_type=FILE_CONTROL,
                field="block_count",
            )

    # ------------------------------------------------------------------------------ helpers

    def _open_batch(self) -> _OpenBatch:
        assert self.batch is not None  # the state machine only allows 6/7/8 inside a batch
        return self.batch

    def _close_entry(self, batch: _OpenBatch) -> None:
        pending = batch.pending
        if pending is None:
            return
        has_addenda = (
            pending.addenda is not None
            or pending.return_addenda is not None
            or pending.change_addenda is not None
        )
        if pending.indicator == "1" and not has_addenda:
            raise NachaError(
                ErrorCode.ADDENDA_INDICATOR_MISMATCH,
                "addenda record indicator is 1 but no addenda follows",
                line=pending.line,
                record_type=ENTRY_DETAIL,
                field="addenda_record_indicator",
            )
        if is_return(pending.entry.transaction_code) and not (
            pending.return_addenda or pending.change_addenda
        ):
            raise NachaError(
                ErrorCode.MISSING_RETURN_ADDENDA,
                "a return entry must carry a type 99 addenda",
                line=pending.line,
                record_type=ENTRY_DETAIL,
            )
        entry = replace(
            pending.entry,
            addenda=pending.addenda,
            return_addenda=pending.return_addenda,
            change_addenda=pending.change_addenda,
        )
        batch.entries.append(entry)
        batch.totals.add(entry)
        batch.pending = None


def _change_addenda(rec: RawRecord, entry: EntryDetail) -> ChangeAddenda:
    """A notification of change's addenda (98), its change code and trace checked."""
    code = rec.text("change_code")
    if code not in CHANGE_CODES:
        raise rec.error(ErrorCode.INVALID_CHANGE_CODE, f"{code!r}", "change_code")
    if rec.digits("trace_number") != entry.trace_number:
        raise rec.error(
            ErrorCode.ADDENDA_SEQUENCE, "does not match the entry's trace number", "trace_number"
        )
    return ChangeAddenda(
        change_code=code,
        original_entry_trace_number=rec.digits("original_entry_trace_number"),
        original_receiving_dfi=rec.digits("original_receiving_dfi_identification"),
        corrected_data=rec.text("corrected_data"),
    )


def _check_all(rec: RawRecord, checks: list[tuple[ErrorCode, str, object, object]]) -> None:
    for code, name, found, expected in checks:
        if found != expected:
            raise rec.error(code, f"record says {found!r}, entries give {expected!r}", name)
