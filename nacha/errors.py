"""The one exception the NACHA engine raises, and the machine codes it carries."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Why a file (or a record being built) was refused.

    A `StrEnum`, so callers may compare `error.code` with plain strings.
    """

    # physical structure
    EMPTY_FILE = "empty_file"
    RECORD_LENGTH = "record_length"
    UNKNOWN_RECORD_TYPE = "unknown_record_type"
    SEQUENCE = "sequence"
    TRUNCATED = "truncated"
    BLOCKING_FACTOR = "blocking_factor"
    BLOCK_COUNT_MISMATCH = "block_count_mismatch"
    INVALID_PADDING = "invalid_padding"
    EXCESS_PADDING = "excess_padding"
    NO_BATCHES = "no_batches"
    EMPTY_BATCH = "empty_batch"
    TOO_MANY_ADDENDA = "too_many_addenda"
    # field level
    NON_NUMERIC_FIELD = "non_numeric_field"
    INVALID_CHARACTER = "invalid_character"
    FIELD_OVERFLOW = "field_overflow"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    INVALID_DATE = "invalid_date"
    BAD_ROUTING_CHECK_DIGIT = "bad_routing_check_digit"
    INVALID_SERVICE_CLASS = "invalid_service_class"
    INVALID_SEC_CODE = "invalid_sec_code"
    INVALID_TRANSACTION_CODE = "invalid_transaction_code"
    INVALID_ADDENDA_TYPE = "invalid_addenda_type"
    INVALID_CHANGE_CODE = "invalid_change_code"
    INVALID_RETURN_CODE = "invalid_return_code"
    PRENOTE_AMOUNT = "prenote_amount"
    # consistency between records
    SERVICE_CLASS_MISMATCH = "service_class_mismatch"
    COMPANY_ID_MISMATCH = "company_id_mismatch"
    ODFI_MISMATCH = "odfi_mismatch"
    BATCH_NUMBER_MISMATCH = "batch_number_mismatch"
    BATCH_NUMBER_ORDER = "batch_number_order"
    TRACE_NUMBER_MISMATCH = "trace_number_mismatch"
    TRACE_NUMBER_ORDER = "trace_number_order"
    ADDENDA_INDICATOR_MISMATCH = "addenda_indicator_mismatch"
    ADDENDA_SEQUENCE = "addenda_sequence"
    ADDENDA_TYPE_MISMATCH = "addenda_type_mismatch"
    MISSING_RETURN_ADDENDA = "missing_return_addenda"
    ADDENDA_CONFLICT = "addenda_conflict"
    # control totals
    ENTRY_COUNT_MISMATCH = "entry_count_mismatch"
    ENTRY_HASH_MISMATCH = "entry_hash_mismatch"
    BATCH_TOTALS_MISMATCH = "batch_totals_mismatch"
    FILE_TOTALS_MISMATCH = "file_totals_mismatch"
    BATCH_COUNT_MISMATCH = "batch_count_mismatch"


class NachaError(ValueError):
    """A NACHA file or record is invalid.

    `code` is machine readable; `line` is the 1-based physical line of the offending record
    (None when the error is not tied to a line, e.g. a bad argument to a helper), and
    `record_type` its record type code ('1', '5', '6', '7', '8', '9').
    """

    def __init__(
        self,
        code: ErrorCode,
        detail: str,
        *,
        line: int | None = None,
        record_type: str | None = None,
        field: str | None = None,
    ) -> None:
        self.code = code
        self.detail = detail
        self.line = line
        self.record_type = record_type
        self.field = field
        where = []
        if line is not None:
            where.append(f"line {line}")
        if record_type is not None:
            where.append(f"record type {record_type}")
        if field is not None:
            where.append(f"field {field}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(f"{prefix}{code.value}: {detail}")
