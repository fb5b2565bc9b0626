"""Callback delivery: every callback the bank sends goes through a persisted outbox.

A callback is signed at send time (see `banksim.signing`) and retried with exponential backoff
until the receiver answers 2xx. Callbacks of one stream (a SEPA message, an ACH file) go one
after the other: each waits until the previous one was acknowledged, so the platform sees
them in order, unless the out-of-order fault holds one back and lets a later one overtake it.
Undelivered callbacks resume when the simulator restarts. A callback queued with `copies=0`
(the drop-final-callback fault) is never sent, but still counts as delivered in its stream's
order, so the callbacks after it are not stuck behind it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from enum import StrEnum
from functools import partial

import httpx

from banksim.signing import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from banksim.store import Store
from kernel.settings import Settings, secret_list

logger = logging.getLogger("banksim")

MAX_BACKOFF_SECONDS = 30.0


class CallbackKind(StrEnum):
    """What a callback carries, which decides where it goes."""

    SEPA_STATUS = "sepa.status"  # pacs.002
    SEPA_RETURN = "sepa.return"  # pacs.004, to the same SEPA receiver
    SEPA_RECALL = "sepa.recall"  # camt.029 answering a recall, to the same SEPA receiver
    ACH_SETTLEMENT = "ach.settlement"  # JSON settlement notice
    ACH_RETURN = "ach.return"  # NACHA return file


class Outbox:
    """Queues callbacks in the store and delivers them in the background."""

    def __init__(self, store: Store, settings: Settings, client: httpx.AsyncClient) -> None:
        self._store = store
        self._settings = settings
        self._client = client
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._kick_pending = False
        self._closed = False
        # callbacks whose attempts ran out: left alone until the next start of the simulator
        self._given_up: set[int] = set()

    def url_for(self, kind: str) -> str:
        """The receiver of callbacks of `kind` (empty: none configured)."""
        return {
            CallbackKind.SEPA_STATUS: self._settings.banksim.callback_url,
            CallbackKind.SEPA_RETURN: self._settings.banksim.callback_url,
            CallbackKind.SEPA_RECALL: self._settings.banksim.callback_url,
            CallbackKind.ACH_SETTLEMENT: self._settings.banksim.ach_callback_url,
            CallbackKind.ACH_RETURN: self._settings.banksim.ach_returns_url,
        }[CallbackKind(kind)]

    def enqueue(
        self,
        *,
        kind: CallbackKind,
        stream: str,
        body: bytes,
        content_type: str,
        headers: dict[str, str],
        copies: int,
        created_at: float,
        hold: bool = False,
        overtake: bool = False,
        event_id: str | None = None,
    ) -> int:
        """Queue a callback of `stream`; return its outbox id.

        By default it goes after the stream's previous callback. `hold` keeps it back until a
        later callback of the stream is queued with `overtake`, which goes first and releases
        the held ones to follow it. `copies=0` drops it: never sent, but marked delivered in
        turn so the stream goes on.
        """
        with self._store.transaction():
            blocked_by = None if overtake else self._store.last_outbox_id(stream)
            item_id = self._store.add_outbox(
                event_id=event_id or f"evt_{uuid.uuid4().hex}",
                kind=kind,
                stream=stream,
                content_type=content_type,
                body=body,
                headers=headers,
                copies=copies,
                held=hold,
                blocked_by=blocked_by,
                created_at=created_at,
            )
            if overtake:
                self._store.release_held(stream, after=item_id)
        if copies == 0:
            logger.warning("callback %s %s dropped (injected fault)", kind, stream)
        self.kick()
        return item_id

    def kick(self) -> None:
        """Start delivering whatever is ready, once the current transaction has committed."""
        if self._kick_pending or self._closed:
            return
        self._kick_pending = True
        # call_soon: the caller may still be inside a store transaction
        asyncio.get_running_loop().call_soon(self._start_ready)

    def resume(self) -> int:
        """Start every ready callback left over from a previous run; return how many."""
        ready = self._store.ready_outbox_ids()
        if ready:
            logger.info("resuming %d undelivered callback(s)", len(ready))
        self.kick()
        return len(ready)

    async def aclose(self) -> None:
        """Stop delivering; what is undelivered resumes on the next start."""
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _start_ready(self) -> None:
        self._kick_pending = False
        if self._closed:
            return
        for item_id in self._store.ready_outbox_ids():
            if item_id in self._tasks or item_id in self._given_up:
                continue
            task = asyncio.create_task(self._deliver(item_id), name=f"banksim:callback:{item_id}")
            self._tasks[item_id] = task
            task.add_done_callback(partial(self._forget, item_id))

    def _forget(self, item_id: int, _: asyncio.Task[None]) -> None:
        self._tasks.pop(item_id, None)

    async def _deliver(self, item_id: int) -> None:
        try:
            item = self._store.get_outbox(item_id)
            if item is None or item.delivered:
                return
            url = self.url_for(item.kind)
            sent = item.sent
            # no receiver configured: the platform polls; later callbacks must not wait on this
            while url and sent < item.copies:
                if not await self._post(url, item.id):
                    self._given_up.add(item.id)
                    return
                sent = self._store.count_sent(item.id)
            self._store.mark_delivered(item.id)
            self.kick()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("delivering callback %d failed", item_id)

    async def _post(self, url: str, item_id: int) -> bool:
        item = self._store.get_outbox(item_id)
        assert item is not None
        backoff = self._settings.banksim.callback_backoff_seconds
        attempts = self._settings.banksim.callback_max_attempts
        for attempt in range(1, attempts + 1):
            # signed at send time (real time) so a late retry is within the receiver's tolerance
            timestamp = int(time.time())
            headers = {
                **item.headers,
                "Content-Type": item.content_type,
                EVENT_ID_HEADER: item.event_id,
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: sign(
                    secret_list(self._settings.rails.callback_secret),
                    item.event_id,
                    timestamp,
                    item.body,
                ),
            }
            try:
                response = await self._client.post(url, content=item.body, headers=headers)
            except httpx.HTTPError as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    logger.info("delivered %s %s (attempt %d)", item.kind, item.stream, attempt)
                    return True
                outcome = f"HTTP {response.status_code}"
            logger.warning(
                "callback %s %s failed (attempt %d/%d): %s",
                item.kind,
                item.stream,
                attempt,
                attempts,
                outcome,
            )
            if attempt < attempts:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        logger.error("giving up on %s %s until the next start", item.kind, item.stream)
        return False
