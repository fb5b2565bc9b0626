"""pacs.008.001.08 (FI to FI customer credit transfer): build and parse, SEPA style.

Amounts travel as integer minor units everywhere in the platform; the conversion to and from
the XML decimal is done with integer and `Decimal` arithmetic only, never floats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import partial

from lxml import etree

from iso20022.charset import SEPA_REMITTANCE_LENGTH, epc_text, meaningful
from iso20022.schemas import (
    PACS008,
    SchemaError,
    namespace,
    parse_iso_datetime,
    validate,
    validated_root,
)
from iso20022.xmltools import message_skeleton, serialize, sub, text_at

NS = namespace(PACS008)
_NSMAP = {"d": NS}
_sub = partial(sub, NS)
_text = partial(text_at, _NSMAP)

# ISO 4217 minor-unit exponents that differ from the usual 2
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI"),
        0,
    ),
    **dict.fromkeys(("VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}


def currency_exponent(currency: str) -> int:
    """Number of decimal places of `currency`'s minor unit (EUR 2, JPY 0, KWD 3)."""
    return _EXPONENTS.get(currency.upper(), 2)


def format_amount(amount_minor: int, currency: str) -> str:
    """Minor units to the XML decimal: `format_amount(12345, "EUR") == "123.45"`."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise TypeError("amount_minor must be an int")
    if amount_minor < 0:
        raise ValueError("amount_minor must not be negative")
    exponent = currency_exponent(currency)
    if exponent == 0:
        return str(amount_minor)
    units, cents = divmod(amount_minor, 10**exponent)
    return f"{units}.{cents:0{exponent}d}"


def parse_amount(text: str, currency: str) -> int:
    """The XML decimal to minor units; raise `ValueError` if it has sub-minor-unit precision."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"invalid amount {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"invalid amount {text!r}")
    # scaleb only shifts the exponent, so this is exact for any decimal the XSD admits
    minor = value.scaleb(currency_exponent(currency))
    if minor != minor.to_integral_value():
        raise ValueError(f"amount {text} {currency} is finer than the currency's minor unit")
    return int(minor)


def _epc(text: str, width: int | None = None) -> str:
    """The text in the EPC Latin set, as the API showed it (rails/charset.py); text with
    nothing left in that set goes as it is (the API refuses it; the bank may still take it)."""
    converted = epc_text(text) if width is None else epc_text(text, width)
    return converted if meaningful(converted) else text


def _check_text(name: str, value: str | None, max_length: int, *, required: bool) -> None:
    if value is None:
        if required:
            raise ValueError(f"{name} is required")
        return
    if not isinstance(value, str) or not 1 <= len(value) <= max_length:
        raise ValueError(f"{name} must be a string of 1 to {max_length} characters")


@dataclass(frozen=True, slots=True)
class CreditTransfer:
    """One customer credit transfer, i.e. one pacs.008 message with one transaction."""

    message_id: str
    end_to_end_id: str
    amount_minor: int
    currency: str
    debtor_name: str
    debtor_iban: str
    debtor_bic: str
    creditor_name: str
    creditor_iban: str
    created_at: datetime
    creditor_bic: str | None = None
    remittance_info: str | None = None

    def __post_init__(self) -> None:
        # fail at construction with a clear message rather than later as an XSD error
        _check_text("message_id", self.message_id, 35, required=True)
        _check_text("end_to_end_id", self.end_to_end_id, 35, required=True)
        _check_text("debtor_name", self.debtor_name, 140, required=True)
        _check_text("creditor_name", self.creditor_name, 140, required=True)
        _check_text("remittance_info", self.remittance_info, 140, required=False)
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise TypeError("amount_minor must be an int (minor units)")
        if self.amount_minor <= 0:
            raise ValueError("amount_minor must be positive")
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise ValueError("currency must be an ISO 4217 code such as 'EUR'")
        if self.created_at.tzinfo is None or self.created_at.utcoffset() is None:
            raise ValueError("created_at must be timezone-aware")


@dataclass(frozen=True, slots=True)
class ParsedTransaction:
    """The fields of one CdtTrfTxInf the platform and the bank simulator act on."""

    end_to_end_id: str
    amount_minor: int
    currency: str
    creditor_name: str | None
    creditor_iban: str | None
    debtor_iban: str | None
    creditor_bic: str | None = None
    remittance_info: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedPacs008:
    """A validated pacs.008: its group header and transactions."""

    message_id: str
    created_at: datetime
    transactions: list[ParsedTransaction] = field(default_factory=list)


def _path(parent: etree._Element, *tags: str) -> etree._Element:
    element = parent
    for tag in tags:
        element = _sub(element, tag)
    return element


def build_pacs008(ct: CreditTransfer) -> bytes:
    """Serialise `ct` as an XSD-valid pacs.008.001.08 document (UTF-8, with declaration).

    Raises `SchemaError` if the result does not validate (e.g. an IBAN or BIC that does not
    match the ISO pattern), so nothing invalid ever leaves the platform.
    """
    document, transfer, header = message_skeleton(
        NS, "FIToFICstmrCdtTrf", ct.message_id, ct.created_at
    )
    _sub(header, "NbOfTxs", "1")
    _sub(_sub(header, "SttlmInf"), "SttlmMtd", "CLRG")

    tx = _sub(transfer, "CdtTrfTxInf")
    payment_id = _sub(tx, "PmtId")
    _sub(payment_id, "InstrId", ct.end_to_end_id)
    _sub(payment_id, "EndToEndId", ct.end_to_end_id)
    _sub(payment_id, "TxId", ct.end_to_end_id)
    amount = _sub(tx, "IntrBkSttlmAmt", format_amount(ct.amount_minor, ct.currency))
    amount.set("Ccy", ct.currency)
    _sub(tx, "ChrgBr", "SLEV")
    _sub(_sub(tx, "Dbtr"), "Nm", _epc(ct.debtor_name))
    _sub(_path(tx, "DbtrAcct", "Id"), "IBAN", ct.debtor_iban)
    _sub(_path(tx, "DbtrAgt", "FinInstnId"), "BICFI", ct.debtor_bic)
    creditor_agent = _path(tx, "CdtrAgt", "FinInstnId")
    if ct.creditor_bic:
        _sub(creditor_agent, "BICFI", ct.creditor_bic)
    else:
        # SEPA is IBAN-only: the creditor agent is known to be unknown
        _sub(_sub(creditor_agent, "Othr"), "Id", "NOTPROVIDED")
    _sub(_sub(tx, "Cdtr"), "Nm", _epc(ct.creditor_name))
    _sub(_path(tx, "CdtrAcct", "Id"), "IBAN", ct.creditor_iban)
    if ct.remittance_info:
        _sub(_sub(tx, "RmtInf"), "Ustrd", _epc(ct.remittance_info, SEPA_REMITTANCE_LENGTH))

    xml = serialize(document)
    validate(xml, PACS008)
    return xml


def parse_pacs008(xml: bytes) -> ParsedPacs008:
    """Validate `xml` against the pacs.008.001.08 XSD and extract its transactions.

    Raises `SchemaError` for malformed or invalid documents, and for amounts with more
    decimals than the currency allows.
    """
    root = validated_root(xml, PACS008)
    header = root.find("d:FIToFICstmrCdtTrf/d:GrpHdr", namespaces=_NSMAP)
    assert header is not None  # guaranteed by the XSD
    message_id = _text(header, "d:MsgId") or ""
    created_at = parse_iso_datetime(_text(header, "d:CreDtTm") or "")

    transactions: list[ParsedTransaction] = []
    for tx in root.iterfind("d:FIToFICstmrCdtTrf/d:CdtTrfTxInf", namespaces=_NSMAP):
        amount = tx.find("d:IntrBkSttlmAmt", namespaces=_NSMAP)
        assert amount is not None and amount.text is not None  # guaranteed by the XSD
        currency = amount.get("Ccy", "")
        try:
            amount_minor = parse_amount(amount.text, currency)
        except ValueError as exc:
            raise SchemaError(str(exc)) from None
        transactions.append(
            ParsedTransaction(
                end_to_end_id=_text(tx, "d:PmtId/d:EndToEndId") or "",
                amount_minor=amount_minor,
                currency=currency,
                creditor_name=_text(tx, "d:Cdtr/d:Nm"),
                creditor_iban=_text(tx, "d:CdtrAcct/d:Id/d:IBAN"),
                debtor_iban=_text(tx, "d:DbtrAcct/d:Id/d:IBAN"),
                creditor_bic=_text(tx, "d:CdtrAgt/d:FinInstnId/d:BICFI"),
                remittance_info=_text(tx, "d:RmtInf/d:Ustrd"),
            )
        )
    return ParsedPacs008(message_id=message_id, created_at=created_at, transactions=transactions)
