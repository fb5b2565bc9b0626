"""The data keys of the payload codec in PostgreSQL (`payload_data_keys`, migration 0020).

Each row is one subject's random AES-256 key, wrapped (AES-GCM, bound to the subject) under
the master key current when it was made; the row names that master key, so master keys
rotate as before (a wrapped key stays usable while its master key is listed). Deleting the
row shreds the key: the database never held it in clear, and no copy of a payload or a
sealed field anywhere can be decrypted again.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from kernel.codec import parse_keys, unwrap_data_key, wrap_data_key
from kernel.db import autocommit, get_engine
from kernel.settings import Settings
from kernel.tables import customers, payload_data_keys, payments


class PostgresKeyStore:
    """Data keys wrapped under the master keys, one row per subject."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._masters = parse_keys(settings.codec.payload_keys)
        self._current = settings.codec.payload_key_id

    def _unwrap(self, subject: str, master_key_id: str, wrapped: bytes) -> bytes:
        master = self._masters.get(master_key_id)
        if master is None:
            raise ValueError(
                f"data key of {subject} is wrapped under unknown key {master_key_id!r}"
            )
        return unwrap_data_key(master, subject, wrapped)

    async def get(self, subject: str) -> bytes | None:
        """The subject's key, or None when there is none (never made, or shredded)."""
        # the engine is looked up per call: tests and tools dispose engines between uses
        async with get_engine(self._settings).connect() as conn:
            # one statement, no transaction around it: no BEGIN and ROLLBACK round trips,
            # and no session idle in a transaction while this busy process gets back to it
            # (every workflow start and payload read comes here)
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            row = (
                await conn.execute(
                    select(payload_data_keys.c.master_key_id, payload_data_keys.c.wrapped).where(
                        payload_data_keys.c.subject == subject
                    )
                )
            ).first()
        return None if row is None else self._unwrap(subject, row.master_key_id, row.wrapped)

    async def get_or_create(self, subject: str, *, expect_new: bool = False) -> bytes:
        """The subject's key; the first caller makes it (a racing second one reads it).
        `expect_new`: insert first, read only if the key was there (one round trip for a
        new subject instead of a read that finds nothing, then the insert)."""
        if not expect_new:
            found = await self.get(subject)
            if found is not None:
                return found
        key = AESGCM.generate_key(256)
        wrapped = wrap_data_key(self._masters[self._current], subject, key)
        async with autocommit(get_engine(self._settings)) as conn:  # one statement
            made = (
                await conn.execute(
                    insert(payload_data_keys)
                    .values(subject=subject, master_key_id=self._current, wrapped=wrapped)
                    .on_conflict_do_nothing(index_elements=["subject"])
                    .returning(payload_data_keys.c.subject)
                )
            ).first()
        if made is not None:
            return key
        raced = await self.get(subject)
        if raced is None:  # made and shredded in between: nobody can have used it
            return await self.get_or_create(subject)
        return raced

    async def shred(self, subjects: Sequence[str]) -> int:
        """Delete these subjects' keys."""
        if not subjects:
            return 0
        async with get_engine(self._settings).begin() as conn:
            result = await conn.execute(
                delete(payload_data_keys).where(payload_data_keys.c.subject.in_(list(subjects)))
            )
        return int(result.rowcount)

    async def tenant_of(self, subject: str) -> str | None:
        """The tenant of the payment (`pay_…`) or customer (`cus_…`) the subject names."""
        table = payments if subject.startswith("pay_") else customers
        if not subject.startswith(("pay_", "cus_")):
            return None
        async with autocommit(get_engine(self._settings)) as conn:  # one read
            tenant: str | None = (
                await conn.execute(select(table.c.tenant_id).where(table.c.id == subject))
            ).scalar()
        return tenant
