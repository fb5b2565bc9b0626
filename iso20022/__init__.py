"""ISO 20022 messages the platform exchanges with banks: pacs.008 out, pacs.002 back.

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
from iso20022.schemas import PACS002, PACS008, SchemaError, validate

__all__ = [
    "PACS002",
    "PACS008",
    "CreditTransfer",
    "ParsedPacs008",
    "ParsedTransaction",
    "SchemaError",
    "StatusReport",
    "TransactionStatus",
    "build_pacs002",
    "build_pacs008",
    "parse_pacs002",
    "parse_pacs008",
    "validate",
]
