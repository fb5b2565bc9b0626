"""camt.029.001.14 (resolution of investigation): build and parse, as the answer to a recall.

The creditor's bank resolves a camt.056 cancellation request: `CNCL` (the recall is accepted:
the funds follow in a pacs.004) or `RJCR` (rejected, with an
ExternalPaymentCancellationRejection1Code such as NOOR no original transaction, CUST the
customer refused, LEGL legal decision, AC04 account closed). The resolution names the case
and the original transaction's end-to-end id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial

from lxml import etree

from iso20022.schemas import (
    CAMT029,
    PACS008,
    SchemaError,
    namespace,
    parse_iso_datetime,
    validate,
    validated_root,
)
from iso20022.xmltools import agent, serialize, sub, text_at

NS = namespace(CAMT029)
_NSMAP = {"d": NS}
_sub = partial(sub, NS)
_text = partial(text_at, _NSMAP)
_agent = partial(agent, NS)
ACCEPTED = "CNCL"  # cancelled as per request
REJECTED = "RJCR"  # rejected cancellation request
# the transaction's own status (CancellationIndividualStatus1Code) for each confirmation
_TX_STATUS = {ACCEPTED: "ACCR", REJECTED: "RJCR"}
_CONFIRMATION = {tx: conf for conf, tx in _TX_STATUS.items()}


@dataclass(frozen=True, slots=True)
class Resolution:
    """The bank's answer to the recall `case_id` of transaction `end_to_end_id`."""

    assignment_id: str
    case_id: str
    created_at: datetime
    assigner_bic: str
    assignee_bic: str
    original_message_id: str
    end_to_end_id: str
    status: str  # CNCL | RJCR
    reason_code: str = ""  # why a rejection (RJCR)

    def __post_init__(self) -> None:
        if self.status not in (ACCEPTED, REJECTED):
            raise ValueError("status must be CNCL or RJCR")
        if self.status == REJECTED and not 1 <= len(self.reason_code) <= 4:
            raise ValueError("a rejection needs a reason code of 1 to 4 characters")

    @property
    def accepted(self) -> bool:
        """True when the recall is accepted (the funds come back)."""
        return self.status == ACCEPTED


def build_camt029(resolution: Resolution) -> bytes:
    """Serialise as an XSD-valid camt.029.001.14 document (UTF-8, with declaration).

    Raises `SchemaError` if the result does not validate.
    """
    if resolution.created_at.tzinfo is None:
        raise ValueError("created_at must be timezone-aware")
    document = etree.Element(f"{{{NS}}}Document", nsmap={None: NS})  # type: ignore[dict-item]
    message = _sub(document, "RsltnOfInvstgtn")
    assignment = _sub(message, "Assgnmt")
    _sub(assignment, "Id", resolution.assignment_id)
    _agent(assignment, "Assgnr", resolution.assigner_bic)
    _agent(assignment, "Assgne", resolution.assignee_bic)
    _sub(assignment, "CreDtTm", resolution.created_at.isoformat())
    case = _sub(message, "RslvdCase")
    _sub(case, "Id", resolution.case_id)
    _agent(case, "Cretr", resolution.assignee_bic)
    _sub(_sub(message, "Sts"), "Conf", resolution.status)
    info = _sub(_sub(message, "CxlDtls"), "TxInfAndSts")
    group = _sub(info, "OrgnlGrpInf")
    _sub(group, "OrgnlMsgId", resolution.original_message_id)
    _sub(group, "OrgnlMsgNmId", PACS008)
    _sub(info, "OrgnlEndToEndId", resolution.end_to_end_id)
    _sub(info, "TxCxlSts", _TX_STATUS[resolution.status])
    if resolution.reason_code:
        _sub(_sub(_sub(info, "CxlStsRsnInf"), "Rsn"), "Cd", resolution.reason_code)
    xml = serialize(document)
    validate(xml, CAMT029)
    return xml


def parse_camt029(xml: bytes) -> Resolution:
    """Validate `xml` against the camt.029.001.14 XSD and read the resolution back.

    Raises `SchemaError` for malformed or invalid documents and for resolutions the platform
    cannot match to a recall (no case id, no end-to-end id, a status other than CNCL/RJCR).
    """
    root = validated_root(xml, CAMT029)
    message = root.find("d:RsltnOfInvstgtn", namespaces=_NSMAP)
    assert message is not None  # guaranteed by the XSD
    info = message.find("d:CxlDtls/d:TxInfAndSts", namespaces=_NSMAP)
    status = _text(message, "d:Sts/d:Conf")
    case_id = _text(message, "d:RslvdCase/d:Id")
    end_to_end = _text(info, "d:OrgnlEndToEndId") if info is not None else None
    if info is None or not case_id or not end_to_end:
        raise SchemaError("a resolution needs RslvdCase/Id and CxlDtls/TxInfAndSts/OrgnlEndToEndId")
    # the transaction's own status decides; the case's confirmation when it has none
    tx_status = _text(info, "d:TxCxlSts")
    status = _CONFIRMATION.get(tx_status or "", status or "")
    try:
        return Resolution(
            assignment_id=_text(message, "d:Assgnmt/d:Id") or "",
            case_id=case_id,
            created_at=parse_iso_datetime(_text(message, "d:Assgnmt/d:CreDtTm") or ""),
            assigner_bic=_text(message, "d:Assgnmt/d:Assgnr/d:Agt/d:FinInstnId/d:BICFI") or "",
            assignee_bic=_text(message, "d:Assgnmt/d:Assgne/d:Agt/d:FinInstnId/d:BICFI") or "",
            original_message_id=_text(info, "d:OrgnlGrpInf/d:OrgnlMsgId") or "",
            end_to_end_id=end_to_end,
            status=status,
            reason_code=_text(info, "d:CxlStsRsnInf/d:Rsn/d:Cd") or "",
        )
    except ValueError as err:
        raise SchemaError(str(err)) from None
