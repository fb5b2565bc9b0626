"""docker-compose's Temporal speaks mutual TLS (#16 item 2).

The certificates `deploy/compose/make-secrets.sh` issues, mounted where docker-compose.yml
mounts them and named as its services name them, are put in front of the dev server in a TLS
terminator configured as compose configures Temporal's frontend (its CA for clients, its
certificate, client certificates required). The platform's processes (api, worker) and the
namespace set-up script get through with their compose settings; a client without the
certificate does not. Docker is not needed: the files, the settings and the scripts are the
ones compose uses."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

from kernel.settings import PROJECT_ROOT
from kernel.temporal_client import connect
from ops.devstack import Stack
from tests.integration.tls_relay import tls_frontend

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
MAKE_SECRETS = PROJECT_ROOT / "deploy" / "compose" / "make-secrets.sh"
SETUP_NAMESPACE = PROJECT_ROOT / "deploy" / "compose" / "temporal" / "setup-namespace.sh"
REGISTER = PROJECT_ROOT / "deploy" / "temporal" / "register-search-attributes.sh"
TEMPORAL_CLI = PROJECT_ROOT / ".venv" / "bin" / "temporal"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A compose directory after `sh deploy/compose/make-secrets.sh`."""
    root = tmp_path_factory.mktemp("compose-tls")
    subprocess.run(["sh", str(MAKE_SECRETS), str(root)], check=True, capture_output=True)
    return root


def service(name: str) -> dict[str, Any]:
    services: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services[name]


def env_of(svc: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (svc.get("environment") or {}).items()}


def host_file(svc: dict[str, Any], made: Path, container_path: str) -> Path:
    """The file on this machine that compose mounts at `container_path` in the service."""
    declared = yaml.safe_load(COMPOSE.read_text())["secrets"]
    for item in svc.get("secrets", []):
        source, target = (item, item) if isinstance(item, str) else (item["source"], item["target"])
        path = target if target.startswith("/") else f"/run/secrets/{target}"
        if PurePosixPath(path) == PurePosixPath(container_path):
            return made / str(declared[source]["file"])
    raise AssertionError(f"nothing mounted at {container_path}")


async def cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run a command without blocking the loop the terminator relays on."""
    process = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=180)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_compose_certificates_carry_every_temporal_client_through_mutual_tls(
    stack: Stack, made: Path
) -> None:
    temporal = service("temporal")
    server = env_of(temporal)
    assert server["TEMPORAL_TLS_REQUIRE_CLIENT_AUTH"] == "true"
    server_name = server["TEMPORAL_TLS_FRONTEND_SERVER_NAME"]
    assert server_name == server["TEMPORAL_TLS_INTERNODE_SERVER_NAME"] == "temporal"
    ca = host_file(temporal, made, server["TEMPORAL_TLS_CLIENT1_CA_CERT"])
    assert ca == host_file(temporal, made, server["TEMPORAL_TLS_SERVER_CA_CERT"])
    cert = host_file(temporal, made, server["TEMPORAL_TLS_FRONTEND_CERT"])
    key = host_file(temporal, made, server["TEMPORAL_TLS_FRONTEND_KEY"])
    # internode, the server presents the same certificate to itself
    assert cert == host_file(temporal, made, server["TEMPORAL_TLS_SERVER_CERT"])

    async with tls_frontend(ca, cert, key, stack.settings.temporal.address) as frontend:
        # the platform's processes, with their compose settings
        for name in ("api", "worker"):
            svc = service(name)
            env = env_of(svc)
            assert env["PAYMENTS_TEMPORAL_ADDRESS"] == f"{server_name}:7233", name
            values = {
                "address": frontend,
                "tls": env["PAYMENTS_TEMPORAL_TLS"] == "true",
                "tls_ca_path": str(host_file(svc, made, env["PAYMENTS_TEMPORAL_TLS_CA_PATH"])),
                "tls_cert_path": str(host_file(svc, made, env["PAYMENTS_TEMPORAL_TLS_CERT_PATH"])),
                "tls_key_path": str(host_file(svc, made, env["PAYMENTS_TEMPORAL_TLS_KEY_PATH"])),
                "tls_server_name": env["PAYMENTS_TEMPORAL_TLS_SERVER_NAME"],
            }
            platform = stack.settings.updated({f"temporal.{k}": v for k, v in values.items()})
            client = await connect(platform, wait_seconds=10)
            described = await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=platform.temporal.namespace)
            )
            assert described.namespace_info.name == platform.temporal.namespace, name

        # the namespace set-up as compose runs it: its variables, its files, its scripts
        setup = service("temporal-namespace")
        env = env_of(setup)
        namespace = f"compose-tls-{uuid.uuid4().hex[:8]}"
        script_env = {
            "PATH": f"{TEMPORAL_CLI.parent}:{os.environ['PATH']}",
            "HOME": os.environ.get("HOME", "/tmp"),
            "TEMPORAL_ADDRESS": frontend,
            "TEMPORAL_NAMESPACE": namespace,
            "NAMESPACE_RETENTION": env["NAMESPACE_RETENTION"],
            "TEMPORAL_TLS_SERVER_NAME": env["TEMPORAL_TLS_SERVER_NAME"],
            "REGISTER_SCRIPT": str(REGISTER),
        }
        for variable in (
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
            "TEMPORAL_TLS_CLIENT_CERT_PATH",
            "TEMPORAL_TLS_CLIENT_KEY_PATH",
        ):
            script_env[variable] = str(host_file(setup, made, env[variable]))
        code, output = await cli("sh", str(SETUP_NAMESPACE), env=script_env)
        assert code == 0, output
        attributes = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        assert {"PaymentStatus", "TenantId", "BatchId"} <= set(attributes.custom_attributes)

        # the Web UI names the same files and server
        ui = service("temporal-ui")
        ui_env = env_of(ui)
        assert ui_env["TEMPORAL_TLS_SERVER_NAME"] == server_name
        assert ui_env["TEMPORAL_TLS_ENABLE_HOST_VERIFICATION"] == "true"
        assert host_file(ui, made, ui_env["TEMPORAL_TLS_CA"]) == ca
        assert host_file(ui, made, ui_env["TEMPORAL_TLS_CERT"]).name == "temporal_client.crt"
        assert host_file(ui, made, ui_env["TEMPORAL_TLS_KEY"]).name == "temporal_client.key"

        # the same health check with the client certificate answers; without it, refused
        health = [
            str(TEMPORAL_CLI), "operator", "cluster", "health", "--address", frontend,
            "--tls", "--tls-ca-path", str(ca), "--tls-server-name", server_name,
            "--command-timeout", "10s",
        ]  # fmt: skip
        plain_env = {"PATH": os.environ["PATH"], "HOME": script_env["HOME"]}
        client_pair = [
            "--tls-cert-path", script_env["TEMPORAL_TLS_CLIENT_CERT_PATH"],
            "--tls-key-path", script_env["TEMPORAL_TLS_CLIENT_KEY_PATH"],
        ]  # fmt: skip
        code, output = await cli(*health, *client_pair, env=plain_env)
        assert code == 0, output
        code, output = await cli(*health, env=plain_env)
        assert code != 0, output
        assert "certificate" in output.lower() or "tls" in output.lower(), output
