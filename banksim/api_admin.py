"""Admin endpoints for tests and demos: rules, faults, the clock, statement adjustments,
incoming credits."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Literal, Self

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, model_validator

from banksim.api_rails import get_bank
from banksim.clock import to_datetime
from banksim.faults import FaultConfig
from banksim.problems import problem
from banksim.recalls import ACCEPT_CODE, ACH_RECALL_RULES, RECALL_RULES
from banksim.statements import CURRENCIES, book_incoming_credit
from banksim.store import Rule, normalize_iban
from banksim.vop import VOP_CLOSE_MATCH, VOP_CODES, VOP_RULES
from nacha import CHANGE_CODES, RETURN_REASON_CODES

router = APIRouter(prefix="/v1/admin")

ISO_REASON = re.compile(r"[A-Z0-9]{4}")
Rail = Literal["sepa", "ach"]


class RuleIn(BaseModel):
    """A rule to inject: `{"creditor_iban", "reject_code"}` (SEPA reject, the original form)
    or `{"rail", "creditor_iban" | "account_number", "action", "code"}`.

    `action: "vop"` (SEPA) decides the bank's Verification-of-Payee answer for the IBAN:
    code MTCH (match), CMTC (close match, with `registered_name`), NMTC (no match) or NOAP
    (not possible: the service is unavailable). `action: "noc"` (ACH) settles entries to the
    account and sends a notification of change (COR entry) with code C01-C07 and
    `corrected_data` as NACHA lays it out for that code. `action: "recall"` decides the
    answer to a recall of a payment to the account: code ACCP accepts, any other code
    rejects with it (SEPA: a camt.029 reason such as NOOR, CUST, LEGL, AC04; ACH: the
    reversal entry is returned with that R-code), after `delay_seconds` (simulator seconds)."""

    rail: Rail | None = None
    creditor_iban: Annotated[str | None, Field(min_length=5, max_length=42)] = None
    account_number: Annotated[str | None, Field(min_length=1, max_length=17)] = None
    action: Literal["reject", "return", "vop", "noc", "recall"] | None = None
    code: Annotated[str | None, Field(pattern=r"^[A-Z0-9]{3,4}$")] = None
    reject_code: Annotated[str | None, Field(pattern=r"^[A-Z0-9]{4}$")] = None
    registered_name: Annotated[str | None, Field(min_length=1, max_length=140)] = None
    corrected_data: Annotated[str | None, Field(min_length=1, max_length=29)] = None
    delay_seconds: Annotated[float | None, Field(ge=0, le=30 * 86400)] = None


class RuleOut(BaseModel):
    """An injected rule."""

    rail: Rail
    creditor_iban: str | None
    account_number: str | None
    action: str
    code: str
    # the original form's field: the code of a reject rule
    reject_code: str | None
    created_at: datetime
    registered_name: str | None = None
    delay_seconds: float | None = None
    corrected_data: str | None = None

    @classmethod
    def of(cls, rule: Rule) -> RuleOut:
        """Build from the stored rule."""
        sepa = rule.rail in ("sepa", VOP_RULES, RECALL_RULES)
        return cls(
            rail="sepa" if sepa else "ach",
            creditor_iban=rule.match_key if sepa else None,
            account_number=None if sepa else rule.match_key,
            action=rule.action,
            code=rule.code,
            reject_code=rule.code if rule.action == "reject" else None,
            created_at=rule.created_at,
            registered_name=rule.detail if rule.action == "vop" else None,
            corrected_data=rule.detail if rule.action == "noc" else None,
            delay_seconds=float(rule.detail) if rule.action == "recall" and rule.detail else None,
        )


class RuleList(BaseModel):
    """All rules."""

    data: list[RuleOut]
    has_more: bool = False


def _rule_problem(detail: str) -> Response:
    return problem(400, "invalid_rule", "Invalid rule", detail)


def _vop_or_noc_rule(rule: RuleIn) -> tuple[str, str, str] | Response:
    """(rail, code, detail) of a Verification-of-Payee or notification-of-change rule, or
    the problem that refuses it."""
    if rule.action == "vop":
        if rule.rail != "sepa" or rule.creditor_iban is None:
            return _rule_problem("a vop rule is a SEPA rule with a creditor_iban")
        if rule.code not in VOP_CODES:
            return _rule_problem(f"a vop rule's code is one of {sorted(VOP_CODES)}")
        if (rule.code == VOP_CLOSE_MATCH) != (rule.registered_name is not None):
            return _rule_problem("registered_name goes with code CMTC, and only with it")
        return VOP_RULES, rule.code, rule.registered_name or ""
    if rule.rail != "ach" or rule.account_number is None:
        return _rule_problem("a noc rule is an ACH rule with an account_number")
    if rule.code not in CHANGE_CODES or rule.corrected_data is None:
        return _rule_problem("a noc rule needs a change code C01-C07 and corrected_data")
    return "ach", rule.code, rule.corrected_data


def _recall_rule(rule: RuleIn) -> tuple[str, str, str] | Response:
    """(rail key, match key, code) of a recall rule, or the problem with it."""
    code = rule.code or ""
    if rule.rail == "sepa" and rule.creditor_iban is not None:
        if code != ACCEPT_CODE and not ISO_REASON.fullmatch(code):
            return _rule_problem("a SEPA recall rule's code is ACCP or a reason such as NOOR")
        return RECALL_RULES, normalize_iban(rule.creditor_iban), code
    if rule.rail == "ach" and rule.account_number is not None:
        if code != ACCEPT_CODE and code not in RETURN_REASON_CODES:
            return _rule_problem("an ACH recall rule's code is ACCP or a NACHA return code")
        return ACH_RECALL_RULES, rule.account_number.strip(), code
    return _rule_problem("a recall rule names a SEPA creditor_iban or an ACH account_number")


@router.post("/rules", status_code=201, response_model=RuleOut)
async def add_rule(rule: RuleIn, request: Request) -> Response:
    """Reject (SEPA) or return (SEPA, ACH) every future payment to an account with a code."""
    store = get_bank(request).store
    if rule.action == "recall":
        recall = _recall_rule(rule)
        if isinstance(recall, Response):
            return recall
        recall_rail, recall_key, recall_code = recall
        delay = None if rule.delay_seconds is None else str(rule.delay_seconds)
        stored = store.add_rule(recall_rail, recall_key, "recall", recall_code, delay)
        return JSONResponse(RuleOut.of(stored).model_dump(mode="json"), 201)
    if rule.action in ("vop", "noc"):
        decided = _vop_or_noc_rule(rule)
        if isinstance(decided, Response):
            return decided
        rail, code, detail = decided
        assert rule.action is not None
        key = rule.creditor_iban if rule.action == "vop" else rule.account_number
        assert key is not None
        key = normalize_iban(key) if rule.action == "vop" else key.strip()
        stored = store.add_rule(rail, key, rule.action, code, detail or None)
        return JSONResponse(RuleOut.of(stored).model_dump(mode="json"), 201)
    if rule.reject_code is not None:
        if rule.creditor_iban is None or rule.rail not in (None, "sepa"):
            return _rule_problem("reject_code applies to SEPA rules with a creditor_iban")
        rail, key, action, code = "sepa", rule.creditor_iban, "reject", rule.reject_code
    else:
        if rule.rail is None or rule.action is None or rule.code is None:
            return _rule_problem("a rule needs rail, action and code (or the reject_code form)")
        rail, action, code = rule.rail, rule.action, rule.code
        if rail == "sepa":
            if rule.creditor_iban is None:
                return _rule_problem("a SEPA rule matches a creditor_iban")
            if not ISO_REASON.fullmatch(code):
                return _rule_problem(f"{code!r} is not an ISO reason code such as AC04")
            key = rule.creditor_iban
        else:
            if action != "return":
                return _rule_problem("ACH has no pre-settlement reject per entry: use return")
            if rule.account_number is None:
                return _rule_problem("an ACH rule matches an account_number")
            if code not in RETURN_REASON_CODES:
                return _rule_problem(f"{code!r} is not a NACHA return reason code")
            key = rule.account_number
    key = normalize_iban(key) if rail == "sepa" else key.strip()
    stored = store.add_rule(rail, key, action, code)
    return JSONResponse(RuleOut.of(stored).model_dump(mode="json"), 201)


@router.get("/rules")
async def list_rules(request: Request) -> RuleList:
    """The injected rules."""
    return RuleList(data=[RuleOut.of(rule) for rule in get_bank(request).store.list_rules()])


@router.delete("/rules")
async def clear_rules(request: Request) -> dict[str, int]:
    """Remove every rule."""
    return {"deleted": get_bank(request).store.clear_rules()}


@router.get("/faults")
async def get_faults(request: Request) -> FaultConfig:
    """The injected faults."""
    return get_bank(request).faults.config


@router.put("/faults")
async def set_faults(config: FaultConfig, request: Request) -> FaultConfig:
    """Replace every fault (omitted fields: no fault) and restart the random streams."""
    get_bank(request).faults.configure(config)
    return config


class ClockOut(BaseModel):
    """The simulator clock."""

    now: datetime
    speed: float


class ClockChange(ClockOut):
    """The clock after a change, and how many scheduled jobs fell due and ran."""

    jobs_run: int


class ClockIn(BaseModel):
    """Jump to `now` and/or run at `speed` simulated seconds per real second."""

    now: datetime | None = None
    speed: Annotated[float | None, Field(ge=0, le=1_000_000)] = None


class Advance(BaseModel):
    """Advance by `seconds`, or `to` the next ACH cut-off."""

    seconds: Annotated[float | None, Field(ge=0)] = None
    to: Literal["next_ach_cutoff"] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.seconds is None) == (self.to is None):
            raise ValueError("give exactly one of seconds and to")
        return self


def _clock_out(request: Request) -> ClockOut:
    bank = get_bank(request)
    return ClockOut(now=bank.clock.now(), speed=bank.clock.speed)


@router.get("/clock")
async def get_clock(request: Request) -> ClockOut:
    """Simulated now and speed."""
    return _clock_out(request)


@router.put("/clock")
async def set_clock(change: ClockIn, request: Request) -> ClockChange:
    """Set the simulated time and/or speed; whatever falls due runs before the answer."""
    bank = get_bank(request)
    now = change.now
    if now is not None and now.tzinfo is None:
        now = now.replace(tzinfo=UTC)  # a time without offset is UTC
    ran = bank.set_clock(now=now, speed=change.speed)
    return ClockChange(**_clock_out(request).model_dump(), jobs_run=ran)


@router.post("/clock/advance")
async def advance_clock(advance: Advance, request: Request) -> ClockChange:
    """Jump forward; whatever falls due runs before the answer."""
    bank = get_bank(request)
    if advance.seconds is not None:
        target = bank.now() + advance.seconds
    else:
        target = bank.calendar.next_cutoff(bank.clock.now()).timestamp()
    ran = bank.set_clock(now=to_datetime(target))
    return ClockChange(**_clock_out(request).model_dump(), jobs_run=ran)


class AdjustmentIn(BaseModel):
    """A discrepancy to plant in the statement of `date` for `rail`."""

    date: date
    rail: Rail
    action: Literal["drop", "add", "change_amount"]
    reference: Annotated[str | None, Field(min_length=1, max_length=35)] = None
    amount: Annotated[int | None, Field(ge=0)] = None
    currency: Annotated[str | None, Field(pattern=r"^[A-Z]{3}$")] = None

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.action in ("drop", "change_amount") and self.reference is None:
            raise ValueError(f"{self.action} needs the reference of the entry")
        if self.action in ("add", "change_amount") and self.amount is None:
            raise ValueError(f"{self.action} needs an amount (minor units)")
        return self


@router.post("/statement-adjustments", status_code=201)
async def add_adjustment(adjustment: AdjustmentIn, request: Request) -> dict[str, object]:
    """Alter what the statement of a date reports (drop, add, change an amount)."""
    stored = get_bank(request).store.add_adjustment(
        adjustment.date.isoformat(),
        adjustment.rail,
        adjustment.action,
        adjustment.reference,
        adjustment.amount,
        adjustment.currency,
    )
    return {
        "id": stored.id,
        "date": stored.booking_date,
        "rail": stored.rail,
        "action": stored.action,
        "reference": stored.reference,
        "amount": stored.amount_minor,
        "currency": stored.currency,
    }


class BookingOut(BaseModel):
    """One movement the bank booked on the platform's account (not altered by statement
    adjustments: these are the bank's real books)."""

    rail: Rail
    direction: Literal["DBIT", "CRDT"]
    booking_date: date
    booked_at: datetime
    # the SEPA message (pacs.008 MsgId) or the ACH file it was booked from
    message_id: str | None
    file_id: str | None
    # SEPA: the end-to-end id; ACH: the entry's individual id (the payment id)
    end_to_end_id: str | None
    # ACH only: the entry's trace number
    trace_number: str | None
    amount: int
    currency: str
    return_code: str | None


class BookingList(BaseModel):
    """The bank's bookings, oldest first."""

    data: list[BookingOut]
    has_more: bool = False


@router.get("/bookings")
async def list_bookings(
    request: Request,
    rail: Rail | None = None,
    direction: Literal["DBIT", "CRDT", "all"] = "DBIT",
) -> BookingList:
    """Every movement the bank booked (by default the debits: the payments it paid), so a test
    can count how often the bank paid one end-to-end id or trace number."""
    bookings = get_bank(request).store.all_bookings(rail, None if direction == "all" else direction)
    return BookingList(
        data=[
            BookingOut(
                rail="ach" if b.rail == "ach" else "sepa",
                direction="CRDT" if b.direction == "CRDT" else "DBIT",
                booking_date=date.fromisoformat(b.booking_date),
                booked_at=to_datetime(b.booked_at),
                message_id=b.source_id if b.rail == "sepa" else None,
                file_id=b.source_id if b.rail == "ach" else None,
                end_to_end_id=b.end_to_end_id,
                trace_number=b.tx_id if b.rail == "ach" else None,
                amount=b.amount_minor,
                currency=b.currency,
                return_code=b.return_code,
            )
            for b in bookings
        ]
    )


class IncomingCreditIn(BaseModel):
    """A credit someone pays into the platform's `rail` account, under their `reference`
    (the reference ops name as the deposit's `bank_reference`)."""

    rail: Rail
    amount: Annotated[int, Field(gt=0)]
    currency: Annotated[str | None, Field(pattern=r"^[A-Z]{3}$")] = None
    # camt.053 carries it as the EndToEndId: ISO Max35Text
    reference: Annotated[str, Field(min_length=1, max_length=35)]


@router.post("/incoming-credits", status_code=201)
async def add_incoming_credit(credit: IncomingCreditIn, request: Request) -> dict[str, object]:
    """Book an incoming credit on the platform's account now (bank time): it appears on
    that day's camt.053 statement as a CRDT entry (received credit transfer)."""
    booked = book_incoming_credit(
        get_bank(request),
        credit.rail,
        credit.amount,
        credit.currency or CURRENCIES[credit.rail],
        credit.reference,
    )
    return {
        "rail": booked.rail,
        "date": booked.booking_date,
        "amount": booked.amount_minor,
        "currency": booked.currency,
        "reference": booked.end_to_end_id,
    }
