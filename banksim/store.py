"""The simulator's own records, in SQLite: received messages, their status reports, rules.

A bank's records are not the platform's, so the simulator never touches PostgreSQL. Each
call is one short transaction on a single connection guarded by a lock; the calls are fast
enough to make from the event loop directly.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    message_id         TEXT PRIMARY KEY,
    body_sha256        TEXT NOT NULL,
    body               BLOB NOT NULL,
    received_at        TEXT NOT NULL,
    status_report      BLOB,
    decided_at         TEXT,
    callback_delivered INTEGER NOT NULL DEFAULT 0,
    delivered_at       TEXT
);
CREATE TABLE IF NOT EXISTS rejection_rules (
    creditor_iban TEXT PRIMARY KEY,
    reject_code   TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
"""


class Receipt(StrEnum):
    """Outcome of recording an incoming message."""

    NEW = "new"
    DUPLICATE = "duplicate"  # same message id, same bytes: a harmless resend
    CONFLICT = "conflict"  # same message id, different bytes: refused


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A received pacs.008 and what became of it."""

    message_id: str
    body_sha256: str
    body: bytes
    received_at: datetime
    status_report: bytes | None
    callback_delivered: bool


@dataclass(frozen=True, slots=True)
class RejectionRule:
    """Reject every transaction to `creditor_iban` with the ISO reason `reject_code`."""

    creditor_iban: str
    reject_code: str
    created_at: datetime


def normalize_iban(iban: str) -> str:
    """The IBAN in its electronic form (no spaces, upper case), as rules are matched."""
    return "".join(iban.split()).upper()


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Store:
    """SQLite-backed storage of the simulator; open with `Store.open(path)`."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating if needed) the database at `path`, with its parent directory."""
        path.parent.mkdir(parents=True, exist_ok=True)
        # the lock below serialises access, so sharing the connection across threads is safe
        connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.executescript(_SCHEMA)
        return cls(connection)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    # messages -------------------------------------------------------------------------------

    def record_message(self, message_id: str, body_sha256: str, body: bytes) -> Receipt:
        """Store a message unless its id is known; say whether it was new, a resend or a clash."""
        with self._lock:
            inserted = self._db.execute(
                "INSERT INTO messages (message_id, body_sha256, body, received_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
                (message_id, body_sha256, body, _now()),
            ).rowcount
            if inserted:
                return Receipt.NEW
            row = self._db.execute(
                "SELECT body_sha256 FROM messages WHERE message_id = ?", (message_id,)
            ).fetchone()
        return Receipt.DUPLICATE if row is not None and row[0] == body_sha256 else Receipt.CONFLICT

    def get_message(self, message_id: str) -> StoredMessage | None:
        """The stored message `message_id`, or None if it was never received."""
        with self._lock:
            row = self._db.execute(
                "SELECT message_id, body_sha256, body, received_at, status_report, "
                "callback_delivered FROM messages WHERE message_id = ?",
                (message_id,),
            ).fetchone()
        if row is None:
            return None
        return StoredMessage(
            message_id=row[0],
            body_sha256=row[1],
            body=bytes(row[2]),
            received_at=datetime.fromisoformat(row[3]),
            status_report=bytes(row[4]) if row[4] is not None else None,
            callback_delivered=bool(row[5]),
        )

    def save_status_report(self, message_id: str, report: bytes) -> bytes:
        """Store the message's status report unless one exists; return the one that counts.

        A decision is final: if a report is already stored (a race or a replay), it wins and
        the new one is discarded, so the bank never reports two outcomes for one message.
        """
        with self._lock:
            self._db.execute(
                "UPDATE messages SET status_report = ?, decided_at = ? "
                "WHERE message_id = ? AND status_report IS NULL",
                (report, _now(), message_id),
            )
            row = self._db.execute(
                "SELECT status_report FROM messages WHERE message_id = ?", (message_id,)
            ).fetchone()
        if row is None or row[0] is None:
            raise KeyError(message_id)
        return bytes(row[0])

    def mark_delivered(self, message_id: str) -> None:
        """Record that the status report's callback was acknowledged."""
        with self._lock:
            self._db.execute(
                "UPDATE messages SET callback_delivered = 1, delivered_at = ? WHERE message_id = ?",
                (_now(), message_id),
            )

    def unfinished_message_ids(self) -> list[str]:
        """Messages still to decide or whose callback was never acknowledged, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT message_id FROM messages "
                "WHERE status_report IS NULL OR callback_delivered = 0 ORDER BY received_at"
            ).fetchall()
        return [row[0] for row in rows]

    # rejection rules ------------------------------------------------------------------------

    def add_rule(self, creditor_iban: str, reject_code: str) -> RejectionRule:
        """Create or replace the rule for `creditor_iban`."""
        rule = RejectionRule(normalize_iban(creditor_iban), reject_code, datetime.now(UTC))
        with self._lock:
            self._db.execute(
                "INSERT INTO rejection_rules (creditor_iban, reject_code, created_at) "
                "VALUES (?, ?, ?) ON CONFLICT (creditor_iban) DO UPDATE SET "
                "reject_code = excluded.reject_code, created_at = excluded.created_at",
                (rule.creditor_iban, rule.reject_code, rule.created_at.isoformat()),
            )
        return rule

    def list_rules(self) -> list[RejectionRule]:
        """All rules, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT creditor_iban, reject_code, created_at FROM rejection_rules "
                "ORDER BY created_at, creditor_iban"
            ).fetchall()
        return [RejectionRule(row[0], row[1], datetime.fromisoformat(row[2])) for row in rows]

    def clear_rules(self) -> int:
        """Delete every rule; return how many there were."""
        with self._lock:
            return self._db.execute("DELETE FROM rejection_rules").rowcount

    def reject_code_for(self, creditor_iban: str) -> str | None:
        """The reject code of the rule matching `creditor_iban`, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT reject_code FROM rejection_rules WHERE creditor_iban = ?",
                (normalize_iban(creditor_iban),),
            ).fetchone()
        return str(row[0]) if row is not None else None
