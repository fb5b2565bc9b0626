"""Re-wrapping data keys under a new master key (`payments payload-keys rewrap`): every key
moves, batch after batch, and reads the same under the new master key alone."""

from __future__ import annotations

import base64
import os

import pytest

from kernel.data_keys import PostgresKeyStore
from kernel.db import dispose_engines, get_engine
from ops.devstack import Stack
from services.payload_keys import rewrap_data_keys


async def test_every_data_key_moves_to_the_new_master_key_and_reads_the_same(
    database: Stack, isolated_database_url: str
) -> None:
    before = database.settings.updated({"database.url": isolated_database_url})
    subjects = [f"pay_rewrap_{n}" for n in range(5)]
    keys = {s: await PostgresKeyStore(before).get_or_create(s) for s in subjects}
    new_entry = f"new-master:{base64.b64encode(os.urandom(32)).decode()}"
    during = before.updated(
        {
            "codec.payload_keys": f"{new_entry},{before.codec.payload_keys}",
            "codec.payload_key_id": "new-master",
        }
    )
    engine = get_engine(during)
    try:
        # batches of two: the last one is partial, and a second run finds nothing to do
        assert await rewrap_data_keys(engine, during, batch=2) == 5
        assert await rewrap_data_keys(engine, during, batch=2) == 0
        after = during.updated({"codec.payload_keys": new_entry})
        store = PostgresKeyStore(after)
        assert {s: await store.get(s) for s in subjects} == keys
        # the old master key alone no longer opens them
        with pytest.raises(ValueError, match="new-master"):
            await PostgresKeyStore(before).get(subjects[0])
        # shredding works as before
        assert await store.shred(subjects[:1]) == 1
        assert await store.get(subjects[0]) is None
    finally:
        await dispose_engines()
