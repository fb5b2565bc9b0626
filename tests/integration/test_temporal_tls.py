"""Every Temporal client of the platform can speak TLS and mTLS (#16 item 2).

The dev server speaks plain gRPC, so a TLS terminator on loopback stands in front of it, as
a load balancer or Temporal's own frontend would in production: it presents a server
certificate from a private CA and requires a client certificate from the same CA. The
platform's `connect` gets through with the settings' CA, client pair and server name; a
client without its certificate, without TLS, or trusting another CA does not."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from kernel.settings import TemporalSettings
from kernel.temporal_client import connect, connect_options
from ops.devstack import Stack
from tests.integration.tls_relay import tls_frontend

SERVER_NAME = "temporal.payments.test"


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(SERVER_NAME), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private CA, the frontend's certificate and a worker's client certificate; and a
    second CA that signed nothing here."""
    folder = tmp_path_factory.mktemp("pki")
    for ca_name in ("ca", "other-ca"):
        ca_key = _key()
        ca_cert = _cert(f"{ca_name} root", ca_key, None, ca=True)
        _write(folder / ca_name, ca_cert, ca_key)
        if ca_name == "ca":
            server_key, client_key = _key(), _key()
            server = _cert(SERVER_NAME, server_key, (ca_cert, ca_key), server=True)
            _write(folder / "server", server, server_key)
            _write(
                folder / "client",
                _cert("payments-worker", client_key, (ca_cert, ca_key)),
                client_key,
            )
    return folder


def settings_for(address: str, pki: Path, **fields: object) -> TemporalSettings:
    values: dict[str, object] = {
        "address": address,
        "tls": True,
        "tls_ca_path": str(pki / "ca.crt"),
        "tls_cert_path": str(pki / "client.crt"),
        "tls_key_path": str(pki / "client.key"),
        "tls_server_name": SERVER_NAME,
    }
    return TemporalSettings().updated({**values, **fields})


async def refused(settings: TemporalSettings) -> None:
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(Client.connect(**connect_options(settings)), timeout=30)


async def test_mtls_gets_through_and_nothing_else_does(stack: Stack, pki: Path) -> None:
    async with tls_frontend(
        pki / "ca.crt", pki / "server.crt", pki / "server.key", stack.settings.temporal.address
    ) as frontend:
        platform = stack.settings.updated(
            {f"temporal.{k}": v for k, v in settings_for(frontend, pki).model_dump().items()}
        )
        client = await connect(platform, wait_seconds=10)
        # a real call through the tunnel: the namespace the workers use answers
        described = await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=platform.temporal.namespace)
        )
        assert described.namespace_info.name == platform.temporal.namespace

        # without the client certificate (TLS only), in clear, or trusting another CA: refused
        await refused(settings_for(frontend, pki, tls_cert_path="", tls_key_path=""))
        await refused(
            settings_for(
                frontend, pki, tls=False, tls_ca_path="", tls_cert_path="", tls_key_path=""
            )
        )
        await refused(settings_for(frontend, pki, tls_ca_path=str(pki / "other-ca.crt")))


def test_half_a_tls_configuration_is_refused_with_the_setting_named(pki: Path) -> None:
    with pytest.raises(SystemExit, match="TLS_CERT_PATH and _KEY_PATH"):
        connect_options(settings_for("127.0.0.1:1", pki, tls_key_path=""))
    with pytest.raises(SystemExit, match="certificates are set but TLS is off"):
        connect_options(settings_for("127.0.0.1:1", pki, tls=False))
    with pytest.raises(SystemExit, match="PAYMENTS_TEMPORAL_TLS_CA_PATH"):
        connect_options(settings_for("127.0.0.1:1", pki, tls_ca_path=str(pki / "missing.crt")))
