"""Payload encryption for everything Temporal stores: AES-256-GCM with key ids, rotation, and
per-subject data keys that can be shredded (issue #17).

Workflow inputs, results, signals, activity arguments and failure messages carry names, IBANs
and account numbers; Temporal (and whoever can read its database) sees only ciphertext.

Two kinds of key:
- **master keys** (`PAYMENTS_PAYLOAD_KEYS`, the current one `PAYMENTS_PAYLOAD_KEY_ID`): every
  key listed stays usable for decryption, so they rotate by adding a new one and making it
  current. Payloads of workflows that are about nobody in particular (ledger maintenance, list
  refresh, reconciliation, schedules) and every payload written before #17 are encrypted
  with them directly, and still decode.
- **data keys**, one per *subject*: the workflow a payload belongs to when that workflow is
  about one customer (a payment `pay_…`, whose customer the `payments` row names, or an
  onboarding `cus_…`). A data key is random, stored only wrapped (AES-GCM) under the current
  master key in PostgreSQL (`payload_data_keys`), and deleted when its customer is erased or
  its payment's retention ends: every payload encrypted under it, in every history, archive
  or backup of Temporal, is unreadable from then on (crypto-shredding). The codec learns the
  subject from Temporal's serialization context (the workflow id), so no workflow changes.

A subject payload names its subject in clear (a pseudonymous id, never personal data) so that
decoding needs no context: the codec server decodes what the Web UI sends it as before. It
names its subject's tenant too (`encryption-tenant`, authenticated with the subject): the
codec server decodes a tenant's payloads only for that tenant's `ops` principals (issue #16
item 3). Payloads written before carry no tenant and decode as before; the codec server
looks their subject's tenant up.

Every payload the codec is given to decode must be encrypted (#16 item 2): one that is not
(plaintext JSON sent straight to Temporal, around the API) becomes a payload of the encoding
`binary/unencrypted-refused`, which `PayloadConverter` refuses with a non-retryable
`ApplicationError` of type `UnencryptedPayload`. Refusing in the payload converter, not in
the codec, is deliberate. The Python SDK (1.35, temporalio/worker/_workflow.py) decodes a
whole activation before running it: an ordinary codec error there fails the workflow task
again on every retry (a poison pill that wedges the workflow), and a non-retryable
`ApplicationError` fails the whole workflow (one plaintext signal from anyone with Temporal
access would end a payment holding money). A conversion error instead rejects an update,
drops a signal (with a warning), and fails a workflow whose start input it is, visibly.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import os
import time
from collections.abc import Sequence
from typing import Any, Protocol, Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    DefaultPayloadConverter,
    EncodingPayloadConverter,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)
from temporalio.exceptions import ApplicationError

from kernel.settings import Settings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
# present on payloads encrypted under a subject's data key: the subject (a workflow id)
SUBJECT = "encryption-subject"
# and its tenant, when known (payloads written since #16 item 3)
TENANT = "encryption-tenant"
# what a payload that should have been encrypted and was not decodes to (refused on conversion)
REFUSED = b"binary/unencrypted-refused"
UNENCRYPTED_PAYLOAD = "UnencryptedPayload"
# the prefixes of workflow ids that are about one customer and get a data key of their own
SUBJECT_PREFIXES = ("pay_", "cus_")
# a sealed field (`seal_field`): "sealed:v1:<subject>:<base64 nonce + ciphertext>"
SEALED_PREFIX = "sealed:v1:"
ERASED = "[erased]"


class ErasedPayloadError(ValueError):
    """The payload's data key was shredded: its subject was erased or its retention ended."""


class ForeignPayloadError(PermissionError):
    """The payload belongs to another tenant (or to the platform) than the caller's."""


class RefusedPayloadConverter(EncodingPayloadConverter):
    """Refuses what the codec marked as sent unencrypted; converts nothing to a payload."""

    @property
    def encoding(self) -> str:
        """The marker encoding."""
        return REFUSED.decode()

    def to_payload(self, value: Any) -> Payload | None:
        """Never chosen for a value."""
        return None

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        """A non-retryable failure: an update is rejected, a start input fails the workflow."""
        raise ApplicationError(
            "payload was not encrypted: send it through the API or the payments CLI",
            type=UNENCRYPTED_PAYLOAD,
            non_retryable=True,
        )


class PayloadConverter(DefaultPayloadConverter):
    """Temporal's default converters, plus the refusal of unencrypted payloads."""

    def __init__(self) -> None:
        super().__init__()
        self._set_converters(
            RefusedPayloadConverter(), *DefaultPayloadConverter.default_encoding_payload_converters
        )


def parse_keys(spec: str) -> dict[str, bytes]:
    """`id1:<base64 32 bytes>,id2:…` → {id: key}."""
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key_id, _, encoded = item.partition(":")
        key = base64.b64decode(encoded)
        if len(key) != 32:
            raise ValueError(f"payload key {key_id!r} must be 32 bytes (AES-256)")
        keys[key_id] = key
    return keys


def subject_of(context: SerializationContext | None) -> str | None:
    """The data-key subject of a payload in this context: the workflow it belongs to, when
    that workflow is about one customer; None for everything else (master key)."""
    workflow_id: str | None = None
    if isinstance(context, WorkflowSerializationContext | ActivitySerializationContext):
        workflow_id = context.workflow_id
    if workflow_id and workflow_id.startswith(SUBJECT_PREFIXES):
        return workflow_id
    return None


class DataKeyStore(Protocol):
    """Where data keys live; deleting one is shredding it."""

    async def get(self, subject: str) -> bytes | None:
        """The subject's data key, or None when it never existed or was shredded."""
        ...

    async def get_or_create(self, subject: str, *, expect_new: bool = False) -> bytes:
        """The subject's data key, made (and stored, wrapped) on first use; `expect_new`:
        the subject is most likely new (a workflow about to start), so try making it first."""
        ...

    async def shred(self, subjects: Sequence[str]) -> int:
        """Delete these subjects' keys for good; answers how many existed."""
        ...

    async def tenant_of(self, subject: str) -> str | None:
        """The tenant the subject (a payment, a customer) belongs to, None when unknown."""
        ...


class MemoryKeyStore:
    """Data keys in a dict: unit tests, and processes that never see a subject."""

    def __init__(self) -> None:
        self.keys: dict[str, bytes] = {}
        self.tenants: dict[str, str] = {}

    async def get(self, subject: str) -> bytes | None:
        """The key, if any."""
        return self.keys.get(subject)

    async def get_or_create(self, subject: str, *, expect_new: bool = False) -> bytes:
        """The key, made on first use."""
        return self.keys.setdefault(subject, AESGCM.generate_key(256))

    async def shred(self, subjects: Sequence[str]) -> int:
        """Forget these keys."""
        return sum(self.keys.pop(subject, None) is not None for subject in subjects)

    async def tenant_of(self, subject: str) -> str | None:
        """The tenant a test set for the subject."""
        return self.tenants.get(subject)


class CachedKeyStore:
    """A process's cache in front of the key table: one look-up per subject and process,
    not one per payload. Entries live `ttl` seconds, which bounds how long a key shredded by
    another process (an erasure from the API or the CLI) stays usable in this one."""

    def __init__(self, inner: DataKeyStore, ttl: float, max_entries: int = 10_000) -> None:
        self._inner = inner
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[str, tuple[float, bytes]] = {}
        # a subject's tenant never changes: kept without expiry, up to `max_entries`
        self._tenants: dict[str, str] = {}

    def _cached(self, subject: str) -> bytes | None:
        entry = self._entries.get(subject)
        if entry is None or entry[0] < time.monotonic():
            self._entries.pop(subject, None)
            return None
        return entry[1]

    def _keep(self, subject: str, key: bytes) -> bytes:
        if len(self._entries) >= self._max:
            # dicts keep insertion order: drop the oldest half rather than track recency
            for stale in list(self._entries)[: self._max // 2]:
                del self._entries[stale]
        self._entries[subject] = (time.monotonic() + self._ttl, key)
        return key

    async def get(self, subject: str) -> bytes | None:
        """The key, from the cache or the store (a missing key is never cached)."""
        key = self._cached(subject)
        if key is None and (key := await self._inner.get(subject)) is not None:
            self._keep(subject, key)
        return key

    async def get_or_create(self, subject: str, *, expect_new: bool = False) -> bytes:
        """The key, from the cache or the store, made on first use."""
        key = self._cached(subject)
        if key is not None:
            return key
        return self._keep(subject, await self._inner.get_or_create(subject, expect_new=expect_new))

    async def shred(self, subjects: Sequence[str]) -> int:
        """Shred in the store and forget here at once."""
        for subject in subjects:
            self._entries.pop(subject, None)
        return await self._inner.shred(subjects)

    def note_tenant(self, subject: str, tenant: str) -> None:
        """Tell the cache a subject's tenant before its row is committed (the API starts a
        payment's workflow inside the transaction that inserts the payment)."""
        if len(self._tenants) >= self._max:
            self._tenants.clear()
        self._tenants[subject] = tenant

    async def tenant_of(self, subject: str) -> str | None:
        """The subject's tenant, looked up once per process (an unknown one every time)."""
        tenant = self._tenants.get(subject)
        if tenant is None and (tenant := await self._inner.tenant_of(subject)) is not None:
            self.note_tenant(subject, tenant)
        return tenant


def _seal(key: bytes, plain: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plain, aad)


def _open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], aad)
    except InvalidTag:
        # tampered, truncated, or moved between keys: a refusal, not a crash
        raise ValueError("encrypted payload fails authentication") from None


def _subject_aad(subject: str, tenant: str | None = None) -> bytes:
    # the subject (and its tenant) are authenticated: a payload cannot be re-labelled to
    # another subject's key or another tenant; payloads from before the tenant have none
    aad = b"subject:" + subject.encode()
    return aad if tenant is None else aad + b"|tenant:" + tenant.encode()


class EncryptionCodec(PayloadCodec, WithSerializationContext):
    """Encrypts with the subject's data key when the context names one, else with the
    current master key; decrypts whatever a payload names (older payloads included)."""

    def __init__(
        self,
        keys: dict[str, bytes],
        current_key_id: str,
        data_keys: DataKeyStore | None = None,
        *,
        subject: str | None = None,
    ) -> None:
        if current_key_id not in keys:
            raise ValueError(f"current payload key {current_key_id!r} is not among the keys")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._current = current_key_id
        self._data_keys = data_keys
        # without a key store (unit tests, tools), everything goes under the master key
        self._subject = subject if data_keys is not None else None

    def with_context(self, context: SerializationContext) -> Self:
        """A codec for this context's subject (the SDK calls it for every conversion)."""
        codec = copy.copy(self)
        codec._subject = subject_of(context) if self._data_keys is not None else None
        return codec

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt each payload (metadata and data) as one opaque payload."""
        if self._subject is not None and self._data_keys is not None:
            key = await self._data_keys.get_or_create(self._subject)
            tenant = await self._data_keys.tenant_of(self._subject)
            aad = _subject_aad(self._subject, tenant)
            metadata = {"encoding": ENCODING, SUBJECT: self._subject.encode()}
            if tenant is not None:
                metadata[TENANT] = tenant.encode()
            return [
                Payload(metadata=metadata, data=_seal(key, payload.SerializeToString(), aad))
                for payload in payloads
            ]
        cipher = self._ciphers[self._current]
        out = []
        for payload in payloads:
            nonce = os.urandom(12)
            # the key id is authenticated too: a payload cannot be re-labelled to another key
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), self._current.encode())
            out.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID: self._current.encode()},
                    data=nonce + sealed,
                )
            )
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt encrypted payloads; one that is not encrypted becomes a `REFUSED` payload
        (refused on conversion, see the module's docstring). A payload whose data key was
        shredded raises `ErasedPayloadError`."""
        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                out.append(Payload(metadata={"encoding": REFUSED}))
            elif SUBJECT in payload.metadata:
                out.append(await self._decode_subject(payload))
            else:
                out.append(self._decode_master(payload))
        return out

    async def decode_for(self, payloads: Sequence[Payload], tenant: str | None) -> list[Payload]:
        """The codec server's decoding for a caller: `tenant` None is the platform (any
        payload); a tenant's caller gets only payloads of that tenant's subjects, else
        `ForeignPayloadError` (the platform's own workflows are no tenant's). Unencrypted
        payloads come back as they are: the Web UI shows them, they hide nothing."""
        if tenant is not None:
            for payload in payloads:
                if payload.metadata.get("encoding") == ENCODING:
                    owner = await self._owner(payload)
                    if owner != tenant:
                        raise ForeignPayloadError(
                            "a payload belongs to "
                            + ("the platform" if owner is None else "another tenant")
                        )
        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                out.append(payload)
            else:
                out.extend(await self.decode([payload]))
        return out

    async def _owner(self, payload: Payload) -> str | None:
        # the label is checked against the ciphertext when it is decrypted (it is in the
        # AAD), so a payload re-labelled with the caller's tenant fails authentication
        if TENANT in payload.metadata:
            return payload.metadata[TENANT].decode(errors="replace")
        if SUBJECT in payload.metadata and self._data_keys is not None:
            # written before the label: the subject is authenticated, its tenant is on record
            return await self._data_keys.tenant_of(payload.metadata[SUBJECT].decode())
        return None

    async def _decode_subject(self, payload: Payload) -> Payload:
        subject = payload.metadata[SUBJECT].decode(errors="replace")
        tenant = (
            payload.metadata[TENANT].decode(errors="replace")
            if TENANT in payload.metadata
            else None
        )
        key = await self._data_keys.get(subject) if self._data_keys is not None else None
        if key is None:
            raise ErasedPayloadError(f"the data key of {subject} was shredded (erased)")
        return Payload.FromString(_open(key, payload.data, _subject_aad(subject, tenant)))

    def _decode_master(self, payload: Payload) -> Payload:
        if KEY_ID not in payload.metadata:
            raise ValueError("encrypted payload names no key")
        key_id = payload.metadata[KEY_ID].decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise ValueError(f"payload encrypted with unknown key {key_id!r}")
        try:
            plain = cipher.decrypt(payload.data[:12], payload.data[12:], key_id.encode())
        except InvalidTag:
            raise ValueError("encrypted payload fails authentication") from None
        return Payload.FromString(plain)


class FieldSealer:
    """Seals one text field under a subject's data key, for personal data that must travel
    outside that subject's own workflow (an ACH window's entries, an audit record's
    explanation): shredding the subject's key erases the field wherever it went, and a
    sealed string in a hash-chained record keeps the chain verifiable."""

    def __init__(self, data_keys: DataKeyStore) -> None:
        self._data_keys = data_keys

    async def seal(self, subject: str, text: str) -> str:
        """`text` sealed under `subject`'s key (made on first use)."""
        key = await self._data_keys.get_or_create(subject)
        sealed = _seal(key, text.encode(), b"field:" + subject.encode())
        return f"{SEALED_PREFIX}{subject}:{base64.b64encode(sealed).decode()}"

    async def open(self, text: str) -> str:
        """The plain text of a sealed field; `[erased]` once its key is shredded; any other
        text as it is (fields written before sealing)."""
        if not text.startswith(SEALED_PREFIX):
            return text
        # base64 has no colon; a subject may (`hold:cus_…`)
        subject, _, encoded = text[len(SEALED_PREFIX) :].rpartition(":")
        key = await self._data_keys.get(subject)
        if key is None:
            return ERASED
        return _open(key, base64.b64decode(encoded), b"field:" + subject.encode()).decode()


def wrap_data_key(master: bytes, subject: str, key: bytes) -> bytes:
    """A data key sealed under a master key (bound to its subject) for storage."""
    return _seal(master, key, b"data-key:" + subject.encode())


def unwrap_data_key(master: bytes, subject: str, wrapped: bytes) -> bytes:
    """The data key a `wrap_data_key` result holds."""
    return _open(master, wrapped, b"data-key:" + subject.encode())


_stores: dict[tuple[str, str, str], CachedKeyStore] = {}


def data_key_store(settings: Settings) -> CachedKeyStore:
    """The process's (cached) data-key store for the configured database and master keys."""
    from kernel.data_keys import PostgresKeyStore

    ident = (settings.database.url, settings.codec.payload_keys, settings.codec.payload_key_id)
    store = _stores.get(ident)
    if store is None:
        store = CachedKeyStore(PostgresKeyStore(settings), settings.codec.data_key_cache_seconds)
        _stores[ident] = store
    return store


async def prepare_subject(settings: Settings, subject: str, tenant: str) -> None:
    """Before starting a new subject's workflow: make its data key (one statement, before
    the start encodes the input with it) and label its payloads with `tenant` (its row is
    not committed yet)."""
    store = data_key_store(settings)
    store.note_tenant(subject, tenant)
    await store.get_or_create(subject, expect_new=True)


def note_tenant(settings: Settings, subject: str, tenant: str) -> None:
    """Before starting a subject's workflow in the transaction that creates the subject: its
    payloads are labelled with `tenant` although the row is not visible yet."""
    data_key_store(settings).note_tenant(subject, tenant)


def codec_for(settings: Settings, *, data_keys: bool = True) -> EncryptionCodec:
    """The codec configured by `PAYMENTS_PAYLOAD_KEYS` and `PAYMENTS_PAYLOAD_KEY_ID`, with
    the data-key store in PostgreSQL (`data_keys=False`: master keys only)."""
    return EncryptionCodec(
        parse_keys(settings.codec.payload_keys),
        settings.codec.payload_key_id,
        data_key_store(settings) if data_keys else None,
    )


def data_converter(settings: Settings) -> DataConverter:
    """Temporal's default converter with our encryption codec, for every client and worker.

    Failure messages and stack traces go into an encoded attribute (the codec encrypts it)
    instead of the failure's clear text: "bank refused … Erika Mustermann …" would otherwise
    sit in every history. Failures recorded before this decode as they are (plain message).
    """
    return dataclasses.replace(
        DataConverter.default,
        payload_converter_class=PayloadConverter,
        payload_codec=codec_for(settings),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
