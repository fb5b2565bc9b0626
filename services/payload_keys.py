"""Retiring a payload master key (docs/runbooks/breach-payload-key.md).

A master key (`PAYMENTS_PAYLOAD_KEYS`) protects two things: the data keys wrapped under it
in `payload_data_keys`, and the payloads encrypted under it directly (workflows about
nobody in particular, the schedules' stored inputs, payloads older than data keys). Once a
new master key is current everywhere, `rewrap` moves the first and the schedules to it;
`usage` says what still needs the old key (data keys, schedules, open workflows whose
histories hold a payload under it), so the old key is removed only when nothing does and no
running payment loses its history.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from kernel.codec import KEY_ID, codec_for, parse_keys, unwrap_data_key, wrap_data_key
from kernel.settings import Settings
from kernel.tables import payload_data_keys
from services.unit_of_work import UnitOfWork

# data keys re-wrapped per transaction: a crash loses at most one batch's work, which the
# next run redoes (a row is re-wrapped only while it still names an old key)
REWRAP_BATCH = 500


@dataclass
class RewrapReport:
    """What `rewrap` moved to the current master key."""

    data_keys: int = 0
    schedules: list[str] = field(default_factory=list)


@dataclass
class KeyUsage:
    """What still needs a master key: nothing of it, and it can be removed."""

    key_id: str
    data_keys: int = 0
    schedules: list[str] = field(default_factory=list)
    workflows: list[str] = field(default_factory=list)

    @property
    def unused(self) -> bool:
        """True when removing the key loses nothing."""
        return not (self.data_keys or self.schedules or self.workflows)


async def rewrap_data_keys(
    engine: AsyncEngine, settings: Settings, *, batch: int = REWRAP_BATCH
) -> int:
    """Wrap every data key that names another master key under the current one; returns how
    many. Rows are locked while re-wrapped: a key shredded meanwhile waits for the batch,
    then is deleted as usual; one made meanwhile is made under the current key already."""
    masters = parse_keys(settings.codec.payload_keys)
    current = settings.codec.payload_key_id
    done, after = 0, ""
    while True:
        async with engine.begin() as conn:
            # keyset pagination along the primary key: each batch reads its own range, not
            # the whole table again
            rows = (
                await conn.execute(
                    select(payload_data_keys)
                    .where(
                        payload_data_keys.c.subject > after,
                        payload_data_keys.c.master_key_id != current,
                    )
                    .order_by(payload_data_keys.c.subject)
                    .limit(batch)
                    .with_for_update()
                )
            ).all()
            for row in rows:
                master = masters.get(row.master_key_id)
                if master is None:
                    raise ValueError(
                        f"data key of {row.subject} is wrapped under {row.master_key_id!r},"
                        " which PAYMENTS_PAYLOAD_KEYS no longer lists: add it back to rewrap"
                    )
                key = unwrap_data_key(master, row.subject, row.wrapped)
                await conn.execute(
                    update(payload_data_keys)
                    .where(payload_data_keys.c.subject == row.subject)
                    .values(
                        master_key_id=current,
                        wrapped=wrap_data_key(masters[current], row.subject, key),
                    )
                )
        done += len(rows)
        if len(rows) < batch:
            return done
        after = rows[-1].subject


def key_ids_of(message: Message) -> Iterator[str]:
    """The master key ids of every payload in a Temporal message (a history event, a
    schedule), read from their metadata: nothing is decrypted."""
    if isinstance(message, Payload):
        if KEY_ID in message.metadata:
            yield message.metadata[KEY_ID].decode(errors="replace")
        return
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        if descriptor.message_type.GetOptions().map_entry:
            items: list[Any] = list(value.values())
        elif descriptor.is_repeated:
            items = list(value)
        else:
            items = [value]
        for item in items:
            if isinstance(item, Message):
                yield from key_ids_of(item)


async def _schedule_key_ids(client: Client, schedule_id: str) -> set[str]:
    """The master keys of every payload a schedule stores (its input, headers, memo)."""
    described = await client.get_schedule_handle(schedule_id).describe()
    return set(key_ids_of(described.raw_description))


async def rewrap_schedules(client: Client, settings: Settings) -> list[str]:
    """Re-encrypt every payload a schedule stores under another master key than the current
    one (its input, and the headers and memo its creator's interceptors added, which the
    workflows it starts copy into their histories); returns the schedules' ids."""
    codec = codec_for(settings, data_keys=False)
    current = settings.codec.payload_key_id

    async def moved(payload: Any) -> Any:
        # payload to payload: no type is needed; a payload in clear (or not a payload) stays
        # as it is, so nothing is encrypted that a reader expects in clear
        if not isinstance(payload, Payload) or KEY_ID not in payload.metadata:
            return payload
        if payload.metadata[KEY_ID].decode(errors="replace") == current:
            return payload
        return (await codec.encode(await codec.decode([payload])))[0]

    async def reencrypt(update_input: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule = update_input.description.schedule
        action = schedule.action
        if isinstance(action, ScheduleActionStartWorkflow):
            action.args = [await moved(arg) for arg in action.args]
            if action.headers:
                action.headers = {k: await moved(v) for k, v in action.headers.items()}
            if action.memo:
                action.memo = {k: await moved(v) for k, v in action.memo.items()}
            action.static_summary = await moved(action.static_summary)
            action.static_details = await moved(action.static_details)
        return ScheduleUpdate(schedule=schedule)

    rewrapped = []
    async for listed in await client.list_schedules():
        if await _schedule_key_ids(client, listed.id) - {current}:
            await client.get_schedule_handle(listed.id).update(reencrypt)
            rewrapped.append(listed.id)
    return rewrapped


async def rewrap(
    engine: AsyncEngine, client: Client, settings: Settings, *, actor: str
) -> RewrapReport:
    """Move data keys and schedules to the current master key; audited."""
    report = RewrapReport(
        data_keys=await rewrap_data_keys(engine, settings),
        schedules=await rewrap_schedules(client, settings),
    )
    async with UnitOfWork(engine) as uow:
        uow.audit(
            actor=actor,
            action="payload_keys.rewrapped",
            subject=settings.codec.payload_key_id,
            detail={"data_keys": report.data_keys, "schedules": report.schedules},
        )
    return report


async def usage(engine: AsyncEngine, client: Client, key_id: str) -> KeyUsage:
    """What still needs master key `key_id`: data keys wrapped under it, schedules whose
    input is encrypted under it, and open workflows with a payload under it in their
    histories (a worker replaying one would fail without the key)."""
    found = KeyUsage(key_id)
    async with engine.connect() as conn:
        found.data_keys = (
            await conn.execute(
                select(func.count()).where(payload_data_keys.c.master_key_id == key_id)
            )
        ).scalar_one()
    async for listed in await client.list_schedules():
        if key_id in await _schedule_key_ids(client, listed.id):
            found.schedules.append(listed.id)
    async for execution in client.list_workflows('ExecutionStatus="Running"'):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        history = await handle.fetch_history()
        if any(k == key_id for event in history.events for k in key_ids_of(event)):
            found.workflows.append(execution.id)
    found.workflows.sort()
    return found
