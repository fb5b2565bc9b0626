"""Every workflow type the payments worker runs: the worker registers these, and tests/replay
replays the recorded histories of each against them."""

from __future__ import annotations

from typing import Any

from workflows.ach_batch import AchBatchWorkflow
from workflows.batch import PaymentBatchWorkflow
from workflows.counterparty_verification import CounterpartyVerificationWorkflow
from workflows.full_verification import FullVerificationWorkflow
from workflows.ledger_maintenance import LedgerMaintenanceWorkflow
from workflows.list_refresh import (
    ListRefreshWorkflow,
    RescreenCounterpartiesWorkflow,
    RescreenCustomersWorkflow,
)
from workflows.onboarding import OnboardingWorkflow
from workflows.partition_maintenance import PartitionMaintenanceWorkflow
from workflows.payment import PaymentWorkflow
from workflows.recall import RecallWorkflow
from workflows.reconciliation import ReconciliationWorkflow
from workflows.scheduled_payment import ScheduledPaymentRunWorkflow
from workflows.webhook_delivery import WebhookDeliveryWorkflow

WORKFLOWS: tuple[type[Any], ...] = (
    PaymentWorkflow,
    AchBatchWorkflow,
    ReconciliationWorkflow,
    LedgerMaintenanceWorkflow,
    PartitionMaintenanceWorkflow,
    WebhookDeliveryWorkflow,
    OnboardingWorkflow,
    ListRefreshWorkflow,
    RescreenCustomersWorkflow,
    FullVerificationWorkflow,
    CounterpartyVerificationWorkflow,
    RescreenCounterpartiesWorkflow,
    PaymentBatchWorkflow,
    RecallWorkflow,
    ScheduledPaymentRunWorkflow,
)
