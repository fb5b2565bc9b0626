"""Business metrics, emitted through Temporal's metric meter so they share the worker's
Prometheus endpoint with the SDK's own series (task latencies, failures, pollers).

Series (Prometheus names): `payments_status_transitions{status,rail}`,
`payments_screening_hits{party,decision}`, `payments_ledger_transfers{step,result}`;
payment batches: `payments_batch_items_started` (payments made from batch items),
`payments_batch_items{batch_id}` and `payments_batch_items_open{batch_id}` (each running
batch's size and items not finished, set at every progress read: one series per batch,
which is why they carry the batch id and nothing else), `payments_batches{status}`.
Step latencies come from the SDK: `temporal_activity_execution_latency{activity_type}`.
"""

from __future__ import annotations

from temporalio import activity


def count(name: str, description: str, **attributes: str) -> None:
    """Add one to a counter with the given attributes (a no-op outside an activity: the
    restore's heal runs the ledger steps from the `payments` CLI)."""
    if not activity.in_activity():
        return
    meter = activity.metric_meter()
    meter.create_counter(name, description).add(1, attributes)


def add(name: str, description: str, amount: int, **attributes: str) -> None:
    """Add `amount` to a counter (a no-op outside an activity)."""
    if amount > 0:
        activity.metric_meter().create_counter(name, description).add(amount, attributes)


def gauge(name: str, description: str, value: int, **attributes: str) -> None:
    """Set a gauge to `value` (a no-op outside an activity)."""
    activity.metric_meter().create_gauge(name, description).set(value, attributes)
