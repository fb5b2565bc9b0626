"""The payload codec's data keys: per-subject envelope encryption, shredding, and payloads
from before #17 still readable."""

from __future__ import annotations

import base64
import os
from types import SimpleNamespace
from typing import cast

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure
from temporalio.client import Client
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    WorkflowSerializationContext,
)
from temporalio.exceptions import ApplicationError

from kernel.codec import (
    ERASED,
    KEY_ID,
    SUBJECT,
    CachedKeyStore,
    EncryptionCodec,
    ErasedPayloadError,
    FieldSealer,
    MemoryKeyStore,
    data_converter,
    subject_of,
    unwrap_data_key,
    wrap_data_key,
)
from kernel.settings import Settings
from services.erasure import sealed_hits
from services.payment_actions import _decode_failure

MASTER = os.urandom(32)
NAME = b'{"name": "Zebulon Quixote", "iban": "GB33BUKB20201555555555"}'


def _payment_context(workflow_id: str = "pay_0123456789abcdef") -> WorkflowSerializationContext:
    return WorkflowSerializationContext(namespace="default", workflow_id=workflow_id)


def _activity_context(workflow_id: str) -> ActivitySerializationContext:
    return ActivitySerializationContext(
        namespace="default",
        activity_id="1",
        activity_type="screen_parties",
        activity_task_queue="payments",
        workflow_id=workflow_id,
        workflow_type="Payment",
        is_local=False,
    )


def _plain() -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=NAME)


def test_subjects_are_the_workflows_about_one_customer() -> None:
    assert subject_of(_payment_context("pay_1")) == "pay_1"
    assert subject_of(_activity_context("cus_1")) == "cus_1"
    # a window, a schedule, maintenance: about nobody in particular, master key
    assert subject_of(_payment_context("ach-window-20261207-1030")) is None
    assert subject_of(_activity_context("ledger-maintenance")) is None


async def test_a_payment_payload_is_encrypted_under_its_own_data_key() -> None:
    store = MemoryKeyStore()
    codec = EncryptionCodec({"m1": MASTER}, "m1", store).with_context(_payment_context())
    [sealed] = await codec.encode([_plain()])
    assert sealed.metadata[SUBJECT] == b"pay_0123456789abcdef"
    assert KEY_ID not in sealed.metadata  # not the master key
    assert b"Zebulon" not in sealed.SerializeToString()
    assert set(store.keys) == {"pay_0123456789abcdef"}
    # decoding needs no context (the codec server has none)
    [opened] = await EncryptionCodec({"m1": MASTER}, "m1", store).decode([sealed])
    assert opened == _plain()


async def test_shredding_the_key_makes_every_copy_unreadable() -> None:
    store = MemoryKeyStore()
    codec = EncryptionCodec({"m1": MASTER}, "m1", store)
    [one] = await codec.with_context(_payment_context("pay_a")).encode([_plain()])
    [other] = await codec.with_context(_payment_context("pay_b")).encode([_plain()])
    assert await store.shred(["pay_a"]) == 1
    with pytest.raises(ErasedPayloadError, match="pay_a"):
        await codec.decode([one])
    # another customer's payment is untouched
    assert await codec.decode([other]) == [_plain()]
    # the master key alone cannot recover it: it never encrypted the payload
    with pytest.raises(ErasedPayloadError):
        await EncryptionCodec({"m1": MASTER}, "m1", MemoryKeyStore()).decode([one])


async def test_payloads_from_before_data_keys_still_decode() -> None:
    # written by the codec of #11: master key only, no subject
    old = EncryptionCodec({"m1": MASTER}, "m1")
    [legacy] = await old.encode([_plain()])
    assert legacy.metadata[KEY_ID] == b"m1"
    codec = EncryptionCodec({"m1": MASTER}, "m1", MemoryKeyStore())
    assert await codec.with_context(_payment_context()).decode([legacy]) == [_plain()]
    # unencrypted payloads do not pass (tests/unit/test_codec_tenants.py)
    assert await codec.decode([_plain()]) != [_plain()]


async def test_a_subject_payload_cannot_be_relabelled_to_another_subject() -> None:
    store = MemoryKeyStore()
    codec = EncryptionCodec({"m1": MASTER}, "m1", store)
    [sealed] = await codec.with_context(_payment_context("pay_a")).encode([_plain()])
    store.keys["pay_b"] = store.keys["pay_a"]
    sealed.metadata[SUBJECT] = b"pay_b"
    with pytest.raises(ValueError, match="authentication"):
        await codec.decode([sealed])


def test_a_wrapped_data_key_opens_only_under_its_master_and_subject() -> None:
    key = os.urandom(32)
    wrapped = wrap_data_key(MASTER, "pay_a", key)
    assert key not in wrapped
    assert unwrap_data_key(MASTER, "pay_a", wrapped) == key
    with pytest.raises(ValueError):
        unwrap_data_key(MASTER, "pay_b", wrapped)
    with pytest.raises(ValueError):
        unwrap_data_key(os.urandom(32), "pay_a", wrapped)


async def test_the_cache_forgets_a_key_shredded_here_at_once() -> None:
    inner = MemoryKeyStore()
    cached = CachedKeyStore(inner, ttl=3600)
    key = await cached.get_or_create("pay_a")
    assert await cached.get("pay_a") == key
    await cached.shred(["pay_a"])
    assert await cached.get("pay_a") is None
    assert inner.keys == {}


async def test_the_cache_holds_a_key_shredded_elsewhere_no_longer_than_its_ttl() -> None:
    inner = MemoryKeyStore()
    await CachedKeyStore(inner, ttl=3600).get_or_create("pay_a")
    other_process = CachedKeyStore(inner, ttl=0)
    assert await other_process.get("pay_a") is not None
    await inner.shred(["pay_a"])  # another process's erasure
    assert await other_process.get("pay_a") is None


async def test_a_sealed_field_reads_erased_once_its_key_is_shredded() -> None:
    store = MemoryKeyStore()
    sealer = FieldSealer(store)
    sealed = await sealer.seal("pay_a", "Zebulon Quixote")
    assert "Zebulon" not in sealed
    assert sealed.startswith("sealed:v1:pay_a:")
    assert await sealer.open(sealed) == "Zebulon Quixote"
    # a value written before sealing reads as it is
    assert await sealer.open("Erika Mustermann") == "Erika Mustermann"
    # a subject may hold a colon (a legal hold's `hold:cus_…`)
    held = await sealer.seal("hold:cus_a", "Zebulon Quixote")
    await store.shred(["pay_a"])
    assert await sealer.open(sealed) == ERASED
    assert await sealer.open(held) == "Zebulon Quixote"


async def test_failure_messages_are_encrypted_under_the_subjects_key() -> None:
    master = base64.b64encode(MASTER).decode()
    settings = Settings().updated(
        {"codec.payload_keys": f"m1:{master}", "codec.payload_key_id": "m1"}
    )
    # the platform's converter puts failure messages into an encoded attribute
    assert (
        data_converter(settings).failure_converter_class
        is DefaultFailureConverterWithEncodedAttributes
    )
    converter = DataConverter(
        payload_codec=EncryptionCodec({"m1": MASTER}, "m1", MemoryKeyStore()),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    ).with_context(_activity_context("pay_a"))
    failure = Failure()
    error = ApplicationError("bank refused Zebulon Quixote GB33BUKB20201555555555", type="x")
    await converter.encode_failure(error, failure)
    assert b"Zebulon" not in failure.SerializeToString()
    assert failure.message == "Encoded failure"
    assert failure.encoded_attributes.metadata[SUBJECT] == b"pay_a"
    decoded = await converter.decode_failure(failure)
    assert "Zebulon Quixote" in str(decoded)
    # an old failure (message in clear, no encoded attributes) decodes as it was
    old = Failure(message="rail refused", application_failure_info=ApplicationFailureInfo(type="x"))
    decoded_old = await converter.decode_failure(old)
    assert isinstance(decoded_old, ApplicationError)
    assert decoded_old.message == "rail refused"


async def test_audit_explanations_are_sealed_and_list_facts_stay_readable() -> None:
    store = MemoryKeyStore()
    sealer = FieldSealer(store)
    hits = [
        {
            "list_name": "sdn",
            "entity_id": "22790",
            "matched_name": "MADURO MOROS, Nicolas",
            "score": 0.97,
            "explanation": "name 0.970: nicolas~nicolas=1.00; query only: zebulon",
        },
        {
            "list_name": "input-checks",
            "entity_id": "mixed_script",
            "matched_name": "Zebulon Quix\u03bfte",
            "score": 0.0,
            "explanation": "mixed_script: Zebulon Quix\u03bfte",
        },
    ]
    sealed = await sealed_hits(sealer, "pay_a", hits)
    assert "zebulon" not in str(sealed).lower()
    assert sealed[0]["matched_name"] == "MADURO MOROS, Nicolas"  # the list's, public
    assert [h["entity_id"] for h in sealed] == ["22790", "mixed_script"]
    assert await sealer.open(sealed[1]["matched_name"]) == "Zebulon Quix\u03bfte"
    await store.shred(["pay_a"])
    assert await sealer.open(sealed[0]["explanation"]) == ERASED


async def test_payments_show_reads_failure_messages_in_clear_until_shredded() -> None:
    store = MemoryKeyStore()
    converter = DataConverter(
        payload_codec=EncryptionCodec({"m1": MASTER}, "m1", store),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
    client = cast(Client, SimpleNamespace(data_converter=converter))
    failure = Failure()
    await converter.with_context(_activity_context("pay_a")).encode_failure(
        ApplicationError("bank unreachable", type="x"), failure
    )
    shown = Failure()
    shown.CopyFrom(failure)
    await _decode_failure(client, shown)
    assert shown.message == "bank unreachable"
    await store.shred(["pay_a"])
    await _decode_failure(client, failure)
    assert failure.message == ERASED
