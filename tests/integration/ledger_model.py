"""An exact in-memory model of the transfer semantics in the `ledger.models` docstring.

Written from the docstring alone, independently of the SQL implementation (N-version
testing): the state machine in `test_ledger_model.py` runs both side by side.

Readings chosen where the docstring leaves room (the most TigerBeetle-like, unless the
docstring says otherwise):

- An open chain at the end of a batch is not evaluated at all: every one of its events gets
  LINKED_EVENT_CHAIN_OPEN (the docstring says "every event", unlike TigerBeetle, where only
  the last one does), so none of its ids is remembered as failed, even an invalid one.
- Within a closed chain, events after the first failure are not evaluated (TigerBeetle);
  they get LINKED_EVENT_FAILED. The failing event's own id is remembered as failed although
  the chain is rolled back.
- Every failure other than EXISTS_WITH_DIFFERENT_* / LINKED_* is remembered, including
  validation failures (TigerBeetle remembers transient ones only; the docstring says all).
- The repeated-id check compares None fields of single/pending requests too (only
  post/void requests inherit); `pending_id`, `timeout` and `code` are always compared.
- A post/void whose pending transfer has passed its expiry but has not been expired yet
  gets PENDING_TRANSFER_EXPIRED and changes nothing; balances move only when
  `expire_pending_transfers` runs.
- Posts and voids check no account limits: they can only lower what the flags bound.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ledger.models import AccountSpec, Transfer, TransferKind, TransferResult

R = TransferResult
RESOLVING = (TransferKind.POST_PENDING, TransferKind.VOID_PENDING)

# Results that do not make an id "failed": it either exists, or its chain failed elsewhere.
NOT_REMEMBERED = frozenset(
    {
        R.OK,
        R.EXISTS,
        R.EXISTS_WITH_DIFFERENT_FLAGS,
        R.EXISTS_WITH_DIFFERENT_PENDING_ID,
        R.EXISTS_WITH_DIFFERENT_TIMEOUT,
        R.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID,
        R.EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID,
        R.EXISTS_WITH_DIFFERENT_AMOUNT,
        R.EXISTS_WITH_DIFFERENT_CURRENCY,
        R.EXISTS_WITH_DIFFERENT_CODE,
        R.LINKED_EVENT_FAILED,
        R.LINKED_EVENT_CHAIN_OPEN,
        R.ID_ALREADY_FAILED,
    }
)


@dataclass
class ModelAccount:
    """An account's static fields and its four balances plus version."""

    id: str
    currency: str
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0
    version: int = 0

    def state(self) -> tuple[int, int, int, int, int]:
        """(debits_pending, debits_posted, credits_pending, credits_posted, version)."""
        return (
            self.debits_pending,
            self.debits_posted,
            self.credits_pending,
            self.credits_posted,
            self.version,
        )


@dataclass(frozen=True)
class StoredTransfer:
    """A transfer as the ledger keeps it (post/void with their resolved fields)."""

    id: str
    kind: TransferKind
    linked: bool
    pending_id: str | None
    timeout_seconds: int
    debit_account_id: str
    credit_account_id: str
    amount: int
    currency: str
    code: str
    expires_at: datetime | None = None


@dataclass
class _Snapshot:
    accounts: dict[str, ModelAccount]
    transfers: dict[str, StoredTransfer]
    resolutions: dict[str, TransferKind]


class LedgerModel:
    """The ledger in memory: accounts, transfers, resolutions of pendings, failed ids."""

    def __init__(self) -> None:
        self.accounts: dict[str, ModelAccount] = {}
        self.transfers: dict[str, StoredTransfer] = {}
        self.resolutions: dict[str, TransferKind] = {}  # pending id -> post / void / expire
        self.failed: dict[str, TransferResult] = {}  # id -> its original failure

    # accounts -----------------------------------------------------------------------------

    def create_accounts(self, specs: Iterable[AccountSpec]) -> None:
        for spec in specs:
            assert spec.id not in self.accounts, spec.id
            self.accounts[spec.id] = ModelAccount(
                spec.id,
                spec.currency,
                spec.debits_must_not_exceed_credits,
                spec.credits_must_not_exceed_debits,
            )

    # batches ------------------------------------------------------------------------------

    def create_transfers(self, batch: Sequence[Transfer], now: datetime) -> list[TransferResult]:
        results: list[TransferResult] = []
        start = 0
        while start < len(batch):
            end = start
            while end < len(batch) and batch[end].linked:
                end += 1
            if end == len(batch):  # the batch ends inside a chain
                results.extend([R.LINKED_EVENT_CHAIN_OPEN] * (end - start))
                break
            results.extend(self._chain(batch[start : end + 1], now))
            start = end + 1
        assert len(results) == len(batch)
        return results

    def _chain(self, chain: Sequence[Transfer], now: datetime) -> list[TransferResult]:
        snapshot = self._snapshot()
        results: list[TransferResult] = []
        for index, transfer in enumerate(chain):
            result = self._create(transfer, now)
            if not result.succeeded:
                self._restore(snapshot)
                if result not in NOT_REMEMBERED:
                    self.failed.setdefault(transfer.id, result)
                return [result if i == index else R.LINKED_EVENT_FAILED for i in range(len(chain))]
            results.append(result)
        return results

    def _snapshot(self) -> _Snapshot:
        return _Snapshot(copy.deepcopy(self.accounts), dict(self.transfers), dict(self.resolutions))

    def _restore(self, snapshot: _Snapshot) -> None:
        self.accounts = snapshot.accounts
        self.transfers = snapshot.transfers
        self.resolutions = snapshot.resolutions

    # one event ----------------------------------------------------------------------------

    def _create(self, t: Transfer, now: datetime) -> TransferResult:
        existing = self.transfers.get(t.id)
        if existing is not None:
            return self._exists(t, existing)
        if t.id in self.failed:
            return R.ID_ALREADY_FAILED
        if t.kind in (TransferKind.SINGLE, TransferKind.PENDING):
            return self._create_new(t, now)
        if t.kind in RESOLVING:
            return self._resolve(t, now)
        raise ValueError(f"callers never submit {t.kind}")

    @staticmethod
    def _exists(t: Transfer, e: StoredTransfer) -> TransferResult:
        if t.kind != e.kind or t.linked != e.linked:
            return R.EXISTS_WITH_DIFFERENT_FLAGS
        if t.pending_id != e.pending_id:
            return R.EXISTS_WITH_DIFFERENT_PENDING_ID
        if t.timeout_seconds != e.timeout_seconds:
            return R.EXISTS_WITH_DIFFERENT_TIMEOUT
        inherits = t.kind in RESOLVING

        def differs(given: object, stored: object) -> bool:
            return not (inherits and given is None) and given != stored

        if differs(t.debit_account_id, e.debit_account_id):
            return R.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID
        if differs(t.credit_account_id, e.credit_account_id):
            return R.EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID
        if differs(t.amount, e.amount):
            return R.EXISTS_WITH_DIFFERENT_AMOUNT
        if differs(t.currency, e.currency):
            return R.EXISTS_WITH_DIFFERENT_CURRENCY
        if t.code != e.code:
            return R.EXISTS_WITH_DIFFERENT_CODE
        return R.EXISTS

    def _create_new(self, t: Transfer, now: datetime) -> TransferResult:
        pending = t.kind is TransferKind.PENDING
        if not pending and t.timeout_seconds > 0:
            return R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
        if t.pending_id is not None:
            return R.PENDING_ID_MUST_BE_EMPTY
        if t.amount is None or t.amount <= 0:
            return R.AMOUNT_MUST_BE_POSITIVE
        if t.debit_account_id == t.credit_account_id:
            return R.ACCOUNTS_MUST_BE_DIFFERENT
        debit = self.accounts.get(t.debit_account_id or "")
        if debit is None:
            return R.DEBIT_ACCOUNT_NOT_FOUND
        credit = self.accounts.get(t.credit_account_id or "")
        if credit is None:
            return R.CREDIT_ACCOUNT_NOT_FOUND
        if t.currency != debit.currency or t.currency != credit.currency:
            return R.CURRENCY_MISMATCH
        a = t.amount
        if (
            debit.debits_must_not_exceed_credits
            and debit.debits_pending + debit.debits_posted + a > debit.credits_posted
        ):
            return R.EXCEEDS_CREDITS
        if (
            credit.credits_must_not_exceed_debits
            and credit.credits_pending + credit.credits_posted + a > credit.debits_posted
        ):
            return R.EXCEEDS_DEBITS
        if pending:
            debit.debits_pending += a
            credit.credits_pending += a
        else:
            debit.debits_posted += a
            credit.credits_posted += a
        debit.version += 1
        credit.version += 1
        expires_at = (
            now + timedelta(seconds=t.timeout_seconds)
            if pending and t.timeout_seconds > 0
            else None
        )
        self.transfers[t.id] = StoredTransfer(
            t.id,
            t.kind,
            t.linked,
            None,
            t.timeout_seconds,
            debit.id,
            credit.id,
            a,
            t.currency,
            t.code,
            expires_at,
        )
        return R.OK

    def _resolve(self, t: Transfer, now: datetime) -> TransferResult:
        if t.timeout_seconds > 0:
            return R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
        if t.pending_id is None:
            return R.PENDING_ID_REQUIRED
        if t.pending_id == t.id:
            return R.PENDING_ID_MUST_BE_DIFFERENT
        if t.amount is not None and t.amount <= 0:
            return R.AMOUNT_MUST_BE_POSITIVE
        p = self.transfers.get(t.pending_id)
        if p is None:
            return R.PENDING_TRANSFER_NOT_FOUND
        if p.kind is not TransferKind.PENDING:
            return R.PENDING_TRANSFER_NOT_PENDING
        if t.debit_account_id is not None and t.debit_account_id != p.debit_account_id:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID
        if t.credit_account_id is not None and t.credit_account_id != p.credit_account_id:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID
        if t.currency is not None and t.currency != p.currency:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_CURRENCY
        resolution = self.resolutions.get(p.id)
        if resolution is TransferKind.POST_PENDING:
            return R.PENDING_TRANSFER_ALREADY_POSTED
        if resolution is TransferKind.VOID_PENDING:
            return R.PENDING_TRANSFER_ALREADY_VOIDED
        if resolution is TransferKind.EXPIRE_PENDING or (
            p.expires_at is not None and now >= p.expires_at
        ):
            return R.PENDING_TRANSFER_EXPIRED
        post = t.kind is TransferKind.POST_PENDING
        if post and t.amount is not None and t.amount > p.amount:
            return R.EXCEEDS_PENDING_TRANSFER_AMOUNT
        if not post and t.amount is not None and t.amount != p.amount:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT
        amount = p.amount if t.amount is None else t.amount
        debit, credit = self.accounts[p.debit_account_id], self.accounts[p.credit_account_id]
        debit.debits_pending -= p.amount
        credit.credits_pending -= p.amount
        if post:
            debit.debits_posted += amount
            credit.credits_posted += amount
        debit.version += 1
        credit.version += 1
        self.resolutions[p.id] = t.kind
        self.transfers[t.id] = StoredTransfer(
            t.id,
            t.kind,
            t.linked,
            p.id,
            t.timeout_seconds,
            p.debit_account_id,
            p.credit_account_id,
            amount,
            p.currency,
            t.code,
        )
        return R.OK

    # expiry -------------------------------------------------------------------------------

    def expire_pending_transfers(self, now: datetime) -> int:
        due = [
            p
            for p in self.transfers.values()
            if p.kind is TransferKind.PENDING
            and p.id not in self.resolutions
            and p.expires_at is not None
            and p.expires_at <= now
        ]
        for p in due:
            debit, credit = self.accounts[p.debit_account_id], self.accounts[p.credit_account_id]
            debit.debits_pending -= p.amount
            credit.credits_pending -= p.amount
            debit.version += 1
            credit.version += 1
            self.resolutions[p.id] = TransferKind.EXPIRE_PENDING
            expired_id = f"{p.id}~expired"
            self.transfers[expired_id] = StoredTransfer(
                expired_id,
                TransferKind.EXPIRE_PENDING,
                False,
                p.id,
                0,
                p.debit_account_id,
                p.credit_account_id,
                p.amount,
                p.currency,
                p.code,
            )
        return len(due)

    def unresolved_expiring_pendings(self) -> list[StoredTransfer]:
        """Pending transfers with a timeout that nothing has resolved yet."""
        return [
            p
            for p in self.transfers.values()
            if p.kind is TransferKind.PENDING
            and p.id not in self.resolutions
            and p.expires_at is not None
        ]
