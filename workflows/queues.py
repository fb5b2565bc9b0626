"""Task queues by role: workflows on the base queue, activities on role queues.

One worker process type per queue can then scale on its own (ledger work on the database,
rail work on the bank's latency, compliance on CPU); the all-in-one dev worker polls them
all. Names derive from the workflow's own queue, so workflows need no configuration.
"""

from __future__ import annotations

ROLES = ("payments", "ledger", "rails", "compliance")

ACTIVITY_ROLE = {
    "check_debtor_kyc": "compliance",
    "screen_parties": "compliance",
    "check_payment_limits": "compliance",
    "hold_funds": "ledger",
    "post_hold": "ledger",
    "void_hold": "ledger",
    "block_funds": "ledger",
    "reverse_payment": "ledger",
    "expire_pending_transfers": "ledger",
    "observe_platform": "ledger",
    "submit_to_rail": "rails",
    "poll_rail_status": "rails",
    "submit_ach_file": "rails",
    "reconcile_statement": "rails",
    "record_payment_status": "payments",
    "record_review_escalation": "payments",
    "deliver_webhook": "payments",
}


def queue_for(base_queue: str, role: str) -> str:
    """The task queue of a role (`payments` is the base queue itself)."""
    return base_queue if role == "payments" else f"{base_queue}-{role}"


def activity_queue(base_queue: str, activity_name: str) -> str:
    """Where an activity is scheduled."""
    return queue_for(base_queue, ACTIVITY_ROLE[activity_name])
