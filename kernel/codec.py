"""Payload encryption for everything Temporal stores: AES-256-GCM with key ids and rotation.

Workflow inputs, results, signals and activity arguments carry names, IBANs and account
numbers; Temporal (and whoever can read its database) sees only ciphertext. New payloads are
encrypted with the current key; every key listed stays usable for decryption, so keys rotate
by adding a new one, making it current, and retiring the old one once no open workflow and
no retained history needs it.
"""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, PayloadCodec

from kernel.settings import Settings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"


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


class EncryptionCodec(PayloadCodec):
    """Encrypts with the current key; decrypts with whichever key a payload names."""

    def __init__(self, keys: dict[str, bytes], current_key_id: str) -> None:
        if current_key_id not in keys:
            raise ValueError(f"current payload key {current_key_id!r} is not among the keys")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._current = current_key_id

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt each payload (metadata and data) as one opaque payload."""
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
        """Decrypt encrypted payloads; pass others through (e.g. written before encryption)."""
        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                out.append(payload)
                continue
            if KEY_ID not in payload.metadata:
                raise ValueError("encrypted payload names no key")
            key_id = payload.metadata[KEY_ID].decode(errors="replace")
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                raise ValueError(f"payload encrypted with unknown key {key_id!r}")
            try:
                plain = cipher.decrypt(payload.data[:12], payload.data[12:], key_id.encode())
            except InvalidTag:
                # tampered, truncated, or moved between key ids: a refusal, not a crash
                raise ValueError("encrypted payload fails authentication") from None
            out.append(Payload.FromString(plain))
        return out


def codec_for(settings: Settings) -> EncryptionCodec:
    """The codec configured by `PAYMENTS_PAYLOAD_KEYS` and `PAYMENTS_PAYLOAD_KEY_ID`."""
    return EncryptionCodec(parse_keys(settings.codec.payload_keys), settings.codec.payload_key_id)


def data_converter(settings: Settings) -> DataConverter:
    """Temporal's default converter with our encryption codec: for every client and worker."""
    return dataclasses.replace(DataConverter.default, payload_codec=codec_for(settings))
