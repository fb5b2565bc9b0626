"""camt.056.001.12 (FI-to-FI payment cancellation request): build and parse.

A recall: after a SEPA credit transfer settled, the debtor's bank asks the creditor's bank to
send the money back (SEPA rulebook reasons DUPL duplicate, TECH technical problem, FRAD
fraud, CUST the customer's request). The request names the original pacs.008 and the
transaction's end-to-end id and amount; the creditor's bank answers with a camt.029
(iso20022/camt029.py) and, when it accepts, a pacs.004 with the funds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import partial

from lxml import etree

from iso20022.pacs008 import format_amount, parse_amount
from iso20022.schemas import (
    CAMT056,
    PACS008,
    SchemaError,
    namespace,
    parse_iso_datetime,
    validate,
    validated_root,
)
from iso20022.xmltools import agent, serialize, sub, text_at

NS = namespace(CAMT056)
_NSMAP = {"d": NS}
_sub = partial(sub, NS)
_text = partial(text_at, _NSMAP)
_agent = partial(agent, NS)
# the SEPA rulebook's recall reasons (ExternalCancellationReason1Code)
RECALL_REASONS = ("DUPL", "TECH", "FRAD", "CUST")


@dataclass(frozen=True, slots=True)
class CancellationRequest:
    """One recall of one settled transaction (`end_to_end_id`) of the pacs.008
    `original_message_id`; `assignment_id` identifies the request, `case_id` the case the
    resolution names."""

    assignment_id: str
    case_id: str
    created_at: datetime
    assigner_bic: str
    assignee_bic: str
    original_message_id: str
    end_to_end_id: str
    amount_minor: int
    currency: str
    settlement_date: date
    reason_code: str
    additional_info: str = ""

    def __post_init__(self) -> None:
        if self.reason_code not in RECALL_REASONS:
            raise ValueError(f"reason_code must be one of {', '.join(RECALL_REASONS)}")


def build_camt056(request: CancellationRequest) -> bytes:
    """Serialise as an XSD-valid camt.056.001.12 document (UTF-8, with declaration).

    Raises `SchemaError` if the result does not validate (e.g. an id longer than 35).
    """
    if request.created_at.tzinfo is None:
        raise ValueError("created_at must be timezone-aware")
    # lxml spells the default namespace with the key None, which lxml-stubs does not model
    document = etree.Element(f"{{{NS}}}Document", nsmap={None: NS})  # type: ignore[dict-item]
    message = _sub(document, "FIToFIPmtCxlReq")
    assignment = _sub(message, "Assgnmt")
    _sub(assignment, "Id", request.assignment_id)
    _agent(assignment, "Assgnr", request.assigner_bic)
    _agent(assignment, "Assgne", request.assignee_bic)
    _sub(assignment, "CreDtTm", request.created_at.isoformat())
    case = _sub(message, "Case")
    _sub(case, "Id", request.case_id)
    _agent(case, "Cretr", request.assigner_bic)
    underlying = _sub(message, "Undrlyg")
    group = _sub(underlying, "OrgnlGrpInfAndCxl")
    _sub(group, "OrgnlMsgId", request.original_message_id)
    _sub(group, "OrgnlMsgNmId", PACS008)
    info = _sub(underlying, "TxInf")
    _sub(info, "CxlId", request.case_id)
    _sub(info, "OrgnlEndToEndId", request.end_to_end_id)
    amount = _sub(
        info, "OrgnlIntrBkSttlmAmt", format_amount(request.amount_minor, request.currency)
    )
    amount.set("Ccy", request.currency)
    _sub(info, "OrgnlIntrBkSttlmDt", request.settlement_date.isoformat())
    reason = _sub(info, "CxlRsnInf")
    _sub(_sub(reason, "Rsn"), "Cd", request.reason_code)
    if request.additional_info:
        _sub(reason, "AddtlInf", request.additional_info[:105])
    xml = serialize(document)
    validate(xml, CAMT056)
    return xml


def parse_camt056(xml: bytes) -> CancellationRequest:
    """Validate `xml` against the camt.056.001.12 XSD and read its (first) transaction back.

    Raises `SchemaError` for malformed or invalid documents and for requests the bank cannot
    act on (no original message id, end-to-end id, amount or reason among the rulebook's).
    """
    root = validated_root(xml, CAMT056)
    message = root.find("d:FIToFIPmtCxlReq", namespaces=_NSMAP)
    assert message is not None  # guaranteed by the XSD
    info = message.find("d:Undrlyg/d:TxInf", namespaces=_NSMAP)
    if info is None:
        raise SchemaError("a cancellation request needs a transaction (Undrlyg/TxInf)")
    amount = info.find("d:OrgnlIntrBkSttlmAmt", namespaces=_NSMAP)
    original = _text(message, "d:Undrlyg/d:OrgnlGrpInfAndCxl/d:OrgnlMsgId")
    end_to_end = _text(info, "d:OrgnlEndToEndId")
    reason = _text(info, "d:CxlRsnInf/d:Rsn/d:Cd") or ""
    settled = _text(info, "d:OrgnlIntrBkSttlmDt")
    if not original or not end_to_end or amount is None or amount.text is None or not settled:
        raise SchemaError(
            "a cancellation request needs OrgnlMsgId, OrgnlEndToEndId, OrgnlIntrBkSttlmAmt "
            "and OrgnlIntrBkSttlmDt"
        )
    currency = amount.get("Ccy", "")
    try:
        return CancellationRequest(
            assignment_id=_text(message, "d:Assgnmt/d:Id") or "",
            case_id=_text(message, "d:Case/d:Id") or _text(info, "d:CxlId") or "",
            created_at=parse_iso_datetime(_text(message, "d:Assgnmt/d:CreDtTm") or ""),
            assigner_bic=_text(message, "d:Assgnmt/d:Assgnr/d:Agt/d:FinInstnId/d:BICFI") or "",
            assignee_bic=_text(message, "d:Assgnmt/d:Assgne/d:Agt/d:FinInstnId/d:BICFI") or "",
            original_message_id=original,
            end_to_end_id=end_to_end,
            amount_minor=parse_amount(amount.text, currency),
            currency=currency,
            settlement_date=date.fromisoformat(settled),
            reason_code=reason,
            additional_info=_text(info, "d:CxlRsnInf/d:AddtlInf") or "",
        )
    except ValueError as err:
        raise SchemaError(str(err)) from None
