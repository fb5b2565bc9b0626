"""pacs.002.001.12 (FI to FI payment status report): build and parse.

The bank answers each pacs.008 with one status report: per transaction ACCP (accepted),
ACSC (settled) or RJCT (rejected, with an ISO ExternalStatusReason1Code such as AC01
incorrect account number, AC04 closed account, AM04 insufficient funds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Literal, cast, get_args

from iso20022.schemas import (
    PACS002,
    PACS008,
    SchemaError,
    namespace,
    parse_iso_datetime,
    validate,
    validated_root,
)
from iso20022.xmltools import message_skeleton, serialize, sub, text_at

NS = namespace(PACS002)
_NSMAP = {"d": NS}
_sub = partial(sub, NS)
_text = partial(text_at, _NSMAP)

Status = Literal["ACCP", "ACSC", "RJCT"]
STATUSES: frozenset[str] = frozenset(get_args(Status))

# the reason codes the simulator and the platform use (ISO ExternalStatusReason1Code)
REASON_CODES: dict[str, str] = {
    "AC01": "incorrect account number",
    "AC04": "closed account number",
    "AC06": "blocked account",
    "AG01": "transaction forbidden",
    # the answer to a pacs.028 status request about a payment the bank never received
    "AG09": "original payment never received",
    "AM04": "insufficient funds",
    "AM05": "duplication",
    "BE05": "unrecognised initiating party",
    "FF01": "invalid file format",
    "MS03": "reason not specified",
    "RC01": "bank identifier incorrect",
    "RR04": "regulatory reason",
}


@dataclass(frozen=True, slots=True)
class TransactionStatus:
    """The bank's verdict on one transaction, identified by its end-to-end id."""

    end_to_end_id: str
    status: Status
    reason_code: str | None = None
    # StsRsnInf/AddtlInf: free text beside the reason code (at most 105 characters)
    additional_info: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}, not {self.status!r}")
        if self.reason_code is not None and not 1 <= len(self.reason_code) <= 4:
            raise ValueError("reason_code must be an ISO code of at most 4 characters")
        if self.additional_info is not None and not 1 <= len(self.additional_info) <= 105:
            raise ValueError("additional_info must be 1 to 105 characters")


@dataclass(frozen=True, slots=True)
class StatusReport:
    """One pacs.002 answering the pacs.008 `original_message_id`."""

    message_id: str
    original_message_id: str
    created_at: datetime
    transactions: list[TransactionStatus] = field(default_factory=list)


def build_pacs002(report: StatusReport) -> bytes:
    """Serialise `report` as an XSD-valid pacs.002.001.12 document (UTF-8, with declaration).

    Raises `SchemaError` if the result does not validate (e.g. an id longer than 35).
    """
    document, status_report, _ = message_skeleton(
        NS, "FIToFIPmtStsRpt", report.message_id, report.created_at
    )
    original = _sub(status_report, "OrgnlGrpInfAndSts")
    _sub(original, "OrgnlMsgId", report.original_message_id)
    _sub(original, "OrgnlMsgNmId", PACS008)

    for tx in report.transactions:
        info = _sub(status_report, "TxInfAndSts")
        _sub(info, "OrgnlEndToEndId", tx.end_to_end_id)
        _sub(info, "TxSts", tx.status)
        if tx.reason_code or tx.additional_info:
            reason = _sub(info, "StsRsnInf")
            if tx.reason_code:
                _sub(_sub(reason, "Rsn"), "Cd", tx.reason_code)
            if tx.additional_info:
                _sub(reason, "AddtlInf", tx.additional_info)

    xml = serialize(document)
    validate(xml, PACS002)
    return xml


def parse_pacs002(xml: bytes) -> StatusReport:
    """Validate `xml` against the pacs.002.001.12 XSD and read it back as a `StatusReport`.

    Raises `SchemaError` for malformed or invalid documents and for transaction statuses
    other than ACCP, ACSC and RJCT (which the platform does not know how to act on).
    """
    root = validated_root(xml, PACS002)
    status_report = root.find("d:FIToFIPmtStsRpt", namespaces=_NSMAP)
    assert status_report is not None  # guaranteed by the XSD

    transactions: list[TransactionStatus] = []
    for info in status_report.iterfind("d:TxInfAndSts", namespaces=_NSMAP):
        status = _text(info, "d:TxSts")
        if status not in STATUSES:
            raise SchemaError(f"unsupported transaction status {status!r}")
        transactions.append(
            TransactionStatus(
                end_to_end_id=_text(info, "d:OrgnlEndToEndId") or "",
                status=cast(Status, status),
                reason_code=_text(info, "d:StsRsnInf/d:Rsn/d:Cd"),
                additional_info=_text(info, "d:StsRsnInf/d:AddtlInf") or None,
            )
        )
    return StatusReport(
        message_id=_text(status_report, "d:GrpHdr/d:MsgId") or "",
        original_message_id=_text(status_report, "d:OrgnlGrpInfAndSts/d:OrgnlMsgId") or "",
        created_at=parse_iso_datetime(_text(status_report, "d:GrpHdr/d:CreDtTm") or ""),
        transactions=transactions,
    )
