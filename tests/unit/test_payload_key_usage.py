"""`payments payload-keys check` finds a master key wherever a Temporal message holds a
payload under it: nested messages, repeated fields and maps (memo, headers) alike."""

from __future__ import annotations

from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import HistoryEvent

from kernel.codec import KEY_ID, SUBJECT
from services.payload_keys import key_ids_of


def under(key_id: str) -> Payload:
    return Payload(metadata={"encoding": b"binary/encrypted", KEY_ID: key_id.encode()})


def test_key_ids_are_found_in_nested_repeated_and_map_fields() -> None:
    event = HistoryEvent(event_id=1)
    started = event.workflow_execution_started_event_attributes
    started.input.payloads.extend([under("old"), under("new")])
    started.memo.fields["note"].CopyFrom(under("memo-key"))
    started.header.fields["trace"].CopyFrom(under("header-key"))
    assert sorted(key_ids_of(event)) == ["header-key", "memo-key", "new", "old"]


def test_payloads_under_a_data_key_or_in_clear_name_no_master_key() -> None:
    event = HistoryEvent(event_id=2)
    completed = event.activity_task_completed_event_attributes
    completed.result.payloads.extend(
        [
            Payload(metadata={"encoding": b"binary/encrypted", SUBJECT: b"pay_1"}),
            Payload(metadata={"encoding": b"json/plain"}, data=b"{}"),
        ]
    )
    assert list(key_ids_of(event)) == []
