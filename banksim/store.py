"""The simulator's own records, in SQLite (a bank's records are not the platform's).

Received SEPA messages and their status reports, ACH files and entries, injected rules,
scheduled jobs (on simulated time), the callback outbox, the account bookings statements are
drawn from, statement adjustments and the clock. Simulated instants are stored as epoch
seconds (REAL). One connection guarded by a re-entrant lock; `transaction()` groups calls
atomically, so a crash never leaves, say, a settled file without its settlement notice.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from banksim.clock import ClockState

# bumped when the layout changes; an older simulator database is dropped, not migrated: it
# only ever holds simulated traffic
SCHEMA_VERSION = 5
_ALL_TABLES = (
    "messages",
    "rejection_rules",
    "sepa_reports",
    "ach_files",
    "ach_entries",
    "rules",
    "jobs",
    "outbox",
    "bookings",
    "adjustments",
    "clock",
    "counters",
)

_SCHEMA = """
CREATE TABLE messages (
    message_id   TEXT PRIMARY KEY,
    body_sha256  TEXT NOT NULL,
    body         BLOB NOT NULL,
    received_at  REAL NOT NULL,
    out_of_order INTEGER NOT NULL
);
CREATE TABLE sepa_reports (
    message_id TEXT NOT NULL REFERENCES messages (message_id),
    step       INTEGER NOT NULL,
    report_id  TEXT NOT NULL,
    body       BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (message_id, step)
);
CREATE TABLE ach_files (
    file_id         TEXT PRIMARY KEY,
    body_sha256     TEXT NOT NULL,
    body            TEXT NOT NULL,
    received_at     REAL NOT NULL,
    cutoff_at       REAL NOT NULL,
    settlement_date TEXT NOT NULL,
    entry_count     INTEGER NOT NULL,
    status          TEXT NOT NULL,
    out_of_order    INTEGER NOT NULL,
    settled_at      REAL
);
CREATE TABLE ach_entries (
    file_id          TEXT NOT NULL REFERENCES ach_files (file_id),
    seq              INTEGER NOT NULL,
    trace_number     TEXT NOT NULL,
    transaction_code INTEGER NOT NULL,
    amount_cents     INTEGER NOT NULL,
    account_number   TEXT NOT NULL,
    individual_id    TEXT NOT NULL,
    status           TEXT NOT NULL,
    return_code      TEXT,
    PRIMARY KEY (file_id, seq)
);
CREATE TABLE rules (
    rail       TEXT NOT NULL,
    match_key  TEXT NOT NULL,
    action     TEXT NOT NULL,
    code       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    detail     TEXT,
    PRIMARY KEY (rail, match_key)
);
CREATE TABLE jobs (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL,
    ref     TEXT NOT NULL,
    due_at  REAL NOT NULL,
    payload TEXT,
    state   TEXT NOT NULL DEFAULT 'pending'
);
CREATE INDEX jobs_pending ON jobs (state, due_at);
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    stream       TEXT NOT NULL,
    content_type TEXT NOT NULL,
    body         BLOB NOT NULL,
    headers      TEXT NOT NULL,
    copies       INTEGER NOT NULL,
    sent         INTEGER NOT NULL DEFAULT 0,
    held         INTEGER NOT NULL,
    blocked_by   INTEGER REFERENCES outbox (id),
    delivered    INTEGER NOT NULL DEFAULT 0,
    created_at   REAL NOT NULL
);
CREATE INDEX outbox_stream ON outbox (stream, id);
CREATE INDEX outbox_pending ON outbox (delivered, held);
CREATE TABLE bookings (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    rail          TEXT NOT NULL,
    booking_date  TEXT NOT NULL,
    booked_at     REAL NOT NULL,
    direction     TEXT NOT NULL,
    amount_minor  INTEGER NOT NULL,
    currency      TEXT NOT NULL,
    end_to_end_id TEXT,
    tx_id         TEXT,
    return_code   TEXT,
    source_id     TEXT
);
CREATE INDEX bookings_day ON bookings (rail, booking_date);
CREATE TABLE adjustments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    booking_date TEXT NOT NULL,
    rail         TEXT NOT NULL,
    action       TEXT NOT NULL,
    reference    TEXT,
    amount_minor INTEGER,
    currency     TEXT
);
CREATE TABLE clock (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    sim_anchor  REAL NOT NULL,
    real_anchor REAL NOT NULL,
    speed       REAL NOT NULL
);
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


class Receipt(StrEnum):
    """Outcome of recording an incoming message or file."""

    NEW = "new"
    DUPLICATE = "duplicate"  # same id, same bytes: a harmless resend
    CONFLICT = "conflict"  # same id, different bytes: refused


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A received pacs.008."""

    message_id: str
    body_sha256: str
    body: bytes
    received_at: float
    out_of_order: bool


@dataclass(frozen=True, slots=True)
class AchFile:
    """A received NACHA file and where it stands."""

    file_id: str
    body_sha256: str
    body: str
    received_at: float
    cutoff_at: float
    settlement_date: str
    entry_count: int
    status: str  # accepted | settled
    out_of_order: bool
    settled_at: float | None


@dataclass(frozen=True, slots=True)
class AchEntry:
    """One entry detail of a received file (`seq` is its position in the file, from 0)."""

    seq: int
    trace_number: str
    transaction_code: int
    amount_cents: int
    account_number: str
    individual_id: str
    status: str = "pending"  # pending | settled | returned
    return_code: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """Reject (SEPA) or return (SEPA, ACH) every payment to `match_key` with `code`.

    `match_key` is the creditor IBAN for SEPA, the DFI account number for ACH.
    """

    rail: str
    match_key: str
    action: str
    code: str
    created_at: datetime
    # what the rule answers besides its code: the name a Verification-of-Payee close match
    # gives, the corrected data of a notification of change
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """Work due at simulated time `due_at`."""

    id: int
    kind: str
    ref: str
    due_at: float
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A callback to deliver `copies` times, after `blocked_by` (if any) was delivered."""

    id: int
    event_id: str
    kind: str
    stream: str
    content_type: str
    body: bytes
    headers: dict[str, str]
    copies: int
    sent: int
    held: bool
    blocked_by: int | None
    delivered: bool


@dataclass(frozen=True, slots=True)
class Booking:
    """A movement on one of the platform's accounts at the bank (what statements report)."""

    rail: str
    booking_date: str
    booked_at: float
    direction: str  # DBIT | CRDT, from the account holder's point of view
    amount_minor: int
    currency: str
    end_to_end_id: str | None
    tx_id: str | None
    return_code: str | None = None
    # what the bank booked it from: the SEPA message id or the ACH file id
    source_id: str | None = None


@dataclass(frozen=True, slots=True)
class Adjustment:
    """A planted discrepancy in the statement of `booking_date` for `rail`."""

    id: int
    booking_date: str
    rail: str
    action: str  # drop | add | change_amount
    reference: str | None
    amount_minor: int | None
    currency: str | None


def normalize_iban(iban: str) -> str:
    """The IBAN in its electronic form (no spaces, upper case), as rules are matched."""
    return "".join(iban.split()).upper()


class Store:
    """SQLite-backed storage of the simulator; open with `Store.open(path)`."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        self._lock = threading.RLock()
        self._depth = 0

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating if needed) the database at `path`, with its parent directory."""
        path.parent.mkdir(parents=True, exist_ok=True)
        # the lock serialises access, so sharing the connection across threads is safe
        connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            for table in _ALL_TABLES:
                connection.execute(f"DROP TABLE IF EXISTS {table}")
            connection.executescript(_SCHEMA)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return cls(connection)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the enclosed calls atomically (nested uses join the outer transaction)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._depth = 0

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        with self._lock:
            return self._db.execute(sql, params).fetchone()

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, params)

    # SEPA messages ---------------------------------------------------------------------------

    def record_message(
        self,
        message_id: str,
        body_sha256: str,
        body: bytes,
        received_at: float,
        *,
        out_of_order: bool,
    ) -> Receipt:
        """Store a message unless its id is known; say whether it was new, a resend or a clash."""
        with self._lock:
            inserted = self._run(
                "INSERT INTO messages (message_id, body_sha256, body, received_at, out_of_order) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
                (message_id, body_sha256, body, received_at, int(out_of_order)),
            ).rowcount
            if inserted:
                return Receipt.NEW
            row = self._one("SELECT body_sha256 FROM messages WHERE message_id = ?", (message_id,))
        return Receipt.DUPLICATE if row is not None and row[0] == body_sha256 else Receipt.CONFLICT

    def get_message(self, message_id: str) -> StoredMessage | None:
        """The stored message `message_id`, or None if it was never received."""
        row = self._one(
            "SELECT message_id, body_sha256, body, received_at, out_of_order FROM messages "
            "WHERE message_id = ?",
            (message_id,),
        )
        if row is None:
            return None
        return StoredMessage(row[0], row[1], bytes(row[2]), row[3], bool(row[4]))

    def save_report(
        self, message_id: str, step: int, report_id: str, body: bytes, created_at: float
    ) -> bool:
        """Store the report of `step` (pacs.002: 1 ACCP, 2 final; pacs.004: 3 the return)
        unless one exists; True if new."""
        return bool(
            self._run(
                "INSERT INTO sepa_reports (message_id, step, report_id, body, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (message_id, step, report_id, body, created_at),
            ).rowcount
        )

    def report(self, message_id: str, step: int) -> bytes | None:
        """The status report of `step` for `message_id`, if made."""
        row = self._one(
            "SELECT body FROM sepa_reports WHERE message_id = ? AND step = ?", (message_id, step)
        )
        return bytes(row[0]) if row is not None else None

    def latest_report(self, message_id: str) -> bytes | None:
        """The most advanced status report (pacs.002: step 1 or 2) of `message_id`, if any."""
        row = self._one(
            "SELECT body FROM sepa_reports WHERE message_id = ? AND step <= 2"
            " ORDER BY step DESC LIMIT 1",
            (message_id,),
        )
        return bytes(row[0]) if row is not None else None

    # ACH files -------------------------------------------------------------------------------

    def record_ach_file(self, file: AchFile, entries: list[AchEntry]) -> Receipt:
        """Store a file and its entries unless its id is known (then: resend or clash)."""
        with self.transaction():
            row = self._one("SELECT body_sha256 FROM ach_files WHERE file_id = ?", (file.file_id,))
            if row is not None:
                return Receipt.DUPLICATE if row[0] == file.body_sha256 else Receipt.CONFLICT
            self._run(
                "INSERT INTO ach_files (file_id, body_sha256, body, received_at, cutoff_at, "
                "settlement_date, entry_count, status, out_of_order, settled_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    file.file_id,
                    file.body_sha256,
                    file.body,
                    file.received_at,
                    file.cutoff_at,
                    file.settlement_date,
                    file.entry_count,
                    file.status,
                    int(file.out_of_order),
                    file.settled_at,
                ),
            )
            for entry in entries:
                self._run(
                    "INSERT INTO ach_entries (file_id, seq, trace_number, transaction_code, "
                    "amount_cents, account_number, individual_id, status, return_code) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        file.file_id,
                        entry.seq,
                        entry.trace_number,
                        entry.transaction_code,
                        entry.amount_cents,
                        entry.account_number,
                        entry.individual_id,
                        entry.status,
                        entry.return_code,
                    ),
                )
        return Receipt.NEW

    def get_ach_file(self, file_id: str) -> AchFile | None:
        """The stored file `file_id`, or None."""
        row = self._one(
            "SELECT file_id, body_sha256, body, received_at, cutoff_at, settlement_date, "
            "entry_count, status, out_of_order, settled_at FROM ach_files WHERE file_id = ?",
            (file_id,),
        )
        if row is None:
            return None
        return AchFile(
            row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], bool(row[8]), row[9]
        )

    def ach_entries(self, file_id: str) -> list[AchEntry]:
        """The entries of `file_id` in file order."""
        rows = self._all(
            "SELECT seq, trace_number, transaction_code, amount_cents, account_number, "
            "individual_id, status, return_code FROM ach_entries WHERE file_id = ? ORDER BY seq",
            (file_id,),
        )
        return [AchEntry(*row) for row in rows]

    def mark_ach_file_settled(self, file_id: str, settled_at: float) -> None:
        """Record the file's settlement."""
        self._run(
            "UPDATE ach_files SET status = 'settled', settled_at = ? WHERE file_id = ?",
            (settled_at, file_id),
        )

    def set_ach_entry(self, file_id: str, seq: int, status: str, return_code: str | None) -> None:
        """Record where one entry stands."""
        self._run(
            "UPDATE ach_entries SET status = ?, return_code = ? WHERE file_id = ? AND seq = ?",
            (status, return_code, file_id, seq),
        )

    # rules -----------------------------------------------------------------------------------

    def add_rule(
        self, rail: str, match_key: str, action: str, code: str, detail: str | None = None
    ) -> Rule:
        """Create or replace the rule for (`rail`, `match_key`)."""
        rule = Rule(rail, match_key, action, code, datetime.now(UTC), detail)
        self._run(
            "INSERT INTO rules (rail, match_key, action, code, created_at, detail)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (rail, match_key) DO UPDATE SET"
            " action = excluded.action, code = excluded.code, created_at = excluded.created_at,"
            " detail = excluded.detail",
            (rail, match_key, action, code, rule.created_at.isoformat(), detail),
        )
        return rule

    def list_rules(self) -> list[Rule]:
        """All rules, oldest first."""
        rows = self._all(
            "SELECT rail, match_key, action, code, created_at, detail FROM rules "
            "ORDER BY created_at, rail, match_key"
        )
        return [Rule(r[0], r[1], r[2], r[3], datetime.fromisoformat(r[4]), r[5]) for r in rows]

    def clear_rules(self) -> int:
        """Delete every rule; return how many there were."""
        return self._run("DELETE FROM rules").rowcount

    def rule_for(self, rail: str, match_key: str) -> Rule | None:
        """The rule matching `match_key` on `rail`, if any."""
        row = self._one(
            "SELECT rail, match_key, action, code, created_at, detail FROM rules "
            "WHERE rail = ? AND match_key = ?",
            (rail, match_key),
        )
        if row is None:
            return None
        return Rule(row[0], row[1], row[2], row[3], datetime.fromisoformat(row[4]), row[5])

    # jobs ------------------------------------------------------------------------------------

    def add_job(
        self, kind: str, ref: str, due_at: float, payload: dict[str, Any] | None = None
    ) -> int:
        """Schedule `kind` for `ref` at simulated `due_at`."""
        cursor = self._run(
            "INSERT INTO jobs (kind, ref, due_at, payload) VALUES (?, ?, ?, ?)",
            (kind, ref, due_at, json.dumps(payload or {})),
        )
        return int(cursor.lastrowid or 0)

    def next_due_job(self, now: float) -> Job | None:
        """The earliest pending job due at or before `now`."""
        row = self._one(
            "SELECT id, kind, ref, due_at, payload FROM jobs "
            "WHERE state = 'pending' AND due_at <= ? ORDER BY due_at, id LIMIT 1",
            (now,),
        )
        return None if row is None else Job(row[0], row[1], row[2], row[3], json.loads(row[4]))

    def next_job_due_at(self) -> float | None:
        """When the earliest pending job is due, if any."""
        row = self._one("SELECT MIN(due_at) FROM jobs WHERE state = 'pending'")
        return None if row is None or row[0] is None else float(row[0])

    def finish_job(self, job_id: int, *, failed: bool = False) -> None:
        """Take a job off the schedule."""
        self._run(
            "UPDATE jobs SET state = ? WHERE id = ?", ("failed" if failed else "done", job_id)
        )

    def pending_jobs(self) -> int:
        """How many jobs are still scheduled."""
        return int(self._one("SELECT COUNT(*) FROM jobs WHERE state = 'pending'")[0])

    # outbox ----------------------------------------------------------------------------------

    def add_outbox(
        self,
        *,
        event_id: str,
        kind: str,
        stream: str,
        content_type: str,
        body: bytes,
        headers: dict[str, str],
        copies: int,
        held: bool,
        blocked_by: int | None,
        created_at: float,
    ) -> int:
        """Queue a callback; return its id."""
        cursor = self._run(
            "INSERT INTO outbox (event_id, kind, stream, content_type, body, headers, copies, "
            "held, blocked_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event_id,
                kind,
                stream,
                content_type,
                body,
                json.dumps(headers),
                copies,
                int(held),
                blocked_by,
                created_at,
            ),
        )
        return int(cursor.lastrowid or 0)

    def last_outbox_id(self, stream: str) -> int | None:
        """The latest callback of `stream` not held back, if any."""
        row = self._one("SELECT MAX(id) FROM outbox WHERE stream = ? AND held = 0", (stream,))
        return None if row is None or row[0] is None else int(row[0])

    def release_held(self, stream: str, after: int) -> int:
        """Let the held callbacks of `stream` go, once callback `after` is delivered."""
        return self._run(
            "UPDATE outbox SET held = 0, blocked_by = ? WHERE stream = ? AND held = 1",
            (after, stream),
        ).rowcount

    def ready_outbox_ids(self) -> list[int]:
        """Undelivered callbacks free to go: not held, and whatever they wait for delivered."""
        rows = self._all(
            "SELECT o.id FROM outbox o LEFT JOIN outbox b ON b.id = o.blocked_by "
            "WHERE o.delivered = 0 AND o.held = 0 AND (o.blocked_by IS NULL OR b.delivered = 1) "
            "ORDER BY o.id"
        )
        return [int(row[0]) for row in rows]

    def get_outbox(self, item_id: int) -> OutboxItem | None:
        """One queued callback."""
        row = self._one(
            "SELECT id, event_id, kind, stream, content_type, body, headers, copies, sent, held, "
            "blocked_by, delivered FROM outbox WHERE id = ?",
            (item_id,),
        )
        if row is None:
            return None
        return OutboxItem(
            id=row[0],
            event_id=row[1],
            kind=row[2],
            stream=row[3],
            content_type=row[4],
            body=bytes(row[5]),
            headers=json.loads(row[6]),
            copies=row[7],
            sent=row[8],
            held=bool(row[9]),
            blocked_by=row[10],
            delivered=bool(row[11]),
        )

    def count_sent(self, item_id: int) -> int:
        """Record one acknowledged delivery of a callback; return how many there were."""
        with self._lock:
            self._run("UPDATE outbox SET sent = sent + 1 WHERE id = ?", (item_id,))
            return int(self._one("SELECT sent FROM outbox WHERE id = ?", (item_id,))[0])

    def mark_delivered(self, item_id: int) -> None:
        """The callback needs no further delivery."""
        self._run("UPDATE outbox SET delivered = 1 WHERE id = ?", (item_id,))

    def undelivered(self) -> int:
        """How many callbacks are still to deliver (held ones included)."""
        return int(self._one("SELECT COUNT(*) FROM outbox WHERE delivered = 0")[0])

    # bookings and statements -----------------------------------------------------------------

    def add_booking(self, booking: Booking) -> None:
        """Book a movement."""
        self._run(
            "INSERT INTO bookings (rail, booking_date, booked_at, direction, amount_minor, "
            "currency, end_to_end_id, tx_id, return_code, source_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                booking.rail,
                booking.booking_date,
                booking.booked_at,
                booking.direction,
                booking.amount_minor,
                booking.currency,
                booking.end_to_end_id,
                booking.tx_id,
                booking.return_code,
                booking.source_id,
            ),
        )

    def bookings(self, rail: str, booking_date: str) -> list[Booking]:
        """The movements of `rail`'s account on `booking_date`, in booking order."""
        rows = self._all(
            "SELECT rail, booking_date, booked_at, direction, amount_minor, currency, "
            "end_to_end_id, tx_id, return_code FROM bookings WHERE rail = ? AND booking_date = ? "
            "ORDER BY booked_at, id",
            (rail, booking_date),
        )
        return [Booking(*row) for row in rows]

    def all_bookings(self, rail: str | None = None, direction: str | None = None) -> list[Booking]:
        """Every movement the bank booked (of `rail`, in `direction`, if given), in booking
        order: the bank's own books, for tests counting how often it paid one payment."""
        rows = self._all(
            "SELECT rail, booking_date, booked_at, direction, amount_minor, currency, "
            "end_to_end_id, tx_id, return_code, source_id FROM bookings "
            "WHERE (? IS NULL OR rail = ?) AND (? IS NULL OR direction = ?) "
            "ORDER BY booked_at, id",
            (rail, rail, direction, direction),
        )
        return [Booking(*row) for row in rows]

    def balance_before(self, rail: str, booking_date: str) -> int:
        """The booked balance of `rail`'s account at the start of `booking_date` (credit > 0)."""
        row = self._one(
            "SELECT COALESCE(SUM(CASE direction WHEN 'CRDT' THEN amount_minor "
            "ELSE -amount_minor END), 0) FROM bookings WHERE rail = ? AND booking_date < ?",
            (rail, booking_date),
        )
        return int(row[0])

    def add_adjustment(
        self,
        booking_date: str,
        rail: str,
        action: str,
        reference: str | None,
        amount_minor: int | None,
        currency: str | None,
    ) -> Adjustment:
        """Plant a discrepancy in a statement."""
        cursor = self._run(
            "INSERT INTO adjustments (booking_date, rail, action, reference, amount_minor, "
            "currency) VALUES (?, ?, ?, ?, ?, ?)",
            (booking_date, rail, action, reference, amount_minor, currency),
        )
        return Adjustment(
            int(cursor.lastrowid or 0),
            booking_date,
            rail,
            action,
            reference,
            amount_minor,
            currency,
        )

    def adjustments(self, rail: str, booking_date: str) -> list[Adjustment]:
        """The planted discrepancies of one statement, in the order they were planted."""
        rows = self._all(
            "SELECT id, booking_date, rail, action, reference, amount_minor, currency "
            "FROM adjustments WHERE rail = ? AND booking_date = ? ORDER BY id",
            (rail, booking_date),
        )
        return [Adjustment(*row) for row in rows]

    # clock and counters ----------------------------------------------------------------------

    def load_clock(self) -> ClockState | None:
        """The persisted clock, if it was ever saved."""
        row = self._one("SELECT sim_anchor, real_anchor, speed FROM clock WHERE id = 1")
        return None if row is None else ClockState(row[0], row[1], row[2])

    def save_clock(self, state: ClockState) -> None:
        """Persist the clock."""
        self._run(
            "INSERT INTO clock (id, sim_anchor, real_anchor, speed) VALUES (1, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET sim_anchor = excluded.sim_anchor, "
            "real_anchor = excluded.real_anchor, speed = excluded.speed",
            (state.sim_anchor, state.real_anchor, state.speed),
        )

    def next_value(self, name: str) -> int:
        """The next value (1, 2, ...) of the counter `name`."""
        with self._lock:
            self._run(
                "INSERT INTO counters (name, value) VALUES (?, 1) "
                "ON CONFLICT (name) DO UPDATE SET value = value + 1",
                (name,),
            )
            return int(self._one("SELECT value FROM counters WHERE name = ?", (name,))[0])
