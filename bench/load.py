"""Load: drive the API at a target rate with a realistic mix, and report what came of it.

    make load      (or: .venv/bin/python bench/load.py --rate 2 --duration 60)
    .venv/bin/python bench/load.py --connect --rate 10 --duration 120   # against `make dev`

Arrivals are open-loop: payments are sent on a Poisson schedule at `--rate`, whether or not
earlier ones have been answered, so a slow platform sees the queue it would see in
production (and latencies are measured from each payment's scheduled arrival, not from
when a busy client got round to sending it).

The mix, per arrival (configurable):
- `--ach-share` of the payments go by ACH (USD accounts), the rest by SEPA (EUR). ACH
  settles at the bank's cut-offs, which the run brings about every `--ach-cutoff-every`
  seconds by moving the simulated bank's clock. Where ACH is not available the API answers
  422 `rail_unavailable`: such answers are counted apart, the payment is sent by SEPA
  instead, and after a few in a row ACH is not tried again for the rest of the run;
- `--sanctions` to a creditor on the OFAC list (`Banco Nacional de Cuba`): screening holds
  it in `in_review`, where it stays for a person (or `--review reject|approve` decides);
- `--insufficient` from an account that was never funded: `failed` (insufficient_funds);
- `--rail-reject` to a creditor IBAN the bank rejects (a banksim rule, AC04): `failed`;
- the rest to an ordinary creditor from funded accounts: `settled`.

Progress is printed every second; status changes are followed through `GET /v1/events`
(one request for every payment in flight, newest first). Time to terminal runs from a
payment's scheduled arrival to the timestamp of its final status change.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import _stack
import httpx

from kernel.temporal_client import exit_without_finalizing
from workflows.models import TERMINAL_STATUSES

TERMINAL: frozenset[str] = TERMINAL_STATUSES
# where a payment of each kind is expected to end within the run
EXPECTED = {
    "normal": ("settled", None),
    "sanctions": ("in_review", None),
    "insufficient": ("failed", "insufficient_funds"),
    "rail_reject": ("failed", "rail_rejected"),
}
ORDINARY_CREDITOR = {"name": "Erika Mustermann", "country": "DE", "iban": "DE89370400440532013000"}
# on the OFAC 2021 SDN list (the README's example): screening always flags it
SANCTIONED_NAME = "Banco Nacional de Cuba"
# an account the bank is told is closed (AC04), as in the README's tour
REJECTED_IBAN = "FR1420041010050500013M02606"
ACH_CREDITOR = {
    "name": "Erika Mustermann",
    "country": "US",
    "routing_number": "091000019",
    "account_number": "123456789",
}
# consecutive ACH refusals after which ACH is not tried again in this run
ACH_PROBES = 5
EVENT_PAGE = 100


@dataclass
class Payment:
    """One arrival and everything observed about it."""

    index: int
    kind: str
    rail: str
    scheduled: float  # wall clock (time.time()) of the planned arrival
    api_ms: float | None = None
    http_status: int | None = None
    error_code: str | None = None
    payment_id: str | None = None
    status: str | None = None
    failure_code: str | None = None
    status_at: float | None = None  # wall clock of the latest status change
    ach_fallback: bool = False

    @property
    def resolved(self) -> bool:
        """Whether it reached the status it is expected to stay in for this run."""
        return self.status in TERMINAL or self.status == "in_review"


@dataclass
class Mix:
    """Shares of the special kinds and of ACH."""

    sanctions: float
    insufficient: float
    rail_reject: float
    ach_share: float

    def draw(self, rng: random.Random) -> tuple[str, str]:
        """A kind and a rail for the next arrival."""
        roll = rng.random()
        kind = "normal"
        for name, share in (
            ("sanctions", self.sanctions),
            ("insufficient", self.insufficient),
            ("rail_reject", self.rail_reject),
        ):
            if roll < share:
                kind = name
                break
            roll -= share
        # the bank's reject rule names an IBAN: rail rejections are SEPA payments
        rail = "ach" if kind != "rail_reject" and rng.random() < self.ach_share else "sepa"
        return kind, rail


@dataclass
class Accounts:
    """The debtor accounts of the run, by currency: funded, and never funded."""

    funded: dict[str, list[str]] = field(default_factory=dict)
    empty: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class State:
    """What the run has seen so far."""

    payments: list[Payment] = field(default_factory=list)
    by_id: dict[str, Payment] = field(default_factory=dict)
    responses: Counter[str] = field(default_factory=Counter)
    ach_refused: int = 0
    ach_refused_in_a_row: int = 0
    ach_disabled_reason: str | None = None


def body_for(payment: Payment, accounts: Accounts, rng: random.Random) -> dict[str, Any]:
    """The request body of a payment of its kind and rail."""
    currency = "USD" if payment.rail == "ach" else "EUR"
    pool = accounts.empty if payment.kind == "insufficient" else accounts.funded
    creditor: dict[str, str] = dict(ACH_CREDITOR if payment.rail == "ach" else ORDINARY_CREDITOR)
    if payment.kind == "sanctions":
        creditor["name"] = SANCTIONED_NAME
    elif payment.kind == "rail_reject":
        creditor["iban"] = REJECTED_IBAN
        creditor["country"] = REJECTED_IBAN[:2]  # agreeing with the IBAN: no review
    return {
        "account_id": rng.choice(pool[currency]),
        "amount": rng.randint(100, 10_000),
        "currency": currency,
        "rail": payment.rail,
        "creditor": creditor,
        "remittance_info": f"load {payment.index}",
    }


def _problem_code(response: httpx.Response) -> str:
    try:
        code = response.json().get("code")
    except ValueError:
        code = None
    return f"{response.status_code} {code or ''}".strip()


async def send(
    payment: Payment,
    partner: httpx.AsyncClient,
    accounts: Accounts,
    state: State,
    rng: random.Random,
) -> None:
    """POST one payment (ACH refused: SEPA instead) and record the answer."""
    if payment.rail == "ach" and state.ach_disabled_reason is not None:
        payment.rail, payment.ach_fallback = "sepa", True
    while True:
        try:
            response = await _stack.post_idempotent(
                partner, "/v1/payments", body_for(payment, accounts, rng), uuid.uuid4().hex
            )
        except httpx.HTTPError as err:
            payment.api_ms = (time.time() - payment.scheduled) * 1e3
            payment.error_code = type(err).__name__
            state.responses[payment.error_code] += 1
            return
        payment.api_ms = (time.time() - payment.scheduled) * 1e3
        if payment.rail == "ach" and 400 <= response.status_code < 500:
            # ACH not (yet) available: count it apart and let the arrival go by SEPA
            state.ach_refused += 1
            state.ach_refused_in_a_row += 1
            if state.ach_refused_in_a_row >= ACH_PROBES and state.ach_disabled_reason is None:
                state.ach_disabled_reason = _problem_code(response)
                print(
                    f"\nnote: the API refuses ACH ({state.ach_disabled_reason}); ACH arrivals "
                    "go by SEPA for the rest of the run",
                    file=sys.stderr,
                    flush=True,
                )
            payment.rail, payment.ach_fallback = "sepa", True
            continue
        if payment.rail == "ach":
            state.ach_refused_in_a_row = 0
        break
    payment.http_status = response.status_code
    code = _problem_code(response)
    state.responses[code] += 1
    if response.status_code == 202:
        payment.payment_id = response.json()["id"]
        state.by_id[payment.payment_id] = payment
    else:
        payment.error_code = code


def _apply_event(state: State, event: dict[str, Any]) -> None:
    data = event.get("data", {})
    payment = state.by_id.get(data.get("payment_id", ""))
    if payment is None:
        return
    at = datetime.fromisoformat(event["created_at"]).timestamp()
    # events may be read out of order: the latest status change wins
    if payment.status_at is None or at >= payment.status_at:
        payment.status, payment.status_at = data.get("status"), at
        failure = data.get("failure") or {}
        payment.failure_code = failure.get("code")


async def follow_events(
    partner: httpx.AsyncClient, state: State, stop: asyncio.Event, lookback: float
) -> None:
    """Keep the payments' statuses current from the tenant's events (newest first).

    Each pass reads back to `lookback` seconds before the newest event of the previous
    pass: an event is written with its status change's time, which can be a moment older
    than events already committed.
    """
    seen: set[str] = set()
    newest = 0.0
    while not stop.is_set():
        cursor: str | None = None
        floor = newest - lookback
        while True:
            params: dict[str, Any] = {"limit": EVENT_PAGE}
            if cursor:
                params["starting_after"] = cursor
            try:
                response = await partner.get("/v1/events", params=params)
                response.raise_for_status()
            except httpx.HTTPError:
                break  # the next pass catches up
            page = response.json()
            oldest = float("inf")
            for event in page["data"]:
                at = datetime.fromisoformat(event["created_at"]).timestamp()
                oldest = min(oldest, at)
                newest = max(newest, at)
                if event["id"] not in seen:
                    seen.add(event["id"])
                    _apply_event(state, event)
            if not page["has_more"] or not page["data"] or oldest < floor:
                break
            cursor = page["data"][-1]["id"]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def reconcile(partner: httpx.AsyncClient, state: State) -> None:
    """Read every payment not yet resolved once more, from the payment itself."""
    gate = asyncio.Semaphore(8)

    async def one(payment: Payment) -> None:
        async with gate:
            response = await partner.get(f"/v1/payments/{payment.payment_id}")
        if response.status_code != 200:
            return
        body = response.json()
        history = body.get("status_history") or []
        payment.status = body["status"]
        payment.failure_code = (body.get("failure") or {}).get("code")
        if history:
            payment.status_at = datetime.fromisoformat(history[-1]["at"]).timestamp()

    await asyncio.gather(
        *(one(p) for p in state.payments if p.payment_id is not None and not p.resolved)
    )


async def review_all(ops: httpx.AsyncClient, state: State, decision: str) -> None:
    """An ops reviewer decides every payment waiting in review (four-eyes: another key)."""
    for payment in state.payments:
        if payment.payment_id is not None and payment.status == "in_review":
            await ops.post(
                f"/v1/payments/{payment.payment_id}/review",
                json={"decision": decision, "note": "load test"},
            )


def progress_line(state: State, started: float, last: tuple[float, int]) -> str:
    """One line: elapsed, sent, accepted, statuses so far, current send rate."""
    now = time.time()
    sent = sum(1 for p in state.payments if p.api_ms is not None)
    accepted = len(state.by_id)
    statuses = Counter(p.status or "processing" for p in state.by_id.values())
    rate = (sent - last[1]) / max(1e-6, now - last[0])
    shown = " ".join(f"{status}={count}" for status, count in sorted(statuses.items()))
    others = sum(1 for p in state.payments if p.http_status not in (None, 202))
    return (
        f"[{now - started:6.1f}s] sent={sent} ({rate:5.1f}/s) accepted={accepted} "
        f"refused={others} ach_refused={state.ach_refused} | {shown}"
    )


async def ach_cutoffs(banksim_url: str, every: float, stop: asyncio.Event) -> None:
    """Move the bank's clock to its next ACH cut-off every `every` seconds.

    FedACH settles at three cut-offs a day (New York time); a load run cannot wait for them,
    so the simulated bank is told a cut-off has come, as the ACH integration tests do.
    """
    async with httpx.AsyncClient(base_url=banksim_url, timeout=30) as bank:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            with contextlib.suppress(httpx.HTTPError):
                await bank.post("/v1/admin/clock/advance", json={"to": "next_ach_cutoff"})


async def progress(state: State, started: float, stop: asyncio.Event) -> None:
    """Print the progress line every second until told to stop."""
    last = (time.time(), 0)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
        print(progress_line(state, started, last), file=sys.stderr, flush=True)
        last = (time.time(), sum(1 for p in state.payments if p.api_ms is not None))


async def arrivals(
    args: argparse.Namespace,
    partner: httpx.AsyncClient,
    accounts: Accounts,
    state: State,
    rng: random.Random,
) -> None:
    """Send payments on a Poisson schedule (or evenly spaced) for `--duration` seconds."""
    mix = Mix(args.sanctions, args.insufficient, args.rail_reject, args.ach_share)
    tasks: list[asyncio.Task[None]] = []
    start = time.time()
    at = start
    index = 0
    while True:
        gap = rng.expovariate(args.rate) if args.arrivals == "poisson" else 1.0 / args.rate
        at += gap
        if at - start >= args.duration:
            break
        delay = at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        kind, rail = mix.draw(rng)
        payment = Payment(index, kind, rail, scheduled=at)
        index += 1
        state.payments.append(payment)
        tasks.append(asyncio.create_task(send(payment, partner, accounts, state, rng)))
    await asyncio.gather(*tasks)


# --- report ------------------------------------------------------------------------------


def pct(values: Sequence[float]) -> str:
    """p50 / p95 / p99 (ms), or a dash."""
    if not values:
        return "-"
    return " / ".join(f"{_stack.percentile(values, q):8.1f}" for q in (0.5, 0.95, 0.99))


def report(args: argparse.Namespace, state: State, window: float) -> str:
    """Throughput, API latency, time to terminal by status, mix intended against observed."""
    payments = state.payments
    accepted = [p for p in payments if p.payment_id is not None]
    ended = [p for p in accepted if p.status in TERMINAL]
    lines = [
        f"offered {args.rate:.1f}/s for {args.duration:.0f} s ({args.arrivals} arrivals): "
        f"{len(payments)} payments sent, {len(accepted)} accepted (202), "
        f"{len(ended)} terminal, {sum(1 for p in accepted if p.status == 'in_review')} in review",
    ]
    if ended:
        first = min(p.scheduled for p in payments)
        last_end = max(p.status_at or 0.0 for p in ended)
        lines.append(
            f"throughput: {len(accepted) / window:.1f} accepted/s over the sending window, "
            f"{len(ended) / max(1e-6, last_end - first):.1f} terminal/s first arrival to last end"
        )
    lines += [
        "",
        f"API latency (POST /v1/payments, from scheduled arrival) p50 / p95 / p99 ms: "
        f"{pct([p.api_ms for p in payments if p.api_ms is not None and p.http_status == 202])}",
        "responses: " + ", ".join(f"{k}: {v}" for k, v in sorted(state.responses.items())),
    ]
    if state.ach_refused:
        lines.append(
            f"ACH refused by the API {state.ach_refused} time(s)"
            f" ({state.ach_disabled_reason or 'see responses'}); those arrivals went by SEPA"
        )
    lines += ["", f"{'time to terminal by final status':<34} {'n':>5}   p50 / p95 / p99 ms"]
    by_status: dict[str, list[float]] = {}
    for p in accepted:
        if p.status in TERMINAL and p.status_at is not None:
            key = f"{p.rail} {p.status}" + (f" ({p.failure_code})" if p.failure_code else "")
            by_status.setdefault(key, []).append((p.status_at - p.scheduled) * 1e3)
    everything = [v for values in by_status.values() for v in values]
    for key, values in sorted(by_status.items()):
        lines.append(f"  {key:<32} {len(values):>5}   {pct(values)}")
    lines.append(f"  {'all terminal':<32} {len(everything):>5}   {pct(everything)}")
    in_review = [
        (p.status_at - p.scheduled) * 1e3
        for p in accepted
        if p.status == "in_review" and p.status_at
    ]
    if in_review:
        lines.append(
            f"  {'to in_review (waits for a person)':<32} {len(in_review):>5}   {pct(in_review)}"
        )
    lines += [
        "",
        f"{'kind':<13} {'intended share':>14} {'sent':>5} {'expected end':>28} "
        f"{'ended so':>8} {'otherwise':>9}",
    ]
    shares = {
        "normal": 1 - args.sanctions - args.insufficient - args.rail_reject,
        "sanctions": args.sanctions,
        "insufficient": args.insufficient,
        "rail_reject": args.rail_reject,
    }
    for kind, (status, code) in EXPECTED.items():
        mine = [p for p in accepted if p.kind == kind]
        expected = f"{status} ({code})" if code else status
        if kind == "sanctions" and args.review != "none":
            expected = "rejected" if args.review == "reject" else "settled"
        hits = sum(1 for p in mine if _ended_as_expected(p, kind, args.review))
        lines.append(
            f"{kind:<13} {shares[kind]:>13.1%} {len(mine):>5} {expected:>28} {hits:>8} "
            f"{len(mine) - hits:>9}"
        )
    rails = Counter(p.rail for p in accepted)
    lines.append(
        f"rails (accepted): {dict(rails)}; intended ACH share {args.ach_share:.0%}"
        + (
            f", {sum(p.ach_fallback for p in payments)} ACH arrivals sent by SEPA"
            if state.ach_refused
            else ""
        )
    )
    unresolved = [p for p in accepted if not p.resolved]
    if unresolved:
        statuses = Counter(p.status or "unknown" for p in unresolved)
        lines.append(f"not resolved when the run ended: {dict(statuses)}")
    return "\n".join(lines)


def _ended_as_expected(payment: Payment, kind: str, review: str) -> bool:
    status, code = EXPECTED[kind]
    if kind == "sanctions" and review != "none":
        return payment.status == ("rejected" if review == "reject" else "settled")
    return payment.status == status and (code is None or payment.failure_code == code)


# --- the run -------------------------------------------------------------------------------


async def prepare(
    args: argparse.Namespace,
    partner: httpx.AsyncClient,
    ops: httpx.AsyncClient,
    banksim_url: str,
) -> Accounts:
    """Accounts for the run's debtors, and the bank's rejection rule."""
    expected = args.rate * args.duration * 1.3 + 10
    accounts = Accounts()
    for currency, share in (("EUR", 1 - args.ach_share), ("USD", args.ach_share)):
        if currency == "USD" and args.ach_share <= 0:
            continue
        # ACH may fall back to SEPA: the EUR pool is sized for every payment
        sized_for = int(expected if currency == "EUR" else expected * share)
        accounts.funded[currency] = await _stack.open_accounts(
            partner, ops, _stack.accounts_needed(sized_for, 4), currency, 5_000_000
        )
        empty = _stack.accounts_needed(int(expected * args.insufficient) + 1, 2)
        accounts.empty[currency] = await _stack.open_accounts(partner, ops, empty, currency, 0)
    async with httpx.AsyncClient(base_url=banksim_url, timeout=10) as bank:
        rule = await bank.post(
            "/v1/admin/rules", json={"creditor_iban": REJECTED_IBAN, "reject_code": "AC04"}
        )
        if rule.status_code not in (200, 201):
            raise RuntimeError(f"banksim refused the rejection rule: {rule.text}")
    return accounts


async def wait_until(done: Callable[[], bool], seconds: float) -> None:
    """Check `done` twice a second until it holds or `seconds` have passed."""
    for _ in range(int(seconds * 2)):
        if done():
            return
        await asyncio.sleep(0.5)


async def run(args: argparse.Namespace, platform: _stack.Platform) -> None:
    """Prepare, send for `--duration`, drain, reconcile, report."""
    rng = random.Random(args.seed)
    tenant = await _stack.new_tenant(platform.settings, "load")
    # enough connections that the client never queues what the platform should
    async with _stack.api_clients(platform.api_url, tenant, args.connections) as (partner, ops):
        print("preparing accounts …", file=sys.stderr, flush=True)
        accounts = await prepare(args, partner, ops, platform.banksim_url)
        state = State()
        stop_events, stop_progress = asyncio.Event(), asyncio.Event()
        started = time.time()
        follower = asyncio.create_task(follow_events(partner, state, stop_events, args.lookback))
        ticker = asyncio.create_task(progress(state, started, stop_progress))
        cutoff_every = args.ach_cutoff_every
        if cutoff_every is None:  # a private stack's bank is ours to move; a shared one is not
            cutoff_every = 0.0 if args.connect else 10.0
        cutoffs = (
            asyncio.create_task(ach_cutoffs(platform.banksim_url, cutoff_every, stop_progress))
            if cutoff_every > 0 and args.ach_share > 0
            else None
        )
        await arrivals(args, partner, accounts, state, rng)
        window = time.time() - started
        await wait_until(
            lambda: all(p.resolved for p in state.payments if p.payment_id is not None),
            args.drain,
        )
        stop_events.set()
        await follower
        await reconcile(partner, state)
        if args.review != "none":
            await review_all(ops, state, args.review)
            stop_events.clear()
            follower = asyncio.create_task(
                follow_events(partner, state, stop_events, args.lookback)
            )
            await wait_until(
                lambda: all(p.status != "in_review" for p in state.payments), args.drain
            )
            stop_events.set()
            await follower
        stop_progress.set()
        await ticker
        if cutoffs is not None:
            await cutoffs
    print()
    print(report(args, state, window))


def main() -> None:
    """Parse the arguments, start or connect to the platform, run, report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=2.0, help="payments per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of sending")
    parser.add_argument("--arrivals", choices=["poisson", "uniform"], default="poisson")
    parser.add_argument("--ach-share", type=float, default=0.3, help="share sent by ACH")
    parser.add_argument("--sanctions", type=float, default=0.02, help="share of sanctions hits")
    parser.add_argument("--insufficient", type=float, default=0.03, help="share underfunded")
    parser.add_argument("--rail-reject", type=float, default=0.01, help="share the bank rejects")
    parser.add_argument(
        "--review",
        choices=["none", "reject", "approve"],
        default="none",
        help="after sending, have ops decide the payments in review (default: leave them)",
    )
    parser.add_argument(
        "--ach-cutoff-every",
        type=float,
        default=None,
        help="move the bank's clock to its next ACH cut-off this often, in seconds "
        "(default: 10 on a private stack, never with --connect; 0: never)",
    )
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to wait for ends")
    parser.add_argument("--lookback", type=float, default=5.0, help="event re-read window (s)")
    parser.add_argument("--connections", type=int, default=256, help="HTTP connections")
    parser.add_argument("--seed", type=int, default=1)
    _stack.add_stack_arguments(parser)
    args = parser.parse_args()
    if args.sanctions + args.insufficient + args.rail_reject > 1:
        parser.error("the special shares add up to more than 1")
    with _stack.platform(args) as platform:
        asyncio.run(run(args, platform))
    exit_without_finalizing(0)


if __name__ == "__main__":
    main()
