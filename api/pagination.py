"""Keyset pagination of a tenant's objects, newest first (`?limit=` and `?starting_after=`).

Every listed table has `id`, `tenant_id` and `created_at`, and an index on (tenant, [filter,]
created_at DESC, id DESC), so a page costs the same with any history behind it
(tests/integration/test_query_plans.py checks each list's plan).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, Table, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from api.errors import ProblemError


def cursor_query(table: Table, tenant_id: str, object_id: str) -> Select[Any]:
    """The keyset position (created_at) of the tenant's object a page starts after."""
    return select(table.c.created_at).where(table.c.id == object_id, table.c.tenant_id == tenant_id)


async def keyset_after(
    conn: AsyncConnection, table: Table, tenant_id: str, starting_after: str | None, noun: str
) -> tuple[Any, str] | None:
    """The keyset position a page starts after (None: the first page); 422
    `invalid_cursor` when `starting_after` is not one of the tenant's objects (`noun`: "a
    deposit", ...)."""
    if starting_after is None:
        return None
    cursor = (
        await conn.execute(cursor_query(table, tenant_id, starting_after))
    ).scalar_one_or_none()
    if cursor is None:
        raise ProblemError(
            422,
            "invalid_cursor",
            f"starting_after is not {noun} of yours.",
            param="starting_after",
        )
    return cursor, starting_after


def page_query(
    table: Table,
    tenant_id: str,
    *,
    limit: int,
    after: tuple[Any, str] | None,
    filters: Mapping[str, object | None],
) -> Select[Any]:
    """A page of the tenant's rows, newest first, after the (created_at, id) keyset position
    `after`, with each filter whose value is not None; one row more than `limit` tells
    whether there are more."""
    query = select(table).where(table.c.tenant_id == tenant_id)
    if after is not None:
        query = query.where(tuple_(table.c.created_at, table.c.id) < tuple_(*after))
    for column, value in filters.items():
        if value is not None:
            query = query.where(table.c[column] == value)
    return query.order_by(table.c.created_at.desc(), table.c.id.desc()).limit(limit + 1)
