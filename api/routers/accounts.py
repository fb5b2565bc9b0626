"""Ledger accounts of customers, with balances."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from api.deps import Engine, Reader, Writer
from api.errors import ProblemError
from api.fields import ACCOUNT_ID, ENTRY_ID, EXAMPLE_ACCOUNT_ID
from api.problems import (
    ACCOUNT_NOT_FOUND,
    AUTHENTICATED,
    INVALID_CURSOR,
    UNKNOWN_CUSTOMER,
    UNSUPPORTED_CURRENCY,
    WITH_BODY,
    WITH_PARAMETERS,
    problems,
)
from api.schemas import CURRENCIES, AccountCreate, AccountOut, Balances, EntryList, EntryOut
from kernel.db import autocommit
from kernel.ids import new_id
from kernel.tables import customers
from ledger import Account, Entry, account_entries, open_account
from ledger.engine import account_from_row
from ledger.tables import ledger_accounts

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])
AccountIdPath = Annotated[str, Path(pattern=ACCOUNT_ID, examples=[EXAMPLE_ACCOUNT_ID])]


def account_out(account: Account, created_at: Any) -> AccountOut:
    """Render an account with its derived balances."""
    assert account.customer_id is not None
    return AccountOut(
        id=account.id,
        customer_id=account.customer_id,
        currency=account.currency,
        balances=Balances(
            posted=account.posted, pending=account.pending, available=account.available
        ),
        created_at=created_at,
    )


def check_currency(currency: str) -> None:
    """Only currencies the platform holds accounts in."""
    if currency not in CURRENCIES:
        raise ProblemError(
            422, "unsupported_currency", f"Currency {currency} is not supported.", param="currency"
        )


@router.post(
    "",
    status_code=201,
    response_model=AccountOut,
    responses=problems(AUTHENTICATED, WITH_BODY, UNSUPPORTED_CURRENCY, UNKNOWN_CUSTOMER),
)
async def create_account(body: AccountCreate, principal: Writer, engine: Engine) -> AccountOut:
    """Open an account for one of the tenant's customers in one currency."""
    check_currency(body.currency)
    async with engine.begin() as conn:
        owner = (
            await conn.execute(
                select(customers.c.id).where(
                    customers.c.id == body.customer_id,
                    customers.c.tenant_id == principal.tenant_id,
                )
            )
        ).first()
        if owner is None:
            raise ProblemError(
                422, "customer_not_found", f"No customer {body.customer_id}.", param="customer_id"
            )
        account = await open_account(
            conn,
            account_id=new_id("acc"),
            tenant_id=principal.tenant_id,
            customer_id=body.customer_id,
            currency=body.currency,
        )
        created = await _created_at(conn, account.id)
    return account_out(account, created)


async def _created_at(conn: Any, account_id: str) -> Any:
    return (
        await conn.execute(
            select(ledger_accounts.c.created_at).where(ledger_accounts.c.id == account_id)
        )
    ).scalar_one()


async def load_customer_account(engine: Engine, tenant_id: str | None, account_id: str) -> Any:
    """The tenant's customer account row, or None (another tenant's id is simply not found);
    `tenant_id` None: any tenant's (platform work: deposits)."""
    query = select(ledger_accounts).where(
        ledger_accounts.c.id == account_id, ledger_accounts.c.kind == "customer"
    )
    if tenant_id is not None:
        query = query.where(ledger_accounts.c.tenant_id == tenant_id)
    async with autocommit(engine) as conn:  # one read: no BEGIN, no ROLLBACK
        return (await conn.execute(query)).first()


@router.get(
    "/{account_id}",
    response_model=AccountOut,
    responses=problems(AUTHENTICATED, WITH_PARAMETERS, ACCOUNT_NOT_FOUND),
)
async def get_account(account_id: AccountIdPath, principal: Reader, engine: Engine) -> AccountOut:
    """Read an account and its balances."""
    row = await load_customer_account(engine, principal.tenant_id, account_id)
    if row is None:
        raise ProblemError(404, "account_not_found", f"No account {account_id}.")
    return account_out(account_from_row(row), row.created_at)


@router.get(
    "/{account_id}/entries",
    response_model=EntryList,
    responses=problems(AUTHENTICATED, WITH_PARAMETERS, ACCOUNT_NOT_FOUND, INVALID_CURSOR),
)
async def list_entries(
    account_id: AccountIdPath,
    principal: Reader,
    engine: Engine,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: Annotated[str | None, Query(pattern=ENTRY_ID)] = None,
) -> EntryList:
    """The account's ledger entries, newest first; page with `starting_after=<entry id>`."""
    row = await load_customer_account(engine, principal.tenant_id, account_id)
    if row is None:
        raise ProblemError(404, "account_not_found", f"No account {account_id}.")
    before = None
    if starting_after is not None:
        prefix, _, version = starting_after.rpartition(":")
        if prefix != account_id or not version.isdigit():
            raise ProblemError(
                422,
                "invalid_cursor",
                "starting_after must be an entry id of this account.",
                param="starting_after",
            )
        before = int(version)
    async with engine.connect() as conn:
        entries = await account_entries(conn, account_id, limit=limit + 1, before_version=before)
    return EntryList(
        data=[_entry_out(entry) for entry in entries[:limit]], has_more=len(entries) > limit
    )


def _entry_out(entry: Entry) -> EntryOut:
    posted = entry.credits_posted_delta - entry.debits_posted_delta
    pending = entry.credits_pending_delta - entry.debits_pending_delta
    return EntryOut(
        id=f"{entry.account_id}:{entry.version}",
        account_id=entry.account_id,
        version=entry.version,
        transfer_id=entry.transfer_id,
        posted_change=posted,
        pending_change=pending,
        balances_after=Balances(
            posted=entry.credits_posted - entry.debits_posted,
            pending=entry.credits_pending - entry.debits_pending,
            available=entry.credits_posted - entry.debits_posted - entry.debits_pending,
        ),
        created_at=entry.created_at,
    )
