"""Business metrics, emitted through Temporal's metric meter so they share the worker's
Prometheus endpoint with the SDK's own series (task latencies, failures, pollers).

Series (Prometheus names): `payments_status_transitions{status,rail}`,
`payments_screening_hits{party,decision}`, `payments_ledger_transfers{step,result}`.
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
