"""A webhook delivery's HTTP against hostile receivers on loopback: gzip bombs, redirects,
a host name that must not be resolved again (the connection goes to the vetted address), and
TLS that still checks the certificate of the URL's host.
"""

from __future__ import annotations

import socket
import ssl
import tempfile
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from activities.webhook_http import MAX_RESPONSE_BYTES, post_to_target, webhook_client
from kernel.settings import Settings
from services.outbound_guard import OutboundTarget
from tests.loopback_http import http_answer, serving


def gzip_bomb(expanded_bytes: int) -> bytes:
    """Gzip of `expanded_bytes` zeros (200 MiB compress to about 200 KiB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1024 * 1024)
    parts = [packer.compress(block) for _ in range(expanded_bytes // len(block))]
    return b"".join([*parts, packer.flush()])


def loopback_target(port: int, host: str = "127.0.0.1") -> OutboundTarget:
    return OutboundTarget("http", host, port, "/hooks", "127.0.0.1")


SETTINGS = Settings().updated(
    {"webhooks.connect_timeout_seconds": 5.0, "webhooks.read_timeout_seconds": 5.0}
)
EVENT = b'{"id":"evt_1"}'


async def test_a_gzip_bomb_is_read_to_64_kib_and_never_decompressed() -> None:
    bomb = gzip_bomb(200 * 1024 * 1024)
    assert len(bomb) > 3 * MAX_RESPONSE_BYTES
    answer = http_answer("200 OK", {"Content-Encoding": "gzip"}, bomb)
    async with serving(answer) as server, webhook_client(SETTINGS) as http:
        received = await post_to_target(http, loopback_target(server.port), EVENT, {})
    assert received.status == 200
    # exactly the first 64 KiB of the compressed bytes: capped, and not inflated
    assert received.body == bomb[:MAX_RESPONSE_BYTES]
    assert server.header(0, b"accept-encoding") == b"identity"
    assert server.requests[0][1] == EVENT


async def test_a_short_gzip_answer_is_kept_as_sent() -> None:
    small = gzip_bomb(1024 * 1024)
    answer = http_answer("200 OK", {"Content-Encoding": "gzip"}, small)
    async with serving(answer) as server, webhook_client(SETTINGS) as http:
        received = await post_to_target(http, loopback_target(server.port), EVENT, {})
    assert received.body == small


async def test_a_redirect_is_not_followed() -> None:
    async with serving(http_answer("200 OK", {})) as inside:
        location = f"http://127.0.0.1:{inside.port}/admin"
        redirect = http_answer("307 Temporary Redirect", {"Location": location})
        async with serving(redirect) as server, webhook_client(SETTINGS) as http:
            received = await post_to_target(http, loopback_target(server.port), EVENT, {})
    assert received.status == 307
    assert len(server.requests) == 1
    assert inside.requests == []


async def test_the_connection_goes_to_the_vetted_address_with_the_url_host_in_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # any lookup of a name (not a numeric address) at send time would be a second
    # resolution, which a DNS rebind could answer differently
    looked_up: list[str] = []
    real_getaddrinfo: Callable[..., Any] = socket.getaddrinfo

    def numeric_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.replace(".", "").isdigit() or ":" in name:
            return real_getaddrinfo(host, *args, **kwargs)
        looked_up.append(name)
        raise socket.gaierror(socket.EAI_NONAME, "resolution refused by the test")

    monkeypatch.setattr(socket, "getaddrinfo", numeric_only)
    answer = http_answer("204 No Content", {})
    async with serving(answer) as server, webhook_client(SETTINGS) as http:
        target = loopback_target(server.port, host="hooks.partner.invalid")
        received = await post_to_target(
            http, target, EVENT, {"webhook-id": "evt_1", "content-type": "application/json"}
        )
    assert received.status == 204
    assert looked_up == []
    assert server.header(0, b"host") == f"hooks.partner.invalid:{server.port}".encode()
    assert server.header(0, b"webhook-id") == b"evt_1"
    assert server.requests[0][0].startswith(b"POST /hooks HTTP/1.1\r\n")


def tls_pair(host: str) -> tuple[ssl.SSLContext, ssl.SSLContext, list[str | None]]:
    """A server context with a certificate for `host` from a throwaway CA, a client context
    trusting only that CA, and the list the server records each TLS server name (SNI) in."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test webhook CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    with tempfile.TemporaryDirectory() as folder:
        chain = Path(folder) / "chain.pem"
        chain.write_bytes(
            leaf.public_bytes(pem)
            + key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server.load_cert_chain(chain)
    names: list[str | None] = []
    server.sni_callback = lambda _socket, name, _context: names.append(name)
    client = ssl.create_default_context(cadata=ca.public_bytes(pem).decode())
    return server, client, names


async def test_https_goes_to_the_vetted_address_and_checks_the_certificate_of_the_url_host() -> (
    None
):
    server_tls, client_tls, server_names = tls_pair("hooks.partner.invalid")
    answer = http_answer("200 OK", {})
    async with (
        serving(answer, ssl_context=server_tls) as server,
        webhook_client(SETTINGS, verify=client_tls) as http,
    ):
        target = OutboundTarget("https", "hooks.partner.invalid", server.port, "/h", "127.0.0.1")
        received = await post_to_target(http, target, EVENT, {})
        assert received.status == 200
        assert server_names == ["hooks.partner.invalid"]
        assert server.header(0, b"host") == f"hooks.partner.invalid:{server.port}".encode()
        # the same address under another name: its certificate does not match, no request
        other = OutboundTarget("https", "other.partner.invalid", server.port, "/h", "127.0.0.1")
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await post_to_target(http, other, EVENT, {})
    assert len(server.requests) == 1


async def test_the_next_vetted_address_is_tried_when_one_refuses_the_connection() -> None:
    async with serving(http_answer("200 OK", {})) as server, webhook_client(SETTINGS) as http:
        # 127.0.0.2 is loopback too, but nothing listens there on this port
        target = OutboundTarget(
            "http", "hooks.partner.invalid", server.port, "/h", "127.0.0.2", ("127.0.0.1",)
        )
        received = await post_to_target(http, target, EVENT, {})
        assert received.status == 200
        assert len(server.requests) == 1
        # with no other address, the refusal is the answer
        alone = OutboundTarget("http", "hooks.partner.invalid", server.port, "/h", "127.0.0.2")
        with pytest.raises(httpx.ConnectError):
            await post_to_target(http, alone, EVENT, {})
        assert len(server.requests) == 1
