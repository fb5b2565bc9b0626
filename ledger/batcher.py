"""A micro-batcher: concurrent single transfers sent to the ledger as one batch.

A worker runs dozens of payments' ledger activities at once, each moving one transfer (a
hold, a post, a void). Sent one by one, each is a statement and a commit of its own; the
ledger takes a batch in one statement (ledger/engine.py). `TransferBatcher.create` waits at
most `window` seconds for other callers, then sends every transfer gathered so far (at most
`max_batch`) as one batch, and answers each caller with its own transfer's result.

What each caller sees is what `create_transfer` would have answered it alone:

- an unlinked event of a batch succeeds or fails on its own (ledger/models.py, rule 4), so a
  refused transfer (insufficient funds, an unknown account) fails only its caller;
- idempotency is the ledger's, by transfer id, as for a batch of one (EXISTS, the stored
  failure); two callers with the same id never share a batch: the second waits for the next
  one, and so sees the first's outcome as it would have sequentially;
- if the batch's statement itself raises (not a result: an error), each of its transfers is
  sent again alone, so an error belongs to the one transfer that causes it.

Only unlinked transfers are batched: a linked chain must stay one caller's batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.engine import create_transfer, create_transfers
from ledger.models import Transfer, TransferResult


@dataclass
class _Batch:
    """Transfers gathered for one round trip, each with its caller's future."""

    transfers: list[Transfer] = field(default_factory=list)
    futures: list[asyncio.Future[TransferResult]] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    # set once the batch was sent and every caller answered
    sent: asyncio.Event = field(default_factory=asyncio.Event)


class TransferBatcher:
    """Groups concurrent `create` calls arriving within `window` seconds into one batch."""

    def __init__(self, engine: AsyncEngine, *, window: float = 0.002, max_batch: int = 100):
        self._engine = engine
        self._window = window
        self._max_batch = max_batch
        self._open: _Batch | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # what was sent, for the bench and the tests: batches and transfers
        self.batches = 0
        self.transfers = 0

    async def create(self, transfer: Transfer) -> TransferResult:
        """Apply one transfer in the next batch; its own result (as `create_transfer`)."""
        if transfer.linked:
            raise ValueError("a linked transfer belongs in its own caller's batch")
        while True:
            batch = self._open
            if batch is None:
                batch = self._open = _Batch()
                self._spawn(self._send_after_window(batch))
            if transfer.id not in batch.ids:
                break
            # the same id is already in this batch (a retry racing its first attempt): wait
            # for it to be sent, then join the next one
            await batch.sent.wait()
        future: asyncio.Future[TransferResult] = asyncio.get_running_loop().create_future()
        batch.transfers.append(transfer)
        batch.futures.append(future)
        batch.ids.add(transfer.id)
        if len(batch.transfers) >= self._max_batch:
            self._close(batch)
            self._spawn(self._send(batch))
        # shielded: a cancelled caller leaves its transfer in the batch (it may already be
        # committed); its result is simply not awaited
        return await asyncio.shield(future)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _close(self, batch: _Batch) -> None:
        if self._open is batch:
            self._open = None

    async def _send_after_window(self, batch: _Batch) -> None:
        await asyncio.sleep(self._window)
        if self._open is batch:
            self._close(batch)
            await self._send(batch)

    async def _send(self, batch: _Batch) -> None:
        try:
            self.batches += 1
            self.transfers += len(batch.transfers)
            try:
                results = await create_transfers(self._engine, batch.transfers)
            except Exception:
                await asyncio.gather(
                    *(
                        self._alone(transfer, future)
                        for transfer, future in zip(batch.transfers, batch.futures, strict=True)
                    )
                )
                return
            for future, result in zip(batch.futures, results, strict=True):
                if not future.done():
                    future.set_result(result)
        finally:
            # (cancelled while sending, at shutdown: no caller waits forever)
            for future in batch.futures:
                if not future.done():
                    future.set_exception(RuntimeError("the ledger batch was not sent"))
            batch.sent.set()

    async def _alone(self, transfer: Transfer, future: asyncio.Future[TransferResult]) -> None:
        try:
            result = await create_transfer(self._engine, transfer)
        except Exception as error:
            if not future.done():
                future.set_exception(error)
            return
        if not future.done():
            future.set_result(result)
