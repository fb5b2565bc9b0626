"""pacs.004.001.11 (payment return): build and parse.

After a SEPA credit transfer settled, the creditor's bank may send the money back (a
"return": account closed, creditor deceased, regulatory reason …) within the rulebook's
deadline. The bank reports it with a pacs.004 naming the original pacs.008 and each returned
transaction's end-to-end id, amount and ISO ExternalReturnReason1Code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from iso20022.pacs008 import format_amount, parse_amount
from iso20022.schemas import (
    PACS004,
    PACS008,
    SchemaError,
    namespace,
    parse_iso_datetime,
    validate,
    validated_root,
)
from iso20022.xmltools import message_skeleton, serialize, sub, text_at

NS = namespace(PACS004)
_NSMAP = {"d": NS}
_sub = partial(sub, NS)
_text = partial(text_at, _NSMAP)


@dataclass(frozen=True, slots=True)
class ReturnedTransaction:
    """One settled transaction sent back, identified by its original end-to-end id."""

    end_to_end_id: str
    amount_minor: int
    currency: str
    reason_code: str

    def __post_init__(self) -> None:
        if not 1 <= len(self.reason_code) <= 4:
            raise ValueError("reason_code must be an ISO code of 1 to 4 characters")


@dataclass(frozen=True, slots=True)
class PaymentReturn:
    """One pacs.004 returning transactions of the pacs.008 `original_message_id`."""

    message_id: str
    original_message_id: str
    created_at: datetime
    transactions: list[ReturnedTransaction] = field(default_factory=list)


def build_pacs004(payment_return: PaymentReturn) -> bytes:
    """Serialise as an XSD-valid pacs.004.001.11 document (UTF-8, with declaration).

    Raises `SchemaError` if the result does not validate (e.g. an id longer than 35).
    """
    document, returned, header = message_skeleton(
        NS, "PmtRtr", payment_return.message_id, payment_return.created_at
    )
    _sub(header, "NbOfTxs", str(len(payment_return.transactions)))
    original = _sub(returned, "OrgnlGrpInf")
    _sub(original, "OrgnlMsgId", payment_return.original_message_id)
    _sub(original, "OrgnlMsgNmId", PACS008)
    for tx in payment_return.transactions:
        info = _sub(returned, "TxInf")
        _sub(info, "OrgnlEndToEndId", tx.end_to_end_id)
        amount = _sub(info, "RtrdIntrBkSttlmAmt", format_amount(tx.amount_minor, tx.currency))
        amount.set("Ccy", tx.currency)
        _sub(_sub(_sub(info, "RtrRsnInf"), "Rsn"), "Cd", tx.reason_code)
    xml = serialize(document)
    validate(xml, PACS004)
    return xml


def parse_pacs004(xml: bytes) -> PaymentReturn:
    """Validate `xml` against the pacs.004.001.11 XSD and read it back.

    Raises `SchemaError` for malformed or invalid documents, and for returns the platform
    cannot match to a payment (no original message id, no end-to-end id, no reason code).
    """
    root = validated_root(xml, PACS004)
    returned = root.find("d:PmtRtr", namespaces=_NSMAP)
    assert returned is not None  # guaranteed by the XSD
    original_message_id = _text(returned, "d:OrgnlGrpInf/d:OrgnlMsgId")
    transactions: list[ReturnedTransaction] = []
    for info in returned.iterfind("d:TxInf", namespaces=_NSMAP):
        end_to_end_id = _text(info, "d:OrgnlEndToEndId")
        # a transaction may name its own original group instead of the message's
        original_message_id = original_message_id or _text(info, "d:OrgnlGrpInf/d:OrgnlMsgId")
        reason = _text(info, "d:RtrRsnInf/d:Rsn/d:Cd")
        amount = info.find("d:RtrdIntrBkSttlmAmt", namespaces=_NSMAP)
        assert amount is not None and amount.text is not None  # guaranteed by the XSD
        if not end_to_end_id or not reason:
            raise SchemaError("a returned transaction needs OrgnlEndToEndId and RtrRsnInf/Rsn/Cd")
        currency = amount.get("Ccy", "")
        try:
            amount_minor = parse_amount(amount.text, currency)
        except ValueError as err:
            raise SchemaError(str(err)) from None
        transactions.append(ReturnedTransaction(end_to_end_id, amount_minor, currency, reason))
    if not original_message_id:
        raise SchemaError("a payment return needs the original message id (OrgnlMsgId)")
    return PaymentReturn(
        message_id=_text(returned, "d:GrpHdr/d:MsgId") or "",
        original_message_id=original_message_id,
        created_at=parse_iso_datetime(_text(returned, "d:GrpHdr/d:CreDtTm") or ""),
        transactions=transactions,
    )
