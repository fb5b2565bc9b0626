"""Settlement and callback delivery: what the bank does with a message after accepting it.

Each accepted message gets one asyncio task: wait the settlement delay, decide every
transaction, store the pacs.002, then deliver it to the platform's callback URL with retries.
Every step is persisted first, so a restart resumes exactly where it stopped (see `resume`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime

import httpx
import schwifty

from banksim.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from banksim.store import Store
from iso20022.pacs002 import StatusReport, TransactionStatus, build_pacs002
from iso20022.pacs008 import ParsedPacs008, ParsedTransaction, parse_pacs008
from payments.settings import Settings

logger = logging.getLogger("banksim")

MESSAGE_ID_HEADER = "Banksim-Message-Id"
DEFAULT_MAX_ATTEMPTS = 10
DEFAULT_INITIAL_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
SEPA_CURRENCY = "EUR"


def _valid_iban(iban: str) -> bool:
    try:
        schwifty.IBAN(iban)
    except ValueError:  # schwifty's errors (checksum, length, structure) are ValueErrors
        return False
    return True


def decide_transaction(tx: ParsedTransaction, store: Store) -> TransactionStatus:
    """The bank's verdict on one transaction: checks first, then injected rejections."""
    if tx.currency != SEPA_CURRENCY:
        # SEPA clears euros only (AM03: currency not processable)
        return TransactionStatus(tx.end_to_end_id, "RJCT", "AM03")
    if tx.creditor_iban is None or not _valid_iban(tx.creditor_iban):
        return TransactionStatus(tx.end_to_end_id, "RJCT", "AC01")
    reject_code = store.reject_code_for(tx.creditor_iban)
    if reject_code is not None:
        return TransactionStatus(tx.end_to_end_id, "RJCT", reject_code)
    return TransactionStatus(tx.end_to_end_id, "ACSC")


def decide(message: ParsedPacs008, store: Store) -> StatusReport:
    """The status report answering `message`."""
    return StatusReport(
        # 4 + 31 characters: ISO ids are at most 35 long
        message_id=f"BSIM{uuid.uuid4().hex[:31]}",
        original_message_id=message.message_id,
        created_at=datetime.now(UTC),
        transactions=[decide_transaction(tx, store) for tx in message.transactions],
    )


class Processor:
    """Owns the background task of every message still in flight."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        client: httpx.AsyncClient,
        *,
        max_attempts: int | None = None,
        initial_backoff_seconds: float | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._client = client
        # optional knobs, not (yet) part of Settings: read them if a deployment defines them
        self._max_attempts = max_attempts or int(
            getattr(settings, "banksim_callback_max_attempts", DEFAULT_MAX_ATTEMPTS)
        )
        self._initial_backoff = initial_backoff_seconds or float(
            getattr(settings, "banksim_callback_backoff_seconds", DEFAULT_INITIAL_BACKOFF_SECONDS)
        )
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def schedule(self, message_id: str) -> None:
        """Start processing `message_id` in the background (no-op if already running)."""
        if message_id in self._tasks:
            return
        task = asyncio.create_task(self._run(message_id), name=f"banksim:{message_id}")
        self._tasks[message_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(message_id, None))

    def resume(self) -> int:
        """Reschedule every undecided message and undelivered callback; return how many."""
        message_ids = self._store.unfinished_message_ids()
        for message_id in message_ids:
            self.schedule(message_id)
        if message_ids:
            logger.info("resuming %d unfinished message(s)", len(message_ids))
        return len(message_ids)

    async def aclose(self) -> None:
        """Cancel every task and wait for them; unfinished work resumes on the next start."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, message_id: str) -> None:
        try:
            report = await self._settle(message_id)
            if report is not None:
                await self._deliver(message_id, report)
        except asyncio.CancelledError:
            raise
        except Exception:
            # a bug must not kill the event loop; the message stays unfinished for a restart
            logger.exception("processing message %s failed", message_id)

    async def _settle(self, message_id: str) -> bytes | None:
        stored = self._store.get_message(message_id)
        if stored is None:
            logger.error("message %s vanished from the store", message_id)
            return None
        if stored.callback_delivered and stored.status_report is not None:
            return None
        if stored.status_report is not None:
            return stored.status_report
        # count the delay from receipt, so a restart does not restart the clock
        elapsed = (datetime.now(UTC) - stored.received_at).total_seconds()
        remaining = self._settings.banksim_settle_delay_seconds - elapsed
        if remaining > 0:
            await asyncio.sleep(remaining)
        report = decide(parse_pacs008(stored.body), self._store)
        # if another decision was stored meanwhile, that one is returned and stays final
        final = self._store.save_status_report(message_id, build_pacs002(report))
        logger.info(
            "decided message %s: %s",
            message_id,
            ", ".join(f"{tx.end_to_end_id}={tx.status}" for tx in report.transactions),
        )
        return final

    async def _deliver(self, message_id: str, report: bytes) -> None:
        url = self._settings.banksim_callback_url
        if not url:
            return  # no callback configured: the platform polls the status endpoint
        backoff = self._initial_backoff
        for attempt in range(1, self._max_attempts + 1):
            # sign at send time so a late retry still falls inside the receiver's tolerance
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/xml",
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: sign(self._settings.rail_callback_secret, timestamp, report),
                MESSAGE_ID_HEADER: message_id,
            }
            try:
                response = await self._client.post(url, content=report, headers=headers)
            except httpx.HTTPError as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    self._store.mark_delivered(message_id)
                    logger.info("delivered status of %s (attempt %d)", message_id, attempt)
                    return
                outcome = f"HTTP {response.status_code}"
            logger.warning(
                "callback for %s failed (attempt %d/%d): %s",
                message_id,
                attempt,
                self._max_attempts,
                outcome,
            )
            if attempt < self._max_attempts:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        logger.error("giving up delivering status of %s; it is retried on restart", message_id)
