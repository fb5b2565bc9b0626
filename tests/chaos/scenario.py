"""The chaos scenario: payments in flight while workers, Temporal, PostgreSQL, the API and the
bank misbehave at random (seeded) moments; then every promise is checked.

`make chaos` runs it long (CHAOS_PAYMENTS=300); `make test` runs a short version. A failing
run prints its seed; `CHAOS_SEED=<seed>` replays the same schedule of faults.

Besides crashes, the bank is ambiguous on purpose (issue #15): it stores a submission and
then times out for longer than the platform's retry budget, answers 503 after storing,
never sends the final callback, and cannot answer status requests for a while. Cancels and
ops retries race submissions, and deposits are retried across an API crash. The platform
must then ask the bank rather than guess, and the invariants (test_chaos.py) check the
outcome from the bank's books as well as ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from ops.devstack import Stack
from tests.bank_client import bank_client
from tests.integration.helpers import TERMINAL, fresh_iban

RETRYABLE = (httpx.TransportError,)
SEPA_REJECT_IBAN = "FR1420041010050500013M02606"
# the creditor's bank sends these back after settlement (pacs.004, AC06)
SEPA_RETURN_IBAN = "NL91ABNA0417164300"
GOOD_IBAN = "DE89370400440532013000"

# The SEPA submission budget (workflows/payment.py `_submit_budget`, 5 attempts, 1-8 s apart)
# against the worker's 5 s HTTP timeout lasts about 40 s; a window of stored-then-hung
# submissions must outlast it, or every payment would get its answer on a later attempt and
# the status request (the point of the fault) would never be needed.
STORE_THEN_TIMEOUT_SECONDS = 45.0
# how long the bank hangs a stored submission: past the worker's 5 s HTTP timeout
HANG_SECONDS = 8.0
# stored-then-503 submissions whose status requests fail too: the budget (about 15 s of
# quick 503s) and the three quick status requests are spent while the window lasts, so
# payments wait in action_required / outcome_unknown and ask again on their own timer
UNANSWERABLE_SECONDS = 28.0
# the bank refuses every submission without keeping it: the budget runs out and the bank
# confirms it has no record (submission_failed), which ops retry or cancel
BANK_DOWN_SECONDS = 22.0
# These windows never overlap one another: the bank's three submission faults share one draw,
# so a stored-then-hung window would hide the other two (and they are what lead to
# outcome_unknown and submission_failed). They start early enough to end while payments
# still arrive.
LONG_EVENTS = {
    "bank_stores_then_times_out": STORE_THEN_TIMEOUT_SECONDS,
    "bank_unanswerable": UNANSWERABLE_SECONDS,
    "bank_down": BANK_DOWN_SECONDS,
}
SHORT_EVENTS = [
    "kill_worker",
    "kill_worker2",
    "restart_temporal",
    "restart_postgres",
    "bank_errors",
    "bank_timeouts",
    "bank_duplicate_callbacks",
    "bank_out_of_order",
    "bank_errors_after_store",
    "bank_drops_final_callbacks",
    "bank_ach_cutoff",
    "api_crash_mid_deposits",
]
# the reasons a partner recalls a payment for, and the bank's reasons to reject a recall
RECALL_REASONS = ("DUPL", "TECH")
RECALL_REJECT_CODES = ("LEGL", "CUST", "NOOR")
# the bank accepts a recall with this rule code
RECALL_ACCEPT = "ACCP"
# one round of faults per 150 payments, each round at least this long (the long windows
# back to back, and a little room around them)
ROUND_SECONDS = 100.0
# where overlapping windows meet, the ambiguous kinds keep their rate and the plain 503 gets
# what is left
SUBMISSION_RATES = ("timeout_rate", "error_after_store_rate", "error_rate")
# deposits sent while Temporal is down: each commits, then its answer waits on the start of
# its webhook delivery when the API is killed (committed, never answered)
DEPOSITS_STALLED = 4
# and a few sent just before the kill, caught wherever they are
DEPOSITS_IN_FLIGHT = 2


@dataclass
class Plan:
    """What to send and which faults to inject, all drawn from one seed."""

    seed: int
    payments: int
    duration: float
    ach_share: float = 0.2
    reject_share: float = 0.05
    return_share: float = 0.05
    # a cancel (partner) or an ops retry sent while the payment is being submitted
    cancel_share: float = 0.08
    retry_share: float = 0.05
    # SEPA payments the partner recalls once settled (at least one accepted, one rejected)
    recall_share: float = 0.05
    events: list[tuple[float, str]] = field(default_factory=list)
    # payment number -> (recall reason, the bank's answer: ACCP or the rejection's code)
    recalls: dict[int, tuple[str, str]] = field(default_factory=dict)

    @staticmethod
    def rounds_for(payments: int) -> int:
        """How many times each fault happens in a run of `payments`."""
        return max(1, payments // 150)

    @classmethod
    def sending_seconds(cls, payments: int) -> float:
        """How long payments keep arriving: every round's faults fit in it."""
        return max(ROUND_SECONDS * cls.rounds_for(payments), payments * 0.25)

    @classmethod
    def draw(cls, seed: int, payments: int) -> Plan:
        """Each round: the long bank windows one after another in a random order with random
        gaps, every other fault at a random moment of the round."""
        rng = random.Random(seed)
        duration = cls.sending_seconds(payments)
        plan = cls(seed, payments, duration)
        rounds = cls.rounds_for(payments)
        length = duration / rounds
        for round_ in range(rounds):
            start = round_ * length
            order = list(LONG_EVENTS)
            rng.shuffle(order)
            slack = max(0.0, length - 1.0 - sum(LONG_EVENTS.values()))
            gaps = sorted(rng.uniform(0.0, slack) for _ in order)
            at = start + 0.5
            previous = 0.0
            for kind, gap in zip(order, gaps, strict=True):
                at += gap - previous
                previous = gap
                plan.events.append((at, kind))
                at += LONG_EVENTS[kind]
            for kind in SHORT_EVENTS:
                plan.events.append((start + rng.uniform(0.5, length), kind))
        plan.events.sort()
        plan.recalls = cls.draw_recalls(seed, payments, plan.recall_share)
        return plan

    @staticmethod
    def draw_recalls(seed: int, payments: int, share: float) -> dict[int, tuple[str, str]]:
        """Which payments are recalled, why, and what the bank answers: a generator of its
        own, so a seed's faults and payments stay what they were before recalls."""
        rng = random.Random(f"{seed}:recalls")
        count = min(payments, max(2, round(payments * share)))
        answers = [RECALL_ACCEPT, rng.choice(RECALL_REJECT_CODES)]
        answers += [rng.choice((RECALL_ACCEPT, *RECALL_REJECT_CODES)) for _ in range(count - 2)]
        rng.shuffle(answers)
        chosen = sorted(rng.sample(range(payments), count))
        return {
            n: (rng.choice(RECALL_REASONS), answer)
            for n, answer in zip(chosen, answers, strict=True)
        }


# why the client had to try again, for the report: a transport error, a 5xx, or a 409 while
# the first request with the key is in flight (or died: it is taken over after 60 s), by
# method and route
CLIENT_RETRIES: Counter[str] = Counter()


async def http_retry(call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
    """Like a real client: retry transport errors, 5xx and in-flight 409s with the same key."""
    for attempt in range(120):
        try:
            response = await call()
        except RETRYABLE:
            CLIENT_RETRIES["transport error"] += 1
            await asyncio.sleep(min(2.0, 0.2 * (attempt + 1)))
            continue
        conflict = response.status_code == 409 and "in_progress" in response.text
        if response.status_code < 500 and not conflict:
            return response
        route = "/".join(
            "{id}" if "_" in part else part for part in response.request.url.path.split("/")
        )
        why = "409 in progress" if conflict else str(response.status_code)
        CLIENT_RETRIES[f"{why} {response.request.method} {route}"] += 1
        await asyncio.sleep(min(2.0, 0.2 * (attempt + 1)))
    raise AssertionError("the API never answered")


@dataclass
class Sent:
    """A payment as sent, and what should become of it."""

    payment_id: str
    rail: str
    amount: int
    expect: str  # settled | failed | returned
    account_id: str = ""
    # a cancel the API accepted (202): the payment may end canceled instead, if the bank
    # confirmed it had no record of it
    cancel_accepted: bool = False
    # a recall planned once it settles: its reason and the bank's answer (ACCP or a code)
    recall_reason: str = ""
    recall_answer: str = ""
    # the API took the recall (202, or 409 already recalled after a lost answer)
    recall_sent: bool = False


@dataclass
class DepositTry:
    """A deposit sent with a fixed Idempotency-Key while the API was killed."""

    key: str
    account_id: str
    currency: str
    amount: int
    # the first request's answer: the deposit id, or None when the crash cut it off
    first_id: str | None = None
    # every retry's answer (deposit id, whether the API said it replayed)
    retries: list[tuple[str, bool]] = field(default_factory=list)
    # sent and answered before anything failed (the comparison for the others)
    control: bool = False


@dataclass
class Tally:
    """What the chaos did, for the report."""

    cancels: Counter[str] = field(default_factory=Counter)  # by HTTP status
    retries: Counter[str] = field(default_factory=Counter)
    # every action_reason a payment was seen waiting with
    reasons: dict[str, set[str]] = field(default_factory=dict)
    deposits: list[DepositTry] = field(default_factory=list)
    # recalls: why none was sent (the payment never settled), or the API's answer
    recalls: Counter[str] = field(default_factory=Counter)


class FaultBoard:
    """The bank's faults as the union of every fault window open now.

    `PUT /v1/admin/faults` replaces the whole configuration, so windows that overlap must be
    merged here, or the end of one would silently cancel another."""

    def __init__(self, stack: Stack, seed: int) -> None:
        self.url = f"{stack.settings.rails.bank_url}/v1/admin/faults"
        self.seed = seed
        self.open: dict[int, dict[str, Any]] = {}
        self._next = 0
        self._lock = asyncio.Lock()

    def merged(self) -> dict[str, Any]:
        """The strongest of each fault across open windows, within the bank's limits."""
        merged: dict[str, Any] = {}
        for faults in self.open.values():
            for name, value in faults.items():
                merged[name] = max(merged.get(name, value), value)
        left = 1.0
        for name in SUBMISSION_RATES:
            if name in merged:
                merged[name] = min(merged[name], left)
                left -= merged[name]
        return merged

    async def _apply(self, bank: httpx.AsyncClient) -> None:
        config = {"seed": self.seed, **self.merged()}
        response = await http_retry(lambda: bank.put(self.url, json=config))
        assert response.status_code == 200, (self.seed, response.text)

    async def window(self, faults: dict[str, Any], seconds: float) -> None:
        """Add `faults` for `seconds`, then take them away again."""
        async with httpx.AsyncClient(timeout=10) as bank:
            async with self._lock:
                token = self._next
                self._next += 1
                self.open[token] = faults
                await self._apply(bank)
            await asyncio.sleep(seconds)
            async with self._lock:
                del self.open[token]
                await self._apply(bank)

    async def clear(self) -> None:
        """No faults at all (the end of the run, before ops step in)."""
        async with self._lock:
            self.open.clear()
            async with httpx.AsyncClient(timeout=10) as bank:
                await self._apply(bank)


class Chaos:
    """Runs the fault schedule against a stack: every event as its own task at its moment,
    so long bank windows overlap with crashes and with each other."""

    def __init__(
        self,
        stack: Stack,
        plan: Plan,
        ops_key: str,
        accounts: list[dict[str, str]],
    ) -> None:
        self.stack = stack
        self.plan = plan
        self.ops_key = ops_key
        self.accounts = accounts
        self.log: list[str] = []
        self.tally = Tally()
        self.faults = FaultBoard(stack, plan.seed)
        # one restart of a process at a time (two events may name the same one)
        self._locks: dict[str, asyncio.Lock] = {}
        self._crashes = 0
        self._started = 0.0
        # the partner's recalls, each waiting for its payment to settle
        self.recall_tasks: list[asyncio.Task[None]] = []

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def note(self, what: str) -> None:
        """A line of the run's log, stamped with the seconds since the start."""
        self.log.append(f"{asyncio.get_running_loop().time() - self._started:6.1f}s {what}")

    async def run_events(self, started: float) -> None:
        """Fire each planned event at its moment; return once every one has ended."""
        self._started = started
        await asyncio.gather(*(self._at(started + at, kind) for at, kind in self.plan.events))

    async def _at(self, moment: float, kind: str) -> None:
        await asyncio.sleep(max(0.0, moment - asyncio.get_running_loop().time()))
        self.note(kind)
        await getattr(self, kind)()
        self.note(f"{kind} ended")

    async def _restart(
        self, name: str, stop: Callable[[], None], start: Callable[[], None]
    ) -> None:
        async with self._lock(name):
            await asyncio.to_thread(stop)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(start)

    async def _kill_and_restart_worker(self, name: str) -> None:
        await self._restart(
            name, lambda: self.stack.kill(name), lambda: self.stack.start_worker(name)
        )

    async def kill_worker(self) -> None:
        """SIGKILL the first worker, restart it a little later."""
        await self._kill_and_restart_worker("worker")

    async def kill_worker2(self) -> None:
        """SIGKILL the second worker, restart it a little later."""
        await self._kill_and_restart_worker("worker2")

    async def restart_temporal(self) -> None:
        """Kill the Temporal dev server; it comes back on its SQLite file."""
        await self._restart(
            "temporal", lambda: self.stack.kill("temporal"), self.stack.start_temporal
        )

    async def restart_postgres(self) -> None:
        """Crash PostgreSQL (immediate shutdown) and start it again."""
        await self._restart(
            "postgres", lambda: self.stack.postgres.stop("immediate"), self.stack.postgres.start
        )

    async def bank_errors(self) -> None:
        """The bank answers half of all submissions with 503 (keeping nothing) for a while."""
        await self.faults.window({"error_rate": 0.5}, 3.0)

    async def bank_timeouts(self) -> None:
        """The bank keeps half of the submissions but answers them too late, briefly (a
        later attempt of the budget gets the answer)."""
        await self.faults.window({"timeout_rate": 0.5, "timeout_seconds": HANG_SECONDS}, 3.0)

    async def bank_duplicate_callbacks(self) -> None:
        """Every callback arrives twice."""
        await self.faults.window({"duplicate_callback_rate": 1.0}, 4.0)

    async def bank_out_of_order(self) -> None:
        """Final statuses overtake the acknowledgements."""
        await self.faults.window({"out_of_order_callbacks": True}, 4.0)

    async def bank_stores_then_times_out(self) -> None:
        """The bank keeps every submission (SEPA message, ACH file) and hangs past the
        platform's timeout for longer than its retry budget: the bank has the payment, the
        platform never heard so, and must ask (pacs.028, the file's status) before anything
        else."""
        await self.faults.window(
            {"timeout_rate": 1.0, "timeout_seconds": HANG_SECONDS}, STORE_THEN_TIMEOUT_SECONDS
        )

    async def bank_unanswerable(self) -> None:
        """The bank keeps every submission and answers 503, and its status service is down
        too: the outcome is unknown, so the payment waits in action_required (hold kept)
        and asks again by itself once the window ends."""
        await self.faults.window(
            {"error_after_store_rate": 1.0, "status_request_error_rate": 1.0},
            UNANSWERABLE_SECONDS,
        )

    async def bank_down(self) -> None:
        """The bank refuses every submission without keeping it: asked, it has no record
        (submission_failed); an ops retry sends again, a cancel releases the hold."""
        await self.faults.window({"error_rate": 1.0}, BANK_DOWN_SECONDS)

    async def bank_errors_after_store(self) -> None:
        """Half of the submissions are kept and answered 503 as if they had not been."""
        await self.faults.window({"error_after_store_rate": 0.5}, 5.0)

    async def bank_drops_final_callbacks(self) -> None:
        """Half of the final callbacks (SEPA ACSC/RJCT, ACH settlement notices) are never
        sent; the ACH cut-off passes meanwhile, so settlement notices are among them. The
        payment must learn the outcome by asking."""
        async with bank_client(self.stack.settings) as bank:
            window = asyncio.create_task(
                self.faults.window({"drop_final_callback_rate": 0.5}, 10.0)
            )
            await asyncio.sleep(5.0)
            await self._ach_cutoff(bank)
            await window

    async def bank_ach_cutoff(self) -> None:
        """The bank's clock moves to the next ACH cut-off: the files it holds settle."""
        async with bank_client(self.stack.settings) as bank:
            await self._ach_cutoff(bank)

    async def _ach_cutoff(self, bank: httpx.AsyncClient) -> None:
        response = await http_retry(
            lambda: bank.post("/v1/admin/clock/advance", json={"to": "next_ach_cutoff"})
        )
        assert response.status_code == 200, (self.plan.seed, response.text)

    async def api_crash_mid_deposits(self) -> None:
        """Deposits with fixed Idempotency-Keys are cut off by an API crash; once it is back,
        each is retried with its key (as the client must), twice.

        To crash the API between a deposit's commit and its answer (a moment far too short
        to hit by chance), Temporal is down first: the tenant's webhook endpoint takes
        deposit events, so after its commit each deposit waits to start its delivery, and
        the kill finds it committed and unanswered. A few more are sent just before the
        kill, caught wherever they are. Every one must be credited exactly once."""
        self._crashes += 1
        rng = random.Random(f"{self.plan.seed}:deposits:{self._crashes}")
        tries = []
        for n in range(1 + DEPOSITS_STALLED + DEPOSITS_IN_FLIGHT):
            account = rng.choice(self.accounts)
            tries.append(
                DepositTry(
                    key=f"chaos-{self.plan.seed}-crash{self._crashes}-{n}-{uuid.uuid4().hex[:8]}",
                    account_id=account["id"],
                    currency=account["currency"],
                    amount=rng.randint(100, 900),
                )
            )
        self.tally.deposits.extend(tries)
        headers = {"Authorization": f"Bearer {self.ops_key}"}
        async with (
            httpx.AsyncClient(
                base_url=self.stack.settings.api.url, headers=headers, timeout=60
            ) as ops,
            self._lock("temporal"),
            self._lock("api"),
        ):

            async def first(deposit: DepositTry) -> None:
                try:
                    response = await ops.post(
                        "/v1/deposits", json=_deposit_body(deposit), headers=_key(deposit)
                    )
                except RETRYABLE:
                    return  # cut off by the crash: whether it committed is for the retry
                if response.status_code == 201:
                    deposit.first_id = response.json()["id"]

            # the first is answered before anything fails: the control, whose delivery starts
            tries[0].control = True
            await first(tries[0])
            self.note("deposits: Temporal down")
            await asyncio.to_thread(self.stack.kill, "temporal")
            stalled = tries[1 : 1 + DEPOSITS_STALLED]
            sent = [asyncio.create_task(first(d)) for d in stalled]
            await asyncio.sleep(1.0)
            for deposit in tries[1 + DEPOSITS_STALLED :]:
                sent.append(asyncio.create_task(first(deposit)))
                await asyncio.sleep(rng.uniform(0.0, 0.05))
            self.note("deposits: API killed")
            await asyncio.to_thread(self.stack.kill, "api")
            await asyncio.gather(*sent)
            await asyncio.to_thread(self.stack.start_temporal)
            await asyncio.to_thread(self.stack.start_api)
            self.note("deposits: API back")
            for deposit in tries:
                for _ in range(2):  # the retry, and the retry of the retry: both the same
                    response = await http_retry(
                        lambda d=deposit: ops.post(  # type: ignore[misc]
                            "/v1/deposits", json=_deposit_body(d), headers=_key(d)
                        )
                    )
                    assert response.status_code == 201, (self.plan.seed, response.text)
                    replayed = response.headers.get("Idempotent-Replayed") == "true"
                    deposit.retries.append((response.json()["id"], replayed))

    async def race_ops(
        self,
        partner: httpx.AsyncClient,
        ops: httpx.AsyncClient,
        payment: Sent,
        rng: random.Random,
    ) -> None:
        """Right after a payment is accepted, maybe cancel it (the initiator) or retry it
        (ops), while its submission is under way."""
        draw = rng.random()
        delay = rng.uniform(0.0, 1.5)
        if draw < self.plan.cancel_share:
            await asyncio.sleep(delay)
            await self.cancel(partner, payment, "raced the submission")
        elif draw < self.plan.cancel_share + self.plan.retry_share:
            await asyncio.sleep(delay)
            await self.retry(ops, payment)

    async def cancel(self, partner: httpx.AsyncClient, payment: Sent, reason: str) -> None:
        """The initiator cancels; 202 means the workflow decides (it may not cancel)."""
        response = await http_retry(
            lambda: partner.post(
                f"/v1/payments/{payment.payment_id}/cancel", json={"reason": reason}
            )
        )
        self.tally.cancels[str(response.status_code)] += 1
        assert response.status_code in (202, 409), (self.plan.seed, response.text)
        if response.status_code == 202:
            payment.cancel_accepted = True

    async def retry(self, ops: httpx.AsyncClient, payment: Sent) -> None:
        """Ops retry; 409 unless the payment waits in action_required."""
        response = await http_retry(
            lambda: ops.post(f"/v1/payments/{payment.payment_id}/retry", json={})
        )
        self.tally.retries[str(response.status_code)] += 1
        assert response.status_code in (202, 409), (self.plan.seed, response.text)

    async def recall_when_settled(self, partner: httpx.AsyncClient, payment: Sent) -> None:
        """The partner recalls the payment as soon as it is settled, whatever fails around
        it; a payment that ends otherwise (canceled) is not recalled."""
        while True:
            response = await http_retry(lambda: partner.get(f"/v1/payments/{payment.payment_id}"))
            status = response.json()["status"]
            if status == "settled":
                break
            if status in TERMINAL:
                self.tally.recalls[f"not sent ({status})"] += 1
                return
            await asyncio.sleep(1.0)
        response = await http_retry(
            lambda: partner.post(
                f"/v1/payments/{payment.payment_id}/recall",
                json={"reason": payment.recall_reason, "note": "chaos"},
            )
        )
        code = response.json().get("code", "") if response.status_code != 202 else ""
        self.tally.recalls[f"{response.status_code} {code}".strip()] += 1
        # a 409 after a retry: the first attempt recorded the recall, its answer was lost
        assert response.status_code == 202 or code == "payment_already_recalled", (
            self.plan.seed,
            response.text,
        )
        payment.recall_sent = True
        self.note(f"recall {payment.recall_reason} sent for {payment.payment_id}")

    async def watch_action_required(
        self,
        partner: httpx.AsyncClient,
        ops: httpx.AsyncClient,
        sent: list[Sent],
        done: asyncio.Event,
    ) -> None:
        """While the faults last: note why payments wait in action_required, and act on some
        of them as soon as they appear (a cancel or an ops retry that races the workflow's
        own status request)."""
        rng = random.Random(f"{self.plan.seed}:watch")
        acted: set[str] = set()
        while not done.is_set():
            # the list grows while payments are sent
            by_id = {payment.payment_id: payment for payment in sent}
            for row in await list_action_required(partner):
                self.tally.reasons.setdefault(row["id"], set()).add(action_reason(row))
                payment = by_id.get(row["id"])
                if payment is None or row["id"] in acted:
                    continue
                acted.add(row["id"])
                draw = rng.random()
                if draw < 0.25:
                    await self.cancel(partner, payment, "waiting too long")
                elif draw < 0.5:
                    await self.retry(ops, payment)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 2.0)


def action_reason(payment: dict[str, Any]) -> str:
    """Why a payment waits in action_required, in either form of the API: `action_reason`
    (as of 5e031b5) or `action.reason` (the object the design names, since)."""
    action = payment.get("action") or {}
    return str(payment.get("action_reason") or action.get("reason"))


def _deposit_body(deposit: DepositTry) -> dict[str, Any]:
    return {
        "account_id": deposit.account_id,
        "amount": deposit.amount,
        "currency": deposit.currency,
    }


def _key(deposit: DepositTry) -> dict[str, str]:
    return {"Idempotency-Key": deposit.key}


async def list_action_required(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every payment of the tenant waiting in action_required (all pages)."""
    rows: list[dict[str, Any]] = []
    params: dict[str, Any] = {"status": "action_required", "limit": 100}
    while True:
        response = await http_retry(
            lambda params=params: client.get("/v1/payments", params=params)  # type: ignore[misc]
        )
        assert response.status_code == 200, response.text
        page = response.json()
        rows.extend(page["data"])
        if not page.get("has_more") or not page["data"]:
            return rows
        params = {**params, "starting_after": page["data"][-1]["id"]}


def payment_body(
    rng: random.Random, account: dict[str, str], plan: Plan, recalled: str = ""
) -> tuple[dict[str, Any], str]:
    """A SEPA or ACH payment; a few go to a creditor the bank rejects, a few to one whose
    bank returns the money after settlement. A payment to be recalled (`recalled`, the
    bank's answer) goes to a creditor of its own, which the bank's recall rule names."""
    amount = rng.randint(100, 900)
    if account["currency"] == "USD":
        creditor = {
            "name": "John Smith",
            "country": "US",
            "routing_number": "021000021",
            "account_number": str(rng.randint(10**8, 10**9)),
        }
        return {
            "account_id": account["id"],
            "amount": amount,
            "currency": "USD",
            "rail": "ach",
            "creditor": creditor,
        }, "settled"
    draw = rng.random()
    if draw < plan.reject_share:
        iban, expect = SEPA_REJECT_IBAN, "failed"
    elif draw < plan.reject_share + plan.return_share:
        iban, expect = SEPA_RETURN_IBAN, "returned"
    else:
        iban, expect = GOOD_IBAN, "settled"
    if recalled:
        iban, expect = fresh_iban(), "returned" if recalled == RECALL_ACCEPT else "settled"
    return {
        "account_id": account["id"],
        "amount": amount,
        "currency": "EUR",
        "rail": "sepa",
        "creditor": {"name": "Erika Mustermann", "country": iban[:2], "iban": iban},
    }, expect


async def send_payments(
    chaos: Chaos,
    partner: httpx.AsyncClient,
    ops: httpx.AsyncClient,
    accounts: list[dict[str, str]],
    started: float,
    sent: list[Sent],
) -> None:
    """POST every payment into `sent`, evenly over the plan's duration (each retried with
    its own idempotency key until answered), with cancels and ops retries racing some."""
    plan = chaos.plan
    rng = random.Random(plan.seed + 1)
    race_rng = random.Random(f"{plan.seed}:race")
    loop = asyncio.get_running_loop()
    races = []
    for n in range(plan.payments):
        await asyncio.sleep(max(0.0, started + n * plan.duration / plan.payments - loop.time()))
        reason, answer = plan.recalls.get(n, ("", ""))
        # a recalled payment is SEPA (the draw is still made: the others stay as they were)
        usd = rng.random() < plan.ach_share and not reason
        candidates = [a for a in accounts if (a["currency"] == "USD") == usd]
        account = rng.choice(candidates)
        body, expect = payment_body(rng, account, plan, answer)
        if reason:
            await recall_rule(chaos, body["creditor"]["iban"], answer)
        key = str(uuid.uuid4())
        response = await http_retry(
            lambda body=body, key=key: partner.post(  # type: ignore[misc]
                "/v1/payments", json=body, headers={"Idempotency-Key": key}
            )
        )
        assert response.status_code in (200, 202), (plan.seed, response.text)
        payment = Sent(
            response.json()["id"],
            body["rail"],
            body["amount"],
            expect,
            account["id"],
            recall_reason=reason,
            recall_answer=answer,
        )
        sent.append(payment)
        if reason:
            chaos.recall_tasks.append(
                asyncio.create_task(chaos.recall_when_settled(partner, payment))
            )
        races.append(asyncio.create_task(chaos.race_ops(partner, ops, payment, race_rng)))
    chaos.note(f"all {plan.payments} payments sent")
    await asyncio.gather(*races)
    chaos.note("every raced cancel and retry answered")


async def recall_rule(chaos: Chaos, iban: str, answer: str) -> None:
    """Tell the bank how it answers a recall of a payment to `iban` (known in advance)."""
    rule = {"rail": "sepa", "creditor_iban": iban, "action": "recall", "code": answer}
    async with bank_client(chaos.stack.settings) as bank:
        response = await http_retry(lambda: bank.post("/v1/admin/rules", json=rule))
    assert response.status_code == 201, (chaos.plan.seed, response.text)
