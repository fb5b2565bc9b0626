"""Ledger value types and the exact semantics of a transfer batch (TigerBeetle's, in SQL).

Accounts
    Each account has a currency, a kind, two flags and four balances (minor units, >= 0):
    debits_pending, debits_posted, credits_pending, credits_posted. `version` counts the
    entries posted to it. Flags:
      - debits_must_not_exceed_credits: debits_pending + debits_posted <= credits_posted
      - credits_must_not_exceed_debits: credits_pending + credits_posted <= debits_posted

Transfers (`create_transfers(engine, batch, now)` → one `TransferResult` per event, in order)
    Events are applied one after another; later events see earlier events' effects.

    1. Repeated id. If a transfer with this id exists, the result is EXISTS when every field
       the request gives equals the stored transfer, else the first difference in this order:
       flags (kind or linked), pending_id, timeout, debit_account_id, credit_account_id,
       amount, currency, code → EXISTS_WITH_DIFFERENT_<FIELD>. Fields left None in a
       post/void request (inherited from the pending transfer) are not compared.
       If this id failed before (not EXISTS*, not LINKED_*), the result is ID_ALREADY_FAILED.
    2. New single or pending transfer, checked in this order:
       TIMEOUT_RESERVED_FOR_PENDING_TRANSFER (timeout > 0 on a non-pending transfer);
       PENDING_ID_MUST_BE_EMPTY; AMOUNT_MUST_BE_POSITIVE (None or <= 0);
       ACCOUNTS_MUST_BE_DIFFERENT; DEBIT_ACCOUNT_NOT_FOUND; CREDIT_ACCOUNT_NOT_FOUND;
       CURRENCY_MISMATCH (currency differs from either account's);
       EXCEEDS_CREDITS (debit account's flag would be violated);
       EXCEEDS_DEBITS (credit account's flag would be violated).
       Single: debit.debits_posted += a, credit.credits_posted += a.
       Pending: debit.debits_pending += a, credit.credits_pending += a; if timeout > 0 the
       transfer expires at now + timeout seconds.
    3. New post_pending / void_pending, checked in this order:
       TIMEOUT_RESERVED_FOR_PENDING_TRANSFER; PENDING_ID_REQUIRED;
       PENDING_ID_MUST_BE_DIFFERENT (pending_id == id); AMOUNT_MUST_BE_POSITIVE (amount given
       and <= 0); PENDING_TRANSFER_NOT_FOUND; PENDING_TRANSFER_NOT_PENDING (it is not a
       pending transfer); PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID /
       _CREDIT_ACCOUNT_ID / _CURRENCY (given and different);
       PENDING_TRANSFER_ALREADY_POSTED / PENDING_TRANSFER_ALREADY_VOIDED /
       PENDING_TRANSFER_EXPIRED (already resolved, or now >= its expiry);
       EXCEEDS_PENDING_TRANSFER_AMOUNT (post: amount > pending amount);
       PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT (void: amount given and != pending amount).
       Post of amount a (default: the pending amount p): debits_pending -= p,
       debits_posted += a on the debit account; credits_pending -= p, credits_posted += a on
       the credit account (a partial post releases the rest). Void: both pendings -= p.
       The stored post/void transfer carries the resolved accounts, amount and currency.
    4. Linked chains. An event with linked=True chains to the next event; a chain ends at
       the first event with linked=False. An event fails when its result is anything but OK
       or EXISTS (so retrying a whole chain answers EXISTS for each event). If any event of a
       chain fails, none of the chain
       takes effect: the failing event gets its own result and every other event of the
       chain gets LINKED_EVENT_FAILED. If the batch ends while a chain is open, every event
       of that chain gets LINKED_EVENT_CHAIN_OPEN and nothing of it takes effect.
    5. A failed event's id is remembered (ID_ALREADY_FAILED next time), except for
       LINKED_EVENT_FAILED and LINKED_EVENT_CHAIN_OPEN, whose ids stay free.

Expiry (`expire_pending_transfers(engine, now)`): every unresolved pending transfer whose
    expiry is <= now is released as a void would, recorded as a transfer of kind
    `expire_pending` with id `<pending id>~expired`; returns how many expired.

Entries: every balance change writes one entry per account leg with the account's balances
    and version after it, so any historical balance is one lookup.
"""

from __future__ import annotations

import enum
import zlib
from dataclasses import dataclass
from datetime import datetime


class TransferKind(enum.StrEnum):
    """What a transfer does to balances (TigerBeetle's two-phase semantics)."""

    SINGLE = "single"  # posted at once
    PENDING = "pending"  # reserves: moves amounts into the *_pending balances
    POST_PENDING = "post_pending"  # turns a reservation into a posted movement
    VOID_PENDING = "void_pending"  # releases a reservation
    EXPIRE_PENDING = "expire_pending"  # written by expiry only, never by callers


class TransferResult(enum.StrEnum):
    """Outcome of one event of a batch; anything but OK changed nothing."""

    OK = "ok"
    LINKED_EVENT_FAILED = "linked_event_failed"
    LINKED_EVENT_CHAIN_OPEN = "linked_event_chain_open"
    EXISTS = "exists"
    EXISTS_WITH_DIFFERENT_FLAGS = "exists_with_different_flags"
    EXISTS_WITH_DIFFERENT_PENDING_ID = "exists_with_different_pending_id"
    EXISTS_WITH_DIFFERENT_TIMEOUT = "exists_with_different_timeout"
    EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID = "exists_with_different_debit_account_id"
    EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID = "exists_with_different_credit_account_id"
    EXISTS_WITH_DIFFERENT_AMOUNT = "exists_with_different_amount"
    EXISTS_WITH_DIFFERENT_CURRENCY = "exists_with_different_currency"
    EXISTS_WITH_DIFFERENT_CODE = "exists_with_different_code"
    ID_ALREADY_FAILED = "id_already_failed"
    TIMEOUT_RESERVED_FOR_PENDING_TRANSFER = "timeout_reserved_for_pending_transfer"
    PENDING_ID_MUST_BE_EMPTY = "pending_id_must_be_empty"
    PENDING_ID_REQUIRED = "pending_id_required"
    PENDING_ID_MUST_BE_DIFFERENT = "pending_id_must_be_different"
    AMOUNT_MUST_BE_POSITIVE = "amount_must_be_positive"
    ACCOUNTS_MUST_BE_DIFFERENT = "accounts_must_be_different"
    DEBIT_ACCOUNT_NOT_FOUND = "debit_account_not_found"
    CREDIT_ACCOUNT_NOT_FOUND = "credit_account_not_found"
    CURRENCY_MISMATCH = "currency_mismatch"
    EXCEEDS_CREDITS = "exceeds_credits"
    EXCEEDS_DEBITS = "exceeds_debits"
    PENDING_TRANSFER_NOT_FOUND = "pending_transfer_not_found"
    PENDING_TRANSFER_NOT_PENDING = "pending_transfer_not_pending"
    PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID = (
        "pending_transfer_has_different_debit_account_id"
    )
    PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID = (
        "pending_transfer_has_different_credit_account_id"
    )
    PENDING_TRANSFER_HAS_DIFFERENT_CURRENCY = "pending_transfer_has_different_currency"
    PENDING_TRANSFER_ALREADY_POSTED = "pending_transfer_already_posted"
    PENDING_TRANSFER_ALREADY_VOIDED = "pending_transfer_already_voided"
    PENDING_TRANSFER_EXPIRED = "pending_transfer_expired"
    EXCEEDS_PENDING_TRANSFER_AMOUNT = "exceeds_pending_transfer_amount"
    PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT = "pending_transfer_has_different_amount"

    @property
    def succeeded(self) -> bool:
        """True when the transfer now exists as requested (new, or an identical retry)."""
        return self in (TransferResult.OK, TransferResult.EXISTS)


@dataclass(frozen=True)
class Transfer:
    """One event of a batch; see the module docstring for the rules.

    For POST_PENDING / VOID_PENDING, accounts, amount and currency may be None: they are
    then taken from the pending transfer.
    """

    id: str
    debit_account_id: str | None
    credit_account_id: str | None
    amount: int | None
    currency: str | None
    code: str
    kind: TransferKind = TransferKind.SINGLE
    pending_id: str | None = None
    timeout_seconds: int = 0
    linked: bool = False


@dataclass(frozen=True)
class AccountSpec:
    """An account to create."""

    id: str
    currency: str
    kind: str  # customer | settlement | funding | blocked_funds | fees
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False
    tenant_id: str | None = None
    customer_id: str | None = None


@dataclass(frozen=True)
class Account:
    """An account with its four balances, in minor units (summed over shards if sharded)."""

    id: str
    tenant_id: str | None
    customer_id: str | None
    currency: str
    kind: str
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    version: int = 0

    @property
    def posted(self) -> int:
        """Net posted balance from the account holder's side (credits minus debits)."""
        return self.credits_posted - self.debits_posted

    @property
    def pending(self) -> int:
        """Net pending movement (incoming minus outgoing reservations)."""
        return self.credits_pending - self.debits_pending

    @property
    def available(self) -> int:
        """What can still be spent: posted credits less everything debited or reserved."""
        return self.credits_posted - self.debits_posted - self.debits_pending


@dataclass(frozen=True)
class Entry:
    """One account leg of a transfer, with the account's balances and version after it."""

    account_id: str
    version: int
    transfer_id: str
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    leg: str = ""
    debits_pending_delta: int = 0
    debits_posted_delta: int = 0
    credits_pending_delta: int = 0
    credits_posted_delta: int = 0
    created_at: datetime | None = None


SETTLEMENT_SHARDS = 16


def settlement_account_id(rail: str, currency: str) -> str:
    """The (sharded) system account that collects holds for a rail in a currency."""
    return f"acc_sys_settlement_{rail}_{currency.lower()}"


def funding_account_id(currency: str) -> str:
    """The (sharded) system account that incoming deposits are debited from."""
    return f"acc_sys_funding_{currency.lower()}"


def blocked_funds_account_id(currency: str) -> str:
    """The system account holding funds blocked by sanctions (OFAC blocking)."""
    return f"acc_sys_blocked_funds_{currency.lower()}"


def shard_of(account_id: str, key: str, shards: int = SETTLEMENT_SHARDS) -> str:
    """The shard of a hot system account that a transfer keyed by `key` uses.

    Spreading one hot account over shards lets unrelated payments lock different rows;
    reads sum the shards. The choice only needs to be stable for a key (a hold, its post and
    its void inherit the pending transfer's shard anyway).
    """
    return f"{account_id}_s{zlib.crc32(key.encode()) % shards:02d}"
