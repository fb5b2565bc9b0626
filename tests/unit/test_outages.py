"""What counts as "Temporal or PostgreSQL is down" (kernel/outages.py), and the answer the
API gives for it: 503 with `Retry-After` and a stable code, never 500 (issue #24, item 5).

The game days in tests/chaos/test_outages.py keep the real servers down; these pin the
classification on the exceptions the client libraries raise (measured, see the module)."""

from __future__ import annotations

import httpx
import psycopg
import pytest
from psycopg import errors as pg_errors
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.service import RPCError, RPCStatusCode

from api.app import create_app
from api.errors import outage_response
from api.problems import AUTHENTICATED, ORCHESTRATED, catalogue
from kernel.outages import database_unavailable, orchestrator_unavailable
from ops.devstack import free_port
from tests.chaos.runbooks import runbook_commands


def rpc(status: RPCStatusCode) -> RPCError:
    return RPCError("tcp connect error", status, b"")


def wrapped(orig: BaseException) -> sa_exc.DBAPIError:
    """An error the way SQLAlchemy raises a driver's: wrapped, `from` the original."""
    try:
        try:
            raise orig
        except Exception as err:
            raise sa_exc.OperationalError("SELECT 1", {}, err) from err
    except sa_exc.DBAPIError as outer:
        return outer


@pytest.mark.parametrize(
    ("error", "down"),
    [
        (rpc(RPCStatusCode.UNAVAILABLE), True),
        (rpc(RPCStatusCode.CANCELLED), True),  # rpc_timeout on a hung server
        (rpc(RPCStatusCode.DEADLINE_EXCEEDED), True),
        (rpc(RPCStatusCode.NOT_FOUND), False),
        (rpc(RPCStatusCode.ALREADY_EXISTS), False),
        (RuntimeError("Failed client connect: Server connection error"), True),
        (RuntimeError("something else"), False),
    ],
)
def test_temporal_outages_are_told_from_answers(error: BaseException, down: bool) -> None:
    assert orchestrator_unavailable(error) is down
    assert database_unavailable(error) is False


@pytest.mark.parametrize(
    ("error", "down"),
    [
        (wrapped(psycopg.OperationalError("connection refused")), True),
        (wrapped(pg_errors.AdminShutdown("terminating connection")), True),
        (wrapped(pg_errors.ConnectionFailure("lost")), True),
        (psycopg.InterfaceError("the connection is closed"), True),
        (sa_exc.TimeoutError("QueuePool limit reached"), True),
        # the server is up and answered: not an outage
        (wrapped(pg_errors.DeadlockDetected("deadlock")), False),
        (wrapped(pg_errors.QueryCanceled("statement timeout")), False),
        (sa_exc.IntegrityError("INSERT", {}, Exception("duplicate")), False),
    ],
)
def test_database_outages_are_told_from_answers(error: BaseException, down: bool) -> None:
    assert database_unavailable(error) is down
    assert orchestrator_unavailable(error) is False


def test_an_outage_hidden_behind_a_failed_cleanup_is_still_an_outage() -> None:
    try:
        try:
            raise rpc(RPCStatusCode.UNAVAILABLE)
        except RPCError:
            raise ValueError("clean-up failed") from None
    except ValueError as err:
        hidden = err
    # `from None` drops the cause but keeps the context
    assert orchestrator_unavailable(hidden)


def test_outages_answer_503_with_retry_after_and_their_code() -> None:
    for error, code in (
        (rpc(RPCStatusCode.UNAVAILABLE), "orchestrator_unavailable"),
        (wrapped(psycopg.OperationalError("connection refused")), "database_unavailable"),
    ):
        response = outage_response(error, 7)
        assert response is not None
        assert response.status_code == 503
        assert response.headers["retry-after"] == "7"
        assert response.headers["content-type"] == "application/problem+json"
        assert code.encode() in response.body
    assert outage_response(ValueError("a bug"), 7) is None


def test_the_contract_declares_the_outage_codes() -> None:
    codes = {problem.code: problem.status for problem in catalogue()}
    assert codes["orchestrator_unavailable"] == codes["database_unavailable"] == 503
    assert [p.code for p in ORCHESTRATED] == ["orchestrator_unavailable"]
    assert "database_unavailable" in {p.code for p in AUTHENTICATED}
    document = create_app().openapi()
    for path, method in (
        ("/v1/payments", "post"),
        ("/v1/payments/{payment_id}/cancel", "post"),
        ("/v1/payments/{payment_id}/retry", "post"),
        ("/v1/payments/{payment_id}/review", "post"),
        ("/v1/customers", "post"),
        ("/v1/deposits", "post"),
        ("/v1/reconciliations", "post"),
    ):
        unavailable = document["paths"][path][method]["responses"]["503"]
        assert "Retry-After" in unavailable["headers"], path
        schema = unavailable["content"]["application/problem+json"]["schema"]
        assert "orchestrator_unavailable" in schema["allOf"][1]["properties"]["code"]["enum"]
    read = document["paths"]["/v1/payments/{payment_id}"]["get"]["responses"]["503"]
    assert read["content"]["application/problem+json"]["schema"]["allOf"][1]["properties"]["code"][
        "enum"
    ] == ["database_unavailable"]


async def test_a_request_with_the_database_down_answers_503_not_500() -> None:
    # a port nothing listens on: psycopg's real "connection refused", no server needed
    app = create_app()
    app.state.engine = create_async_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/payments"
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            response = await client.get(
                "/v1/payments", headers={"Authorization": "Bearer psk_test_nothing"}
            )
    finally:
        await app.state.engine.dispose()
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "database_unavailable"
    assert int(response.headers["retry-after"]) >= 1


@pytest.mark.parametrize("runbook", ["temporal-down.md", "postgres-down.md"])
def test_each_outage_runbook_has_the_steps_its_game_day_runs(runbook: str) -> None:
    # the game days (tests/chaos/test_outages.py) run these; a broken fence would leave them
    # nothing to run, and they would fail only in the e2e tier
    phases = runbook_commands(runbook)
    assert set(phases) == {"confirm", "recover"}
    assert all(phases.values())
    recover = " ".join(phases["recover"])
    assert "payments ledger verify" in recover and "payments audit verify" in recover
    assert 'ExecutionStatus = "Failed"' in recover  # no payment workflow failed
