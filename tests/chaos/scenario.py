"""The chaos scenario: payments in flight while workers, Temporal, PostgreSQL and the bank
misbehave at random (seeded) moments; then every promise is checked.

`make chaos` runs it long (CHAOS_PAYMENTS=300); `make test` runs a short version. A failing
run prints its seed; `CHAOS_SEED=<seed>` replays the same schedule of faults.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from ops.devstack import Stack

RETRYABLE = (httpx.TransportError,)
SEPA_REJECT_IBAN = "FR1420041010050500013M02606"
# the creditor's bank sends these back after settlement (pacs.004, AC06)
SEPA_RETURN_IBAN = "NL91ABNA0417164300"
GOOD_IBAN = "DE89370400440532013000"


@dataclass
class Plan:
    """What to send and which faults to inject, all drawn from one seed."""

    seed: int
    payments: int
    ach_share: float = 0.2
    reject_share: float = 0.05
    return_share: float = 0.05
    events: list[tuple[float, str]] = field(default_factory=list)

    @classmethod
    def draw(cls, seed: int, payments: int, duration: float) -> Plan:
        """Spread each kind of fault over the sending period, at random moments."""
        rng = random.Random(seed)
        plan = cls(seed, payments)
        kinds = [
            "kill_worker",
            "kill_worker2",
            "restart_temporal",
            "restart_postgres",
            "bank_errors",
            "bank_timeouts",
            "bank_duplicate_callbacks",
            "bank_out_of_order",
        ]
        rounds = max(1, payments // 150)
        for _ in range(rounds):
            for kind in kinds:
                plan.events.append((rng.uniform(0.5, duration), kind))
        plan.events.sort()
        return plan


async def http_retry(call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
    """Like a real client: retry transport errors, 5xx and in-flight 409s with the same key."""
    for attempt in range(120):
        try:
            response = await call()
        except RETRYABLE:
            await asyncio.sleep(min(2.0, 0.2 * (attempt + 1)))
            continue
        conflict = response.status_code == 409 and "in_progress" in response.text
        if response.status_code < 500 and not conflict:
            return response
        await asyncio.sleep(min(2.0, 0.2 * (attempt + 1)))
    raise AssertionError("the API never answered")


@dataclass
class Sent:
    """A payment as sent, and what should become of it."""

    payment_id: str
    rail: str
    amount: int
    expect: str  # settled | failed | returned


class Chaos:
    """Runs the fault schedule against a stack."""

    def __init__(self, stack: Stack, plan: Plan) -> None:
        self.stack = stack
        self.plan = plan
        self.log: list[str] = []

    async def run_events(self, started: float) -> None:
        """Fire each planned event at its moment."""
        loop = asyncio.get_running_loop()
        for at, kind in self.plan.events:
            await asyncio.sleep(max(0.0, started + at - loop.time()))
            self.log.append(f"{loop.time() - started:6.1f}s {kind}")
            await getattr(self, kind)()

    async def _bank_faults(self, faults: dict[str, Any], seconds: float) -> None:
        url = f"{self.stack.settings.banksim_url}/v1/admin/faults"
        async with httpx.AsyncClient(timeout=10) as bank:
            await http_retry(lambda: bank.put(url, json={"seed": self.plan.seed, **faults}))
            await asyncio.sleep(seconds)
            await http_retry(lambda: bank.put(url, json={}))

    async def _restart(self, stop: Callable[[], None], start: Callable[[], None]) -> None:
        await asyncio.to_thread(stop)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(start)

    async def _kill_and_restart_worker(self, name: str) -> None:
        await self._restart(lambda: self.stack.kill(name), lambda: self.stack.start_worker(name))

    async def kill_worker(self) -> None:
        """SIGKILL the first worker, restart it a little later."""
        await self._kill_and_restart_worker("worker")

    async def kill_worker2(self) -> None:
        """SIGKILL the second worker, restart it a little later."""
        await self._kill_and_restart_worker("worker2")

    async def restart_temporal(self) -> None:
        """Kill the Temporal dev server; it comes back on its SQLite file."""
        await self._restart(lambda: self.stack.kill("temporal"), self.stack.start_temporal)

    async def restart_postgres(self) -> None:
        """Crash PostgreSQL (immediate shutdown) and start it again."""
        await self._restart(
            lambda: self.stack.postgres.stop("immediate"), self.stack.postgres.start
        )

    async def bank_errors(self) -> None:
        """The bank answers half of all submissions with 503 for a while."""
        await self._bank_faults({"error_rate": 0.5}, 3.0)

    async def bank_timeouts(self) -> None:
        """The bank keeps submissions but answers them too late."""
        await self._bank_faults({"timeout_rate": 0.5, "timeout_seconds": 8.0}, 3.0)

    async def bank_duplicate_callbacks(self) -> None:
        """Every callback arrives twice."""
        await self._bank_faults({"duplicate_callback_rate": 1.0}, 4.0)

    async def bank_out_of_order(self) -> None:
        """Final statuses overtake the acknowledgements."""
        await self._bank_faults({"out_of_order_callbacks": True}, 4.0)


def payment_body(
    rng: random.Random, account: dict[str, str], plan: Plan
) -> tuple[dict[str, Any], str]:
    """A SEPA or ACH payment; a few go to a creditor the bank rejects, a few to one whose
    bank returns the money after settlement."""
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
    return {
        "account_id": account["id"],
        "amount": amount,
        "currency": "EUR",
        "rail": "sepa",
        "creditor": {"name": "Erika Mustermann", "country": iban[:2], "iban": iban},
    }, expect


async def send_payments(
    client: httpx.AsyncClient, plan: Plan, accounts: list[dict[str, str]], spacing: float
) -> list[Sent]:
    """POST every payment (each retried with its own idempotency key until answered)."""
    rng = random.Random(plan.seed + 1)
    sent = []
    for _ in range(plan.payments):
        usd = rng.random() < plan.ach_share
        candidates = [a for a in accounts if (a["currency"] == "USD") == usd]
        body, expect = payment_body(rng, rng.choice(candidates), plan)
        key = str(uuid.uuid4())
        response = await http_retry(
            lambda body=body, key=key: client.post(  # type: ignore[misc]
                "/v1/payments", json=body, headers={"Idempotency-Key": key}
            )
        )
        assert response.status_code in (200, 202), response.text
        sent.append(Sent(response.json()["id"], body["rail"], body["amount"], expect))
        await asyncio.sleep(spacing)
    return sent
