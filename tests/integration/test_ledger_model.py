"""The PostgreSQL ledger against an independent in-memory model of its specification.

A Hypothesis state machine drives both with the same accounts, batches, clock and expiry
runs, and after every step compares every result code and every account's balances (see
`tests/integration/ledger_model.py` for the model and the readings it chose).

The state machine is synchronous: it owns a private event loop and an engine on a database
of its own (the platform's maintenance schedule on the shared one would expire its holds).
Every run uses fresh ids (a uuid prefix) and compares only its own accounts. The ledger clock
is a shared one in the year 2000 that only moves forward across runs, and each run expires
all of its timed pendings at teardown, so one run's expiry never counts another run's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import Callable, Coroutine, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ledger import (
    Account,
    Transfer,
    TransferKind,
    TransferResult,
    create_accounts,
    create_transfer,
    create_transfers,
    expire_pending_transfers,
    failure_of,
    get_account,
    verify_ledger,
)
from ledger.models import AccountSpec
from ledger.tables import ledger_accounts, ledger_entries
from tests.integration.ledger_model import LedgerModel

T = TypeVar("T")
K = TransferKind

CURRENCIES = ("EUR", "USD")
ACCOUNT_KINDS = ("settlement", "funding", "fees", "blocked_funds")  # no owner needed
# (debits_must_not_exceed_credits, credits_must_not_exceed_debits)
FLAGS = ((False, False), (True, False), (False, True))
ACCOUNT_PARAMS = st.tuples(
    st.sampled_from(CURRENCIES),
    st.one_of(st.just(FLAGS[0]), st.sampled_from(FLAGS)),  # two in three without limits
    st.sampled_from(ACCOUNT_KINDS),
)
MAX_TIMEOUT = 20

SETTINGS = settings(
    max_examples=50,
    stateful_step_count=40,
    deadline=None,
    report_multiple_bugs=False,  # shrink the first bug only: each step is a database round trip
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class _Clock:
    """The ledger clock shared by all runs: far in the past, and only ever moving forward."""

    now = datetime(2000, 1, 1, tzinfo=UTC)


def often(
    common: st.SearchStrategy[T], rare: st.SearchStrategy[T], one_in: int = 6
) -> st.SearchStrategy[T]:
    """`common`, except once in `one_in` draws `rare` (shrinks towards `common`)."""
    return st.integers(1, one_in).flatmap(lambda n: rare if n == one_in else common)


def other_currency(currency: str | None) -> str:
    return "USD" if currency == "EUR" else "EUR"


@dataclasses.dataclass(frozen=True)
class Shape:
    """What the state machine knows of a transfer it may refer to."""

    debit_account_id: str | None
    credit_account_id: str | None
    amount: int | None
    currency: str | None


ROUTES_FOR_ONE = ("create_transfer", "create_transfers", "batch function")
_BATCH_FUNCTION = text("SELECT ledger_create_transfers(CAST(:events AS jsonb), :now)")


async def through_the_batch_function(
    engine: AsyncEngine, batch: Sequence[Transfer], now: datetime
) -> list[TransferResult]:
    """`batch` straight into ledger_create_transfers (the API sends a batch of one elsewhere)."""
    events = json.dumps([{**dataclasses.asdict(t), "kind": t.kind.value} for t in batch])
    async with engine.begin() as conn:
        codes = (await conn.execute(_BATCH_FUNCTION, {"events": events, "now": now})).scalar_one()
    return [TransferResult(code) for code in codes]


class LedgerMachine(RuleBasedStateMachine):
    """Real ledger and model side by side."""

    loop: ClassVar[asyncio.AbstractEventLoop]
    engine: ClassVar[AsyncEngine]

    def __init__(self) -> None:
        super().__init__()
        self.prefix = f"lm{uuid.uuid4().hex[:10]}"
        self.model = LedgerModel()
        self.now = _Clock.now
        self.account_ids: list[str] = []
        self.requests: list[Transfer] = []  # every event submitted, for repeats
        self.batches: list[list[Transfer]] = []  # every batch submitted, for retries
        self.pending_ids: list[str] = []  # ids of every pending request submitted
        self.shapes: dict[str, Shape] = {}  # id -> latest request's fields
        self.counter = 0

    # plumbing -----------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def new_id(self, what: str) -> str:
        self.counter += 1
        return f"{self.prefix}-{what}{self.counter}"

    @property
    def missing_account(self) -> str:
        return f"{self.prefix}-missing"

    def submit(self, batch: Sequence[Transfer], data: st.DataObject | None = None) -> None:
        """Apply `batch` to model and ledger and compare the results.

        A batch of one goes, as drawn, through `create_transfer`, through `create_transfers`
        (both use the single-event function) or straight into the batch function, so that
        both SQL implementations answer to the model for every kind of single event.
        """
        batch = list(batch)
        route = "create_transfers"
        if len(batch) == 1 and data is not None:
            route = data.draw(st.sampled_from(ROUTES_FOR_ONE), label="route")
        note(f"now={self.now.isoformat()} batch={batch} route={route}")
        expected = self.model.create_transfers(batch, self.now)
        if route == "create_transfer":
            actual = [self.run(create_transfer(self.engine, batch[0], now=self.now))]
        elif route == "batch function":
            actual = self.run(through_the_batch_function(self.engine, batch, self.now))
        else:
            actual = list(self.run(create_transfers(self.engine, batch, now=self.now)))
        for t in batch:
            self.requests.append(t)
            if t.kind is K.PENDING and t.id not in self.pending_ids:
                self.pending_ids.append(t.id)
            self.shapes[t.id] = Shape(t.debit_account_id, t.credit_account_id, t.amount, t.currency)
        self.batches.append(batch)
        assert [TransferResult(r) for r in actual] == expected, (
            f"results differ at now={self.now.isoformat()}\n batch:    {batch}\n"
            f" expected: {[r.value for r in expected]}\n"
            f" actual:   {[TransferResult(r).value for r in actual]}"
        )

    def shape_of(self, transfer_id: str | None) -> Shape | None:
        stored = self.model.transfers.get(transfer_id or "")
        if stored is not None:
            return Shape(
                stored.debit_account_id, stored.credit_account_id, stored.amount, stored.currency
            )
        return self.shapes.get(transfer_id or "")

    # drawing events -----------------------------------------------------------------------
    # New events are valid four times in five (then only the limits decide), else one or two
    # things about them are broken, named in the Hypothesis output.

    def draw_broken(
        self, data: st.DataObject, t: Transfer, breakages: dict[str, Callable[[Transfer], Transfer]]
    ) -> Transfer:
        """`t` as is, or with one thing broken, or two (which checks the order of the checks)."""
        count = data.draw(often(st.just(0), often(st.just(1), st.just(2), 3), 5))
        names = data.draw(
            st.lists(st.sampled_from(sorted(breakages)), min_size=count, max_size=count),
            label="broken",
        )
        for name in names:
            t = breakages[name](t)
        return t

    def draw_new(self, data: st.DataObject, kind: TransferKind, linked: bool) -> Transfer:
        """A new single or pending transfer."""
        debit = data.draw(st.sampled_from(self.account_ids), label="debit")
        currency = self.model.accounts[debit].currency
        others = [a for a in self.account_ids if a != debit]
        partners = [a for a in others if self.model.accounts[a].currency == currency]
        credit = data.draw(st.sampled_from(partners or others), label="credit")
        amount = data.draw(often(st.integers(1, 12), self.limit_amounts(debit, credit), 3))
        timeout = 0
        if kind is K.PENDING:
            timeout = data.draw(st.one_of(st.just(0), st.integers(1, MAX_TIMEOUT)), label="timeout")
        t = Transfer(
            self.new_id("t"),
            debit,
            credit,
            amount,
            currency,
            "c1",
            kind,
            timeout_seconds=timeout,
            linked=linked,
        )
        foreign = [a for a in others if self.model.accounts[a].currency != currency]
        r = dataclasses.replace
        breakages: dict[str, Callable[[Transfer], Transfer]] = {
            "amount 0": lambda t: r(t, amount=0),
            "negative amount": lambda t: r(t, amount=-2),
            "no amount": lambda t: r(t, amount=None),
            "same accounts": lambda t: r(t, credit_account_id=t.debit_account_id),
            "unknown debit account": lambda t: r(t, debit_account_id=self.missing_account),
            "unknown credit account": lambda t: r(t, credit_account_id=self.missing_account),
            "other currency": lambda t: r(t, currency=other_currency(currency)),
            "no currency": lambda t: r(t, currency=None),
            "accounts in two currencies": lambda t: r(
                t, credit_account_id=(foreign or [credit])[0]
            ),
            "timeout on a single": lambda t: r(t, timeout_seconds=5) if kind is K.SINGLE else t,
            "pending_id given": lambda t: r(t, pending_id=(self.pending_ids or ["x"])[-1]),
        }
        return self.draw_broken(data, t, breakages)

    def limit_amounts(self, debit: str, credit: str) -> st.SearchStrategy[int]:
        """Amounts right at a limit of the accounts (or anything small, without limits)."""
        d, c = self.model.accounts[debit], self.model.accounts[credit]
        room = []
        if d.debits_must_not_exceed_credits:
            room.append(d.credits_posted - d.debits_posted - d.debits_pending)
        if c.credits_must_not_exceed_debits:
            room.append(c.debits_posted - c.credits_posted - c.credits_pending)
        amounts = sorted({a for r in room for a in (r, r + 1) if a > 0})
        return st.sampled_from(amounts) if amounts else st.integers(1, 12)

    def draw_resolution(
        self,
        data: st.DataObject,
        kind: TransferKind,
        linked: bool,
        batch_pendings: list[str],
        *,
        wild: bool = False,
    ) -> Transfer:
        """A post or void of an unresolved pending, with or without its fields.

        `wild`: of any pending, resolved or not, with every field independently left out,
        right or wrong (so that several checks fail at once and their order shows).
        """
        transfer_id = self.new_id("r")
        candidates = self.live_pendings() + batch_pendings
        if wild:
            candidates = [x.id for x in self.model.transfers.values() if x.kind is K.PENDING]
        pending_id = (
            data.draw(st.sampled_from(candidates), label="pending_id") if candidates else None
        )
        shape = self.shape_of(pending_id) or Shape(None, None, None, None)
        p = shape.amount if shape.amount and shape.amount > 0 else 5
        amounts: list[int | None] = [None, p]
        if kind is K.POST_PENDING:
            amounts += [max(1, p - 1), 1]
        if wild:
            amounts += [p + 1, 0]
        amount = data.draw(st.sampled_from(amounts), label="amount")
        debit, credit, currency = (
            data.draw(st.sampled_from([None, given, wrong] if wild else [None, given]), label=name)
            for name, given, wrong in (
                (
                    "debit",
                    shape.debit_account_id,
                    self.other_account(shape.debit_account_id),
                ),
                (
                    "credit",
                    shape.credit_account_id,
                    self.other_account(shape.credit_account_id),
                ),
                ("currency", shape.currency, other_currency(shape.currency)),
            )
        )
        t = Transfer(
            transfer_id,
            debit,
            credit,
            amount,
            currency,
            "c1",
            kind,
            pending_id=pending_id,
            linked=linked,
        )
        resolved = list(self.model.resolutions)
        non_pending = [x.id for x in self.model.transfers.values() if x.kind is not K.PENDING]
        r = dataclasses.replace
        breakages: dict[str, Callable[[Transfer], Transfer]] = {
            "no pending_id": lambda t: r(t, pending_id=None),
            "own id as pending_id": lambda t: r(t, pending_id=transfer_id),
            "unknown pending_id": lambda t: r(t, pending_id=f"{self.prefix}-nope"),
            "any pending request": lambda t: r(t, pending_id=(self.pending_ids or ["x"])[-1]),
            "resolved pending": lambda t: r(t, pending_id=(resolved or ["x"])[-1]),
            "not a pending": lambda t: r(t, pending_id=(non_pending or ["x"])[-1]),
            "timeout given": lambda t: r(t, timeout_seconds=3),
            "amount 0": lambda t: r(t, amount=0),
            "negative amount": lambda t: r(t, amount=-1),
            "amount above the pending": lambda t: r(t, amount=p + 1),
            "amount below the pending": lambda t: r(t, amount=p - 1 if p > 1 else p + 1),
            "other debit account": lambda t: r(
                t, debit_account_id=self.other_account(shape.debit_account_id)
            ),
            "other credit account": lambda t: r(
                t, credit_account_id=self.other_account(shape.credit_account_id)
            ),
            "other currency": lambda t: r(t, currency=other_currency(shape.currency)),
        }
        if not candidates:  # nothing to resolve: something is broken anyway
            name = data.draw(st.sampled_from(sorted(breakages)), label="broken")
            t = breakages[name](t)
        return self.draw_broken(data, t, breakages)

    def draw_repeat(self, data: st.DataObject, pool: Sequence[Transfer]) -> Transfer:
        """A resubmission of an earlier event: identical, or with one field changed."""
        stored = [t for t in pool if t.id in self.model.transfers]
        original: Transfer = data.draw(
            often(st.sampled_from(stored), st.sampled_from(pool), 3)
            if stored
            else st.sampled_from(pool),
            label="repeat of",
        )
        r = dataclasses.replace
        mutations: dict[str, Callable[[Transfer], Transfer]] = {
            "identical": lambda t: t,
            "linked flipped": lambda t: r(t, linked=not t.linked),
            "pending/single swapped": lambda t: r(
                t, kind=K.PENDING if t.kind is not K.PENDING else K.SINGLE
            ),
            "post/void swapped": lambda t: r(
                t, kind=K.VOID_PENDING if t.kind is K.POST_PENDING else K.POST_PENDING
            ),
            "pending_id changed": lambda t: r(
                t, pending_id=None if t.pending_id else (self.pending_ids or ["x"])[0]
            ),
            "timeout changed": lambda t: r(t, timeout_seconds=t.timeout_seconds + 1),
            "debit changed": lambda t: r(
                t, debit_account_id=self.other_account(t.debit_account_id)
            ),
            "credit changed": lambda t: r(
                t, credit_account_id=self.other_account(t.credit_account_id)
            ),
            "amount changed": lambda t: r(t, amount=(t.amount or 0) + 1),
            "currency changed": lambda t: r(t, currency=other_currency(t.currency)),
            "code changed": lambda t: r(t, code="c2"),
            "inherited fields left None": self.inherit_all,
            "inherited fields spelled out": self.spell_out,
        }
        name = data.draw(
            often(st.just("identical"), st.sampled_from(list(mutations)), 2), label="mutation"
        )
        return mutations[name](original)

    def other_account(self, account_id: str | None) -> str:
        others = [a for a in self.account_ids if a != account_id]
        return others[0] if others else self.missing_account

    @staticmethod
    def inherit_all(t: Transfer) -> Transfer:
        """A post/void retried with every inheritable field left None."""
        if t.kind not in (K.POST_PENDING, K.VOID_PENDING):
            return t
        return dataclasses.replace(
            t, debit_account_id=None, credit_account_id=None, amount=None, currency=None
        )

    def spell_out(self, t: Transfer) -> Transfer:
        """A post/void retried with every inherited field given as the ledger resolved it."""
        stored = self.model.transfers.get(t.id)
        if t.kind not in (K.POST_PENDING, K.VOID_PENDING) or stored is None:
            return t
        return dataclasses.replace(
            t,
            debit_account_id=stored.debit_account_id,
            credit_account_id=stored.credit_account_id,
            amount=stored.amount,
            currency=stored.currency,
        )

    def draw_event(self, data: st.DataObject, linked: bool, batch: list[Transfer]) -> Transfer:
        choices = ["single", "pending", "post", "void"]
        if self.requests or batch:
            choices.append("repeat")
        what = data.draw(st.sampled_from(choices), label="event")
        if what in ("single", "pending"):
            return self.draw_new(data, K.SINGLE if what == "single" else K.PENDING, linked)
        if what in ("post", "void"):
            kind = K.POST_PENDING if what == "post" else K.VOID_PENDING
            batch_pendings = [t.id for t in batch if t.kind is K.PENDING]
            return self.draw_resolution(data, kind, linked, batch_pendings)
        repeat = self.draw_repeat(data, [*self.requests[-30:], *batch])
        return dataclasses.replace(repeat, linked=linked)

    # rules --------------------------------------------------------------------------------

    @initialize(params=st.lists(ACCOUNT_PARAMS, min_size=2, max_size=4))
    def open_accounts(self, params: list[tuple[str, tuple[bool, bool], str]]) -> None:
        """One account without limits per currency, a few random ones, limited ones funded."""
        self.add_accounts([(c, FLAGS[0], "funding") for c in CURRENCIES] + params)
        funding = []
        for account in list(self.model.accounts.values())[len(CURRENCIES) :]:
            source = self.account_ids[CURRENCIES.index(account.currency)]
            if account.debits_must_not_exceed_credits:
                funding.append((source, account.id, account.currency))
            if account.credits_must_not_exceed_debits:
                funding.append((account.id, source, account.currency))
        if funding:
            self.submit(
                [Transfer(self.new_id("f"), d, c, 10, ccy, "fund") for d, c, ccy in funding]
            )

    @rule(params=ACCOUNT_PARAMS)
    def open_account(self, params: tuple[str, tuple[bool, bool], str]) -> None:
        self.add_accounts([params])

    def add_accounts(self, params: list[tuple[str, tuple[bool, bool], str]]) -> None:
        specs = [
            AccountSpec(
                self.new_id("a"),
                currency,
                kind,
                debits_must_not_exceed_credits=dmnec,
                credits_must_not_exceed_debits=cmned,
            )
            for currency, (dmnec, cmned), kind in params
        ]
        note(f"accounts {specs}")
        self.run(create_accounts(self.engine, specs))
        self.model.create_accounts(specs)
        self.account_ids.extend(spec.id for spec in specs)
        for spec, account in zip(specs, self.run(self.fetch(s.id for s in specs)), strict=True):
            assert account is not None, spec
            assert (
                account.currency,
                account.kind,
                account.debits_must_not_exceed_credits,
                account.credits_must_not_exceed_debits,
            ) == (
                spec.currency,
                spec.kind,
                spec.debits_must_not_exceed_credits,
                spec.credits_must_not_exceed_debits,
            )

    @rule(data=st.data(), pending=st.booleans())
    def single_or_pending(self, data: st.DataObject, pending: bool) -> None:
        transfer = self.draw_new(data, K.PENDING if pending else K.SINGLE, False)
        self.submit([transfer], data)

    def live_pendings(self) -> list[str]:
        return [
            p.id
            for p in self.model.transfers.values()
            if p.kind is K.PENDING and p.id not in self.model.resolutions
        ]

    @precondition(lambda self: bool(self.live_pendings()))
    @rule(data=st.data(), post=st.booleans())
    def post_or_void(self, data: st.DataObject, post: bool) -> None:
        kind = K.POST_PENDING if post else K.VOID_PENDING
        self.submit([self.draw_resolution(data, kind, False, [])], data)

    @precondition(lambda self: any(p.kind is K.PENDING for p in self.model.transfers.values()))
    @rule(data=st.data(), post=st.booleans())
    def post_or_void_wildly(self, data: st.DataObject, post: bool) -> None:
        kind = K.POST_PENDING if post else K.VOID_PENDING
        self.submit([self.draw_resolution(data, kind, False, [], wild=True)], data)

    @rule(
        data=st.data(),
        size=st.integers(2, 4),
        shape=often(
            st.sampled_from(["one chain", "chains and single events"]),
            st.just("chain left open"),
            5,
        ),
    )
    def batch(self, data: st.DataObject, size: int, shape: str) -> None:
        if shape == "one chain":
            flags = [True] * (size - 1) + [False]
        elif shape == "chain left open":
            flags = data.draw(st.lists(st.booleans(), min_size=size - 1, max_size=size - 1))
            flags.append(True)
        else:
            flags = data.draw(st.lists(st.booleans(), min_size=size - 1, max_size=size - 1))
            flags.append(False)
        events: list[Transfer] = []
        for linked in flags:
            e = self.draw_event(data, linked, events)
            events.append(e)  # later events may post or void a pending drawn here
            self.shapes[e.id] = Shape(e.debit_account_id, e.credit_account_id, e.amount, e.currency)
        self.submit(events)

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data())
    def repeat(self, data: st.DataObject) -> None:
        self.submit([self.draw_repeat(data, self.requests)], data)

    @precondition(lambda self: bool(self.batches))
    @rule(data=st.data())
    def retry_batch(self, data: st.DataObject) -> None:
        """A whole batch again: mostly one that took effect, so it answers EXISTS throughout."""
        applied = [b for b in self.batches if all(t.id in self.model.transfers for t in b)]
        batches = st.sampled_from(self.batches)
        self.submit(
            data.draw(
                often(st.sampled_from(applied), batches, 3) if applied else batches,
                label="retried batch",
            ),
            data,
        )

    @precondition(lambda self: bool(self.model.failed))
    @rule(data=st.data())
    def retry_failed_id(self, data: st.DataObject) -> None:
        failed_id = data.draw(st.sampled_from(sorted(self.model.failed)), label="failed id")
        original = next(r for r in reversed(self.requests) if r.id == failed_id)
        self.submit([self.draw_repeat(data, [original])], data)
        actual = self.run(failure_of(self.engine, failed_id))
        assert actual == self.model.failed[failed_id], (failed_id, actual)

    @rule(seconds=st.integers(1, 30))
    def advance_clock(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    def future_expiries(self) -> list[datetime]:
        return sorted(
            p.expires_at
            for p in self.model.unresolved_expiring_pendings()
            if p.expires_at is not None and p.expires_at > self.now
        )

    @precondition(lambda self: bool(self.future_expiries()))
    @rule(data=st.data())
    def advance_clock_to_an_expiry(self, data: st.DataObject) -> None:
        self.now = data.draw(st.sampled_from(self.future_expiries()), label="expiry")

    @rule()
    def expire(self) -> None:
        expected = self.model.expire_pending_transfers(self.now)
        actual = self.run(expire_pending_transfers(self.engine, now=self.now))
        assert actual == expected, f"expired at {self.now}: expected {expected}, got {actual}"

    # checks -------------------------------------------------------------------------------

    async def fetch(self, ids: Iterable[str]) -> list[Account | None]:
        async with self.engine.connect() as conn:
            return [await get_account(conn, account_id) for account_id in ids]

    def compare(self, actual: dict[str, tuple[int, ...]], source: str) -> None:
        for account_id in self.account_ids:
            expected = self.model.accounts[account_id].state()
            got = actual.get(account_id)
            assert got == expected, (
                f"{source} of {account_id} (debits_pending, debits_posted, credits_pending,"
                f" credits_posted, version): expected {expected}, got {got}"
            )

    async def balances_and_last_entries(
        self,
    ) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
        """Every account's balances (summed over shards, as `get_account` does) and the
        balances recorded by its latest entry, in two queries: this runs after every step."""
        a, e = ledger_accounts.c, ledger_entries.c
        owner = func.coalesce(a.parent_id, a.id)
        columns = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")
        ids = self.account_ids
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(owner, *(func.sum(a[c]) for c in (*columns, "version")))
                .where(or_(a.id.in_(ids), a.parent_id.in_(ids)))
                .group_by(owner)
            )
            balances = {row[0]: tuple(int(x) for x in row[1:]) for row in rows}
            latest = ledger_entries.alias("latest")
            last_version = (
                select(func.max(latest.c.version))
                .where(latest.c.account_id == e.account_id)
                .scalar_subquery()
            )
            rows = await conn.execute(
                select(e.account_id, *(e[c] for c in columns), e.version).where(
                    e.account_id.in_(ids), e.version == last_version
                )
            )
            entries = {row[0]: tuple(int(x) for x in row[1:]) for row in rows}
        return balances, entries

    @invariant()
    def balances_match(self) -> None:
        balances, entries = self.run(self.balances_and_last_entries())
        self.compare(balances, "balances")
        for account_id in self.account_ids:  # an account without entries has none
            entries.setdefault(account_id, (0, 0, 0, 0, 0))
        self.compare(entries, "latest entry")

    def balances_match_through_the_api(self) -> None:
        accounts = self.run(self.fetch(self.account_ids))
        self.compare(
            {
                account.id: (
                    account.debits_pending,
                    account.debits_posted,
                    account.credits_pending,
                    account.credits_posted,
                    account.version,
                )
                for account in accounts
                if account is not None
            },
            "get_account",
        )

    def teardown(self) -> None:
        try:
            # Expire whatever this run left pending with a timeout, so that no later run's
            # expiry counts it; then check the whole ledger.
            end = max(
                [self.now]
                + [
                    p.expires_at
                    for p in self.model.unresolved_expiring_pendings()
                    if p.expires_at is not None
                ]
            )
            expected = self.model.expire_pending_transfers(end)
            actual = self.run(expire_pending_transfers(self.engine, now=end))
            _Clock.now = end + timedelta(hours=1)
            assert actual == expected, f"final expiry: expected {expected}, got {actual}"
            self.balances_match()
            self.balances_match_through_the_api()
            for transfer_id in {r.id for r in self.requests}:
                want = self.model.failed.get(transfer_id)
                got = self.run(failure_of(self.engine, transfer_id))
                assert got == want, f"failure_of({transfer_id}): expected {want}, got {got}"
            report = self.run(verify_ledger(self.engine))
            assert report.ok, report.problems
        finally:
            _Clock.now = max(_Clock.now, self.now + timedelta(hours=1))


def test_ledger_matches_its_model(isolated_database_url: str) -> None:
    loop = asyncio.new_event_loop()
    # its own database: the platform's maintenance schedule must not expire the model's holds
    engine = create_async_engine(isolated_database_url, pool_size=2, max_overflow=2)
    LedgerMachine.loop = loop
    LedgerMachine.engine = engine
    try:
        run_state_machine_as_test(LedgerMachine, settings=SETTINGS)
    finally:
        loop.run_until_complete(engine.dispose())
        loop.close()
