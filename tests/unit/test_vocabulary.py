"""The typed vocabulary keeps the strings on the wire, and its sets agree with each other."""

from __future__ import annotations

import json
from typing import get_args

from temporalio.converter import DataConverter

from api.schemas import PaymentCreate
from ledger.models import TransferResult
from workflows.models import (
    CANCELABLE_STATUSES,
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    LedgerOutcome,
    LedgerResult,
    PaymentStatus,
    Rail,
    RailEvent,
    RailStatus,
    ReviewDecision,
    ReviewInput,
)


def test_payment_status_sets_partition_the_statuses() -> None:
    assert set(PaymentStatus) == OPEN_STATUSES | TERMINAL_STATUSES
    assert not OPEN_STATUSES & TERMINAL_STATUSES
    # a cancel never reaches a submitted payment: the bank has it
    assert OPEN_STATUSES - {PaymentStatus.SUBMITTED} == CANCELABLE_STATUSES


def test_the_ledger_outcomes_are_ledger_results() -> None:
    assert {outcome.value for outcome in LedgerOutcome} <= {r.value for r in TransferResult}
    assert LedgerResult("t", TransferResult.EXISTS.value).succeeded
    assert not LedgerResult("t", TransferResult.EXCEEDS_CREDITS.value).succeeded


def test_the_rails_are_the_apis() -> None:
    assert set(get_args(Rail)) == set(get_args(PaymentCreate.model_fields["rail"].annotation))


def test_enums_travel_as_their_strings() -> None:
    converter = DataConverter.default.payload_converter
    (event,) = converter.to_payloads([RailEvent("msg_1", RailStatus.SETTLED)])
    assert json.loads(event.data) == {
        "message_id": "msg_1",
        "status": "ACSC",
        "reason_code": None,
        "reference": "",
    }
    (review,) = converter.to_payloads([ReviewInput(ReviewDecision.APPROVE, "bob")])
    assert json.loads(review.data) == {
        "decision": "approve",
        "reviewer": "bob",
        "note": "",
        "reviewer_id": "",
        "token": "",
    }
    # a review sent before tokens existed (in old histories) still decodes, with no token
    (old,) = converter.to_payloads([{"decision": "approve", "reviewer": "bob", "note": ""}])
    assert converter.from_payloads([old], [ReviewInput])[0].token == ""
    decoded = converter.from_payloads([event], [RailEvent])[0]
    assert decoded == RailEvent("msg_1", "ACSC")
