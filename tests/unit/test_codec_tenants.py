"""The codec binds each subject payload to its tenant and refuses unencrypted payloads
(#16 items 2 and 3); payloads written before either still decode."""

from __future__ import annotations

import os

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.converter import WorkflowSerializationContext
from temporalio.exceptions import ApplicationError

from kernel.codec import (
    SUBJECT,
    TENANT,
    UNENCRYPTED_PAYLOAD,
    EncryptionCodec,
    ForeignPayloadError,
    MemoryKeyStore,
    PayloadConverter,
    _seal,
    _subject_aad,
    data_converter,
)
from kernel.settings import Settings

MASTER = os.urandom(32)
PAYMENT = "pay_0123456789abcdef"


def _plain(text: str = "Zebulon Quixote") -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


def _codec(store: MemoryKeyStore) -> EncryptionCodec:
    return EncryptionCodec({"m1": MASTER}, "m1", store)


def _in_payment(codec: EncryptionCodec, workflow_id: str = PAYMENT) -> EncryptionCodec:
    return codec.with_context(WorkflowSerializationContext("default", workflow_id))


@pytest.fixture
def store() -> MemoryKeyStore:
    store = MemoryKeyStore()
    store.tenants[PAYMENT] = "ten_a"
    return store


async def test_a_subject_payload_names_its_tenant_and_only_that_tenant_decodes_it(
    store: MemoryKeyStore,
) -> None:
    codec = _codec(store)
    [sealed] = await _in_payment(codec).encode([_plain()])
    assert sealed.metadata[TENANT] == b"ten_a"
    assert await codec.decode_for([sealed], "ten_a") == [_plain()]
    assert await codec.decode_for([sealed], None) == [_plain()]  # the platform
    with pytest.raises(ForeignPayloadError):
        await codec.decode_for([sealed], "ten_b")


async def test_relabelling_a_payload_to_the_callers_tenant_fails_authentication(
    store: MemoryKeyStore,
) -> None:
    codec = _codec(store)
    [sealed] = await _in_payment(codec).encode([_plain()])
    forged = Payload()
    forged.CopyFrom(sealed)
    forged.metadata[TENANT] = b"ten_b"
    with pytest.raises(ValueError, match="fails authentication"):
        await codec.decode_for([forged], "ten_b")
    # dropping the label makes the codec look the subject's tenant up: still ten_a's
    del forged.metadata[TENANT]
    with pytest.raises(ForeignPayloadError):
        await codec.decode_for([forged], "ten_b")


async def test_a_payload_from_before_the_tenant_label_decodes_and_keeps_its_owner(
    store: MemoryKeyStore,
) -> None:
    # written by the codec of #17: subject in the AAD, no tenant
    key = await store.get_or_create(PAYMENT)
    old = Payload(
        metadata={"encoding": b"binary/encrypted", SUBJECT: PAYMENT.encode()},
        data=_seal(key, _plain().SerializeToString(), _subject_aad(PAYMENT)),
    )
    codec = _codec(store)
    assert await _in_payment(codec).decode([old]) == [_plain()]
    assert await codec.decode_for([old], "ten_a") == [_plain()]
    with pytest.raises(ForeignPayloadError):
        await codec.decode_for([old], "ten_b")


async def test_the_platforms_own_payloads_are_no_tenants(store: MemoryKeyStore) -> None:
    codec = _codec(store)
    [window] = await _in_payment(codec, "ach-window-20261207-1030").encode([_plain()])
    assert await codec.decode_for([window], None) == [_plain()]
    with pytest.raises(ForeignPayloadError, match="platform"):
        await codec.decode_for([window], "ten_a")


async def test_an_unencrypted_payload_is_refused_on_conversion_not_in_the_codec(
    store: MemoryKeyStore,
) -> None:
    codec = _codec(store)
    # the codec does not raise (a raise there fails the workflow task on every retry) ...
    [marked] = await _in_payment(codec).decode([_plain("mallory")])
    # ... the conversion does, with a non-retryable failure the SDK reports where it belongs
    converter = PayloadConverter()
    with pytest.raises(ApplicationError) as refused:
        converter.from_payloads([marked])
    assert refused.value.type == UNENCRYPTED_PAYLOAD and refused.value.non_retryable
    # what the codec encrypted converts as always
    [sealed] = await _in_payment(codec).encode(converter.to_payloads(["Ada"]))
    assert converter.from_payloads(await _in_payment(codec).decode([sealed])) == ["Ada"]
    # the codec server shows an unencrypted payload as it is (it hides nothing)
    assert await codec.decode_for([_plain()], "ten_a") == [_plain()]


async def test_every_client_and_worker_converts_with_the_refusal() -> None:
    converter = data_converter(Settings())
    with pytest.raises(ApplicationError) as refused:
        await converter.decode([_plain("mallory")])
    assert refused.value.type == UNENCRYPTED_PAYLOAD
