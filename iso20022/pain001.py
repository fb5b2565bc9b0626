"""pain.001.001.09 (customer credit-transfer initiation): a batch of payments in one file.

The document is validated against the official XSD first (`SchemaError` refuses it whole);
then each `CdtTrfTxInf` is read into a `Transfer`: the plain fields a payment is made of,
with the line it starts on, so the caller can name an invalid one. Nothing here judges an
IBAN, an account or an amount beyond the schema: the platform's payment rules do.

Mapping (one batch may hold several `PmtInf` blocks):
- debtor account: `PmtInf/DbtrAcct/Id/Othr/Id`, the platform account id (`acc_…`);
- amount: `Amt/InstdAmt` (a decimal with `@Ccy`), kept as text for the caller to convert;
- creditor: `Cdtr/Nm`, `Cdtr/PstlAdr/Ctry`; `CdtrAcct/Id/IBAN` and `CdtrAgt/FinInstnId/BICFI`
  (SEPA), or `CdtrAcct/Id/Othr/Id` and `CdtrAgt/FinInstnId/ClrSysMmbId/MmbId` (ACH: account
  and routing number);
- reference: `PmtId/EndToEndId` (`NOTPROVIDED` is none); remittance: `RmtInf/Ustrd`.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from iso20022.schemas import PAIN001, namespace, validated_root

NS = {"p": namespace(PAIN001)}


@dataclass(frozen=True)
class Transfer:
    """One credit transfer of the file, as written (text, not yet judged)."""

    line: int
    account_id: str | None
    amount: str | None
    currency: str | None
    end_to_end_id: str | None
    creditor_name: str | None
    creditor_country: str | None
    iban: str | None
    bic: str | None
    routing_number: str | None
    account_number: str | None
    remittance_info: str | None


@dataclass(frozen=True)
class Initiation:
    """The file's message id and its transfers, in document order."""

    message_id: str
    transfers: list[Transfer]


def _text(element: etree._Element, path: str) -> str | None:
    found = element.find(path, NS)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _line(element: etree._Element) -> int:
    # lxml-stubs type `sourceline` oddly; it is an int (or None for a built tree)
    line: object = element.sourceline
    return line if isinstance(line, int) else 0


def parse(xml: bytes) -> Initiation:
    """Validate `xml` as pain.001.001.09 and read its transfers (`SchemaError` if invalid)."""
    root = validated_root(xml, PAIN001)
    initiation = root.find("p:CstmrCdtTrfInitn", NS)
    assert initiation is not None  # the schema requires it
    transfers: list[Transfer] = []
    for block in initiation.iterfind("p:PmtInf", NS):
        account_id = _text(block, "p:DbtrAcct/p:Id/p:Othr/p:Id")
        for tx in block.iterfind("p:CdtTrfTxInf", NS):
            amount = tx.find("p:Amt/p:InstdAmt", NS)
            reference = _text(tx, "p:PmtId/p:EndToEndId")
            remittance = [(node.text or "").strip() for node in tx.iterfind("p:RmtInf/p:Ustrd", NS)]
            transfers.append(
                Transfer(
                    line=_line(tx),
                    account_id=account_id,
                    amount=None if amount is None else (amount.text or "").strip(),
                    currency=None if amount is None else amount.get("Ccy"),
                    end_to_end_id=None if reference == "NOTPROVIDED" else reference,
                    creditor_name=_text(tx, "p:Cdtr/p:Nm"),
                    creditor_country=_text(tx, "p:Cdtr/p:PstlAdr/p:Ctry"),
                    iban=_text(tx, "p:CdtrAcct/p:Id/p:IBAN"),
                    bic=_text(tx, "p:CdtrAgt/p:FinInstnId/p:BICFI"),
                    routing_number=_text(tx, "p:CdtrAgt/p:FinInstnId/p:ClrSysMmbId/p:MmbId"),
                    account_number=_text(tx, "p:CdtrAcct/p:Id/p:Othr/p:Id"),
                    remittance_info=" ".join(part for part in remittance if part) or None,
                )
            )
    return Initiation(message_id=_text(initiation, "p:GrpHdr/p:MsgId") or "", transfers=transfers)


def build(
    message_id: str,
    account_id: str,
    transfers: list[dict[str, str]],
    *,
    created_at: str = "2026-12-07T09:00:00",
    execution_date: str = "2026-12-08",
) -> bytes:
    """A pain.001.001.09 document paying `transfers` (each: `end_to_end_id`, `amount`,
    `currency`, `name`, `country`, `iban` [+`bic`]) from the platform account `account_id`;
    for tests, the CLI's examples and the benchmark."""
    ns = NS["p"]

    def sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
        element = etree.SubElement(parent, f"{{{ns}}}{tag}")
        if text is not None:
            element.text = text
        return element

    document = etree.Element(f"{{{ns}}}Document", nsmap={None: ns})  # type: ignore[dict-item]
    initiation = sub(document, "CstmrCdtTrfInitn")
    header = sub(initiation, "GrpHdr")
    sub(header, "MsgId", message_id)
    sub(header, "CreDtTm", created_at)
    sub(header, "NbOfTxs", str(len(transfers)))
    sub(sub(header, "InitgPty"), "Nm", "Payments platform customer")
    block = sub(initiation, "PmtInf")
    sub(block, "PmtInfId", f"{message_id}-1")
    sub(block, "PmtMtd", "TRF")
    sub(sub(block, "ReqdExctnDt"), "Dt", execution_date)
    sub(sub(block, "Dbtr"), "Nm", "Payments platform customer")
    sub(sub(sub(sub(block, "DbtrAcct"), "Id"), "Othr"), "Id", account_id)
    sub(sub(sub(block, "DbtrAgt"), "FinInstnId"), "BICFI", "DEUTDEFFXXX")
    for transfer in transfers:
        tx = sub(block, "CdtTrfTxInf")
        sub(sub(tx, "PmtId"), "EndToEndId", transfer["end_to_end_id"])
        sub(sub(tx, "Amt"), "InstdAmt", transfer["amount"]).set("Ccy", transfer["currency"])
        if transfer.get("bic"):
            sub(sub(sub(tx, "CdtrAgt"), "FinInstnId"), "BICFI", transfer["bic"])
        creditor = sub(tx, "Cdtr")
        sub(creditor, "Nm", transfer["name"])
        sub(sub(creditor, "PstlAdr"), "Ctry", transfer["country"])
        sub(sub(sub(tx, "CdtrAcct"), "Id"), "IBAN", transfer["iban"])
        if transfer.get("remittance_info"):
            sub(sub(tx, "RmtInf"), "Ustrd", transfer["remittance_info"])
    text = etree.tostring(document, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return bytes(text)
