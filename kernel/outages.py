"""Which failures mean "a dependency is down, try again later" (issue #24, item 5).

The API answers these with 503 and `Retry-After` instead of 500 (api/errors.py), and keeps an
Idempotency-Key bound to its request across them (api/idempotency.py). Both questions are
asked of one exception here, so the two never disagree about what an outage looks like.

What the client libraries raise while a dependency is away (measured, temporalio 1.35,
psycopg 3, SQLAlchemy 2):

- Temporal down: `RPCError` UNAVAILABLE ("tcp connect error") once the client's own
  retries are spent; a call that outlives its `rpc_timeout` (a hung server) raises
  CANCELLED ("Timeout expired"), not DEADLINE_EXCEEDED; a lazily connected client that
  never reached the server raises a plain `RuntimeError("Failed client connect: …")`; an
  update whose RPC timed out raises `WorkflowUpdateRPCTimeoutOrCancelledError`.
- PostgreSQL down: SQLAlchemy's `OperationalError` raised from psycopg's (no SQLSTATE for
  "connection refused" or a connection lost mid-query, class 08, or 57P01-57P03 while the
  server shuts down or starts), `InterfaceError` (a closed connection), a pool
  `TimeoutError`, or any `DBAPIError` that invalidated its connection.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import exc as sa_exc
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

# The statuses a call answers with when the server is unreachable, overloaded or too slow.
# Everything else (NOT_FOUND, ALREADY_EXISTS, INVALID_ARGUMENT, …) is an answer from a
# server that is up, and keeps its own meaning.
_TEMPORAL_UNAVAILABLE = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
    }
)
_NEVER_CONNECTED = "Failed client connect"
# admin_shutdown, crash_shutdown, cannot_connect_now: the server is stopping or starting
_SERVER_GOING_AWAY = frozenset({"57P01", "57P02", "57P03"})


def _chain(error: BaseException) -> list[BaseException]:
    """The exception and what it was raised from or during (SQLAlchemy wraps psycopg's
    errors; a failed clean-up can hide the outage that caused it)."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _orchestrator_down(error: BaseException) -> bool:
    if isinstance(error, RPCError):
        return error.status in _TEMPORAL_UNAVAILABLE
    if isinstance(error, WorkflowUpdateRPCTimeoutOrCancelledError):
        return True
    return type(error) is RuntimeError and str(error).startswith(_NEVER_CONNECTED)


def _database_down(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa_exc.TimeoutError | sa_exc.DisconnectionError | psycopg.InterfaceError):
        return True
    if isinstance(error, psycopg.OperationalError):
        # no SQLSTATE: the client could not connect, or lost the connection; otherwise only
        # the connection and shutdown states count (a deadlock or a statement timeout is an
        # OperationalError too, but the server is up and says so)
        state = getattr(error, "sqlstate", None)
        return state is None or state.startswith("08") or state in _SERVER_GOING_AWAY
    return False


def orchestrator_unavailable(error: BaseException) -> bool:
    """Whether `error` says Temporal could not be reached (or answered too late)."""
    return any(_orchestrator_down(link) for link in _chain(error))


def database_unavailable(error: BaseException) -> bool:
    """Whether `error` says PostgreSQL could not be reached (or dropped the connection)."""
    return any(_database_down(link) for link in _chain(error))


def dependency_unavailable(error: BaseException) -> bool:
    """Either dependency is down: the request may succeed if sent again later."""
    return orchestrator_unavailable(error) or database_unavailable(error)
