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
decoding needs no context: the codec server decodes what the Web UI sends it as before.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import os
import time
from collections.abc import Sequence
from typing import Protocol, Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)

from kernel.settings import Settings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
# present on payloads encrypted under a subject's data key: the subject (a workflow id)
SUBJECT = "encryption-subject"
# the prefixes of workflow ids that are about one customer and get a data key of their own
SUBJECT_PREFIXES = ("pay_", "cus_")
# a sealed field (`seal_field`): "sealed:v1:<subject>:<base64 nonce + ciphertext>"
SEALED_PREFIX = "sealed:v1:"
ERASED = "[erased]"


class ErasedPayloadError(ValueError):
    """The payload's data key was shredded: its subject was erased or its retention ended."""


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

    async def get_or_create(self, subject: str) -> bytes:
        """The subject's data key, made (and stored, wrapped) on first use."""
        ...

    async def shred(self, subjects: Sequence[str]) -> int:
        """Delete these subjects' keys for good; answers how many existed."""
        ...


class MemoryKeyStore:
    """Data keys in a dict: unit tests, and processes that never see a subject."""

    def __init__(self) -> None:
        self.keys: dict[str, bytes] = {}

    async def get(self, subject: str) -> bytes | None:
        """The key, if any."""
        return self.keys.get(subject)

    async def get_or_create(self, subject: str) -> bytes:
        """The key, made on first use."""
        return self.keys.setdefault(subject, AESGCM.generate_key(256))

    async def shred(self, subjects: Sequence[str]) -> int:
        """Forget these keys."""
        return sum(self.keys.pop(subject, None) is not None for subject in subjects)


class CachedKeyStore:
    """A process's cache in front of the key table: one look-up per subject and process,
    not one per payload. Entries live `ttl` seconds, which bounds how long a key shredded by
    another process (an erasure from the API or the CLI) stays usable in this one."""

    def __init__(self, inner: DataKeyStore, ttl: float, max_entries: int = 10_000) -> None:
        self._inner = inner
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[str, tuple[float, bytes]] = {}

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

    async def get_or_create(self, subject: str) -> bytes:
        """The key, from the cache or the store, made on first use."""
        key = self._cached(subject)
        return (
            key
            if key is not None
            else self._keep(subject, await self._inner.get_or_create(subject))
        )

    async def shred(self, subjects: Sequence[str]) -> int:
        """Shred in the store and forget here at once."""
        for subject in subjects:
            self._entries.pop(subject, None)
        return await self._inner.shred(subjects)


def _seal(key: bytes, plain: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plain, aad)


def _open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], aad)
    except InvalidTag:
        # tampered, truncated, or moved between keys: a refusal, not a crash
        raise ValueError("encrypted payload fails authentication") from None


def _subject_aad(subject: str) -> bytes:
    # the subject is authenticated: a payload cannot be re-labelled to another subject's key
    return b"subject:" + subject.encode()


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
            aad = _subject_aad(self._subject)
            return [
                Payload(
                    metadata={"encoding": ENCODING, SUBJECT: self._subject.encode()},
                    data=_seal(key, payload.SerializeToString(), aad),
                )
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
        """Decrypt encrypted payloads; pass others through (e.g. written before encryption).
        A payload whose data key was shredded raises `ErasedPayloadError`."""
        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                out.append(payload)
            elif SUBJECT in payload.metadata:
                out.append(await self._decode_subject(payload))
            else:
                out.append(self._decode_master(payload))
        return out

    async def _decode_subject(self, payload: Payload) -> Payload:
        subject = payload.metadata[SUBJECT].decode(errors="replace")
        key = await self._data_keys.get(subject) if self._data_keys is not None else None
        if key is None:
            raise ErasedPayloadError(f"the data key of {subject} was shredded (erased)")
        return Payload.FromString(_open(key, payload.data, _subject_aad(subject)))

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


_stores: dict[tuple[str, str, str], DataKeyStore] = {}


def data_key_store(settings: Settings) -> DataKeyStore:
    """The process's (cached) data-key store for the configured database and master keys."""
    from kernel.data_keys import PostgresKeyStore

    ident = (settings.database.url, settings.codec.payload_keys, settings.codec.payload_key_id)
    store = _stores.get(ident)
    if store is None:
        store = CachedKeyStore(PostgresKeyStore(settings), settings.codec.data_key_cache_seconds)
        _stores[ident] = store
    return store


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
        payload_codec=codec_for(settings),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
