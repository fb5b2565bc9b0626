"""One webhook delivery: an event to an endpoint."""

# no `from __future__ import annotations`: the workflow sandbox resolves string annotations
# in sys.modules[cls.__module__], which only holds the modules a workflow imported itself
from dataclasses import dataclass


@dataclass
class DeliveryInput:
    """One event to deliver to one endpoint."""

    event_id: str
    endpoint_id: str
    initial_retry_seconds: float = 5.0


@dataclass
class DeliveryResult:
    """How the delivery ended."""

    status: int = 0
    attempts: int = 0
    skipped: bool = False
