"""The worker registers activities from the step catalogue, and refuses what it does not
declare (unknown names, other types, missing steps)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from temporalio import activity
from temporalio.client import Client

from kernel.db import get_engine
from kernel.settings import WorkerSettings
from ops.devstack import isolated_settings
from services.watch_lists import LoadedLists, WatchLists
from workers.activity_registry import CatalogueMismatchError, activities_by_role, step_of
from workers.payments_worker import activity_implementations, selected_roles
from workflows import steps
from workflows.models import KycCheckInput, LedgerInput, LedgerResult, PaymentInput
from workflows.queues import ROLES
from workflows.steps import implements


async def test_the_worker_implements_every_catalogued_step_on_its_role(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path)
    lists = WatchLists(get_engine(settings), cast(LoadedLists, None))
    async with httpx.AsyncClient() as http:
        implementations = activity_implementations(
            cast(Client, None), settings, http, lists, webhook_http=http
        )
    by_role = activities_by_role(implementations, ROLES)
    registered = {
        step_of(implementation).name: role
        for role, implementations in by_role.items()
        for implementation in implementations
    }
    assert registered == {step.name: step.role for step in steps.ALL}


async def test_a_worker_without_watch_lists_runs_no_compliance_step(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path)
    async with httpx.AsyncClient() as http:
        implementations = activity_implementations(
            cast(Client, None), settings, http, None, webhook_http=http
        )
    by_role = activities_by_role(implementations, ["payments", "ledger", "rails"])
    assert by_role["compliance"] == []
    with pytest.raises(CatalogueMismatchError, match="no implementation"):
        activities_by_role(implementations, ROLES)


def test_an_activity_with_another_input_type_is_refused() -> None:
    @activity.defn(name="hold_funds")
    async def hold(request: KycCheckInput) -> LedgerResult:
        return LedgerResult("t", "ok")

    with pytest.raises(CatalogueMismatchError, match="hold_funds takes"):
        step_of(hold)


def test_an_activity_the_catalogue_does_not_declare_is_refused() -> None:
    @activity.defn(name="hold_funds_twice")
    async def hold(request: LedgerInput) -> LedgerResult:
        return LedgerResult("t", "ok")

    with pytest.raises(CatalogueMismatchError, match=r"not in workflows/steps\.py"):
        step_of(hold)


def test_a_fake_declared_with_implements_is_the_catalogued_step() -> None:
    @implements(steps.VOID_HOLD)
    async def void(request: LedgerInput) -> LedgerResult:
        return LedgerResult(f"{request.payment_id}:void", "ok")

    implementation: Any = void
    assert step_of(implementation) is steps.VOID_HOLD


def test_settings_and_the_payment_input_agree_on_split_queues() -> None:
    # a payment started without the field (every payment before it) runs as configured
    assert WorkerSettings.model_fields["split_activity_queues"].default is True
    assert PaymentInput.__dataclass_fields__["split_activity_queues"].default is True


def test_a_single_role_worker_refuses_unsplit_queues(tmp_path: Path) -> None:
    role_worker = isolated_settings(tmp_path, {"worker.queues": "ledger"})
    assert selected_roles(role_worker.updated({"worker.split_activity_queues": True})) == ["ledger"]
    with pytest.raises(ValueError, match="needs split_activity_queues"):
        selected_roles(role_worker.updated({"worker.split_activity_queues": False}))
