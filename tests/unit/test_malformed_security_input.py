"""Malformed input at two trust boundaries is refused, never a crash (a 500): a tampered
payload at the codec, an odd timestamp on a rail callback."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
from temporalio.api.common.v1 import Payload

from kernel.codec import KEY_ID, EncryptionCodec
from rails.callback_auth import callback_signature_valid

KEY = bytes(range(32))


async def _encrypted() -> tuple[EncryptionCodec, Payload]:
    codec = EncryptionCodec({"k1": KEY}, "k1")
    [payload] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')])
    return codec, payload


async def test_an_honest_payload_round_trips() -> None:
    codec, payload = await _encrypted()
    [plain] = await codec.decode([payload])
    assert plain.data == b'"x"'


async def test_a_tampered_payload_is_refused_as_a_value_error() -> None:
    codec, payload = await _encrypted()
    flipped = bytearray(payload.data)
    flipped[-1] ^= 0x01
    payload.data = bytes(flipped)
    with pytest.raises(ValueError, match="fails authentication"):
        await codec.decode([payload])


async def test_an_encrypted_payload_without_a_key_id_is_refused() -> None:
    codec, payload = await _encrypted()
    del payload.metadata[KEY_ID]
    with pytest.raises(ValueError, match="names no key"):
        await codec.decode([payload])


def _signed(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"evt.{timestamp}.".encode() + body, hashlib.sha256)
    return f"v2={digest.hexdigest()}"


def signature_valid(
    secret: str, timestamp: str, signature: str, body: bytes, tolerance: int
) -> bool:
    return callback_signature_valid(
        [secret], "evt", timestamp, signature, body, tolerance_seconds=tolerance, now=time.time()
    )


@pytest.mark.parametrize("timestamp", ["²", "١٢٣", "12 ", "-5", ""])
def test_a_callback_timestamp_that_is_not_ascii_digits_is_invalid(timestamp: str) -> None:
    body = b"{}"
    assert not signature_valid("s", timestamp, _signed("s", timestamp, body), body, 300)


def test_a_fresh_honest_callback_signature_is_valid() -> None:
    now = str(int(time.time()))
    assert signature_valid("s", now, _signed("s", now, b"{}"), b"{}", 300)
