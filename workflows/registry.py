"""Every workflow type the payments worker runs: the worker registers these, and tests/replay
replays the recorded histories of each against them."""

from __future__ import annotations

from typing import Any

from workflows.ach_batch import AchBatchWorkflow
from workflows.batch import PaymentBatchWorkflow
from workflows.ledger_maintenance import LedgerMaintenanceWorkflow
from workflows.list_refresh import ListRefreshWorkflow, RescreenCustomersWorkflow
from workflows.onboarding import OnboardingWorkflow
from workflows.payment import PaymentWorkflow
from workflows.reconciliation import ReconciliationWorkflow
from workflows.webhook_delivery import WebhookDeliveryWorkflow

WORKFLOWS: tuple[type[Any], ...] = (
    PaymentWorkflow,
    AchBatchWorkflow,
    ReconciliationWorkflow,
    LedgerMaintenanceWorkflow,
    WebhookDeliveryWorkflow,
    OnboardingWorkflow,
    ListRefreshWorkflow,
    RescreenCustomersWorkflow,
    PaymentBatchWorkflow,
)
