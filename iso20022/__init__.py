"""ISO 20022 messages the platform exchanges with banks: pacs.008 out, pacs.002 back;
pacs.028 to ask what became of a payment whose answer was lost.

Plain Python (no Temporal, no HTTP): builders and parsers validated against the official XSDs.
"""

from iso20022.pacs002 import StatusReport, TransactionStatus, build_pacs002, parse_pacs002
from iso20022.pacs008 import (
    CreditTransfer,
    ParsedPacs008,
    ParsedTransaction,
    build_pacs008,
    parse_pacs008,
)
from iso20022.pacs028 import (
    StatusAnswer,
    StatusRequest,
    UnrelatedAnswer,
    build_pacs028,
    parse_pacs028,
    parse_status_answer,
)
from iso20022.schemas import PACS002, PACS008, PACS028, SchemaError, validate

__all__ = [
    "PACS002",
    "PACS008",
    "PACS028",
    "CreditTransfer",
    "ParsedPacs008",
    "ParsedTransaction",
    "SchemaError",
    "StatusAnswer",
    "StatusReport",
    "StatusRequest",
    "TransactionStatus",
    "UnrelatedAnswer",
    "build_pacs002",
    "build_pacs008",
    "build_pacs028",
    "parse_pacs002",
    "parse_pacs008",
    "parse_pacs028",
    "parse_status_answer",
    "validate",
]
