"""Task queues by role: workflows on the base queue, activities on role queues.

One worker process type per queue can then scale on its own (ledger work on the database,
rail work on the bank's latency, compliance on CPU); the all-in-one dev worker polls them
all. Names derive from the workflow's own queue, so workflows need no configuration. Which
activity runs in which role is declared with the activity, in workflows/steps.py.
"""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["payments", "ledger", "rails", "compliance"]
ROLES: tuple[Role, ...] = get_args(Role)


def queue_for(base_queue: str, role: Role) -> str:
    """The task queue of a role (`payments` is the base queue itself)."""
    return base_queue if role == "payments" else f"{base_queue}-{role}"
