"""NACHA (ACH) files: build, parse and validate PPD/CCD files and their returns.

Plain Python (no Temporal, no HTTP, no database). Record layouts follow the NACHA Operating
Rules; money is integer cents throughout.
"""

from nacha.builder import build_file, trace_number
from nacha.changes import CHANGE_CODES, Correction, build_change_entry, read_corrected_data
from nacha.errors import ErrorCode, NachaError
from nacha.parser import parse_file
from nacha.records import (
    BLOCKING_FACTOR,
    CREDITS_ONLY,
    DEBITS_ONLY,
    MAX_AMOUNT_CENTS,
    MIXED,
    RECORD_SIZE,
    SEC_CODES,
    TRANSACTION_CODES,
    Batch,
    ChangeAddenda,
    EntryDetail,
    FileHeader,
    NachaFile,
    ReturnAddenda,
    is_credit,
    is_debit,
    is_prenote,
    is_return,
)
from nacha.returns import (
    RETURN_REASON_CODES,
    build_return_batch,
    build_return_entry,
    return_transaction_code,
)
from nacha.routing import routing_check_digit, routing_number_valid

__all__ = [
    "BLOCKING_FACTOR",
    "CHANGE_CODES",
    "CREDITS_ONLY",
    "DEBITS_ONLY",
    "MAX_AMOUNT_CENTS",
    "MIXED",
    "RECORD_SIZE",
    "RETURN_REASON_CODES",
    "SEC_CODES",
    "TRANSACTION_CODES",
    "Batch",
    "ChangeAddenda",
    "Correction",
    "EntryDetail",
    "ErrorCode",
    "FileHeader",
    "NachaError",
    "NachaFile",
    "ReturnAddenda",
    "build_change_entry",
    "build_file",
    "build_return_batch",
    "build_return_entry",
    "is_credit",
    "is_debit",
    "is_prenote",
    "is_return",
    "parse_file",
    "read_corrected_data",
    "return_transaction_code",
    "routing_check_digit",
    "routing_number_valid",
    "trace_number",
]
