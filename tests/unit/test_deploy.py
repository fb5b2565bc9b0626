"""Static checks of the deployment files (no Docker engine or cluster needed).

Dockerfile, docker-compose.yml, deploy/k8s, deploy/prometheus and deploy/grafana are checked
against the code they run: the settings it reads, the routes it serves, the entry points it
has and the shutdown timeout of its workers.
"""

from __future__ import annotations

import ipaddress
import json
import re
import stat
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]
from fastapi import FastAPI

from api.app import create_app as create_api
from banksim.app import create_app as create_banksim
from kernel.environment import Uses, production_problems
from kernel.settings import (
    PROJECT_ROOT,
    SECRET_PATHS,
    SECRETS_DIR,
    Settings,
    TemporalSettings,
    WorkerSettings,
    setting_paths,
)
from services.outbound_guard import address_allowed
from workflows.models import PaymentStatus
from workflows.queues import ROLES, Role, queue_for

ROOT = PROJECT_ROOT
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
K8S_DIR = ROOT / "deploy" / "k8s"
# the overlay for clusters without KEDA: a sibling of the base (kustomize refuses an overlay
# inside the base it loads)
NO_KEDA_DIR = ROOT / "deploy" / "k8s-without-keda"
K8S_DIRS = (K8S_DIR, NO_KEDA_DIR)
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
OWN_IMAGE = "payments-platform"

ENV_PREFIX = "PAYMENTS_"
# a setting is named here by its environment variable without the prefix, lower case
PATHS = {name.removeprefix(ENV_PREFIX).lower(): path for name, path in setting_paths().items()}
FIELDS = set(PATHS)

# What each process reads from the settings and cannot take from the defaults in a container
# (the defaults are loopback addresses and paths of the dev stack). Read off the code:
# api/app.py + routers (database, Temporal client, callbacks' HMAC, sanctions matcher),
# workers/ + activities/ (database, Temporal, the bank, sanctions, metrics endpoint),
# banksim/ (its own store under data_dir, where and how it calls back), ops/cli.py.
NEEDS: dict[str, set[str]] = {
    "api": {
        "database_url",
        "temporal_address",
        "temporal_namespace",
        "task_queue",
        "api_host",
        "api_port",
        "api_internal_host",
        "api_internal_port",
        "sanctions_dir",
        "rail_callback_secret",
    },
    "worker": {
        "database_url",
        "temporal_address",
        "temporal_namespace",
        "task_queue",
        "rail_bank_url",
        "sanctions_dir",
        "worker_metrics_host",
        "worker_metrics_port",
    },
    "banksim": {
        "banksim_host",
        "banksim_port",
        "banksim_callback_url",
        "rail_callback_secret",
        "data_dir",
    },
    "migrate": {"database_url"},
}
# the secrets each process checks before it starts (its __main__'s require_safe_secrets), as
# the variables that hold them; with NEEDS, exactly what its container is given
USES: dict[str, set[Uses]] = {
    "api": {Uses.TEMPORAL, Uses.RAIL_CALLBACKS, Uses.CODEC_SERVER, Uses.WEBHOOKS, Uses.REVIEWS},
    # every worker checks the bank-submission secret, whichever queues it polls
    "worker": {Uses.TEMPORAL, Uses.WEBHOOKS, Uses.BANK_SUBMISSIONS, Uses.REVIEWS},
    "banksim": {Uses.RAIL_CALLBACKS, Uses.BANK_SUBMISSIONS},
    "migrate": set(),
}
SECRET_VARIABLES: dict[Uses, set[str]] = {
    Uses.TEMPORAL: {"PAYMENTS_PAYLOAD_KEYS", "PAYMENTS_PAYLOAD_KEY_ID"},
    Uses.RAIL_CALLBACKS: {"PAYMENTS_RAIL_CALLBACK_SECRET"},
    Uses.BANK_SUBMISSIONS: {"PAYMENTS_RAIL_SUBMISSION_SECRET"},
    Uses.REVIEWS: {"PAYMENTS_REVIEW_TOKEN_SECRETS"},
    Uses.CODEC_SERVER: set(),
    Uses.WEBHOOKS: set(),
}
SECRET_SETTINGS = {name for name, path in setting_paths().items() if path in SECRET_PATHS}
# the payload key's id is not secret, but travels with the keys (it names one of them)
FILE_SETTINGS = SECRET_SETTINGS | {"PAYMENTS_PAYLOAD_KEY_ID"}
MAKE_SECRETS = ROOT / "deploy" / "compose" / "make-secrets.sh"
# the roles that listen must bind every interface in a container, not 127.0.0.1
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
BIND_ALL = {"api": "api_host", "worker": "worker_metrics_host", "banksim": "banksim_host"}


# --- helpers ---------------------------------------------------------------------------------


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def field_of(name: str) -> str:
    return name.removeprefix(ENV_PREFIX).lower()


_INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def _interpolated(match: re.Match[str]) -> str:
    name, operator, default = match.groups()
    if operator and "?" in operator:
        # `${VAR:?message}`: the user's .env must give it; a stand-in of the right shape
        return f"from-env-{name.lower()}-0123456789abcdef0123456789"
    return default or ""


def interpolate(value: str) -> str:
    """Compose's `${VAR:-default}` with an empty environment: the default (and a stand-in
    for a required `${VAR:?…}`)."""
    return _INTERPOLATION.sub(_interpolated, value)


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    result = load_compose()["services"]
    assert isinstance(result, dict)
    return result


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): interpolate(str(v)) for k, v in env.items()}


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def role_of(command: list[str]) -> str | None:
    """Which platform process a command starts (None: not ours)."""
    if command[:2] == ["python", "-m"] and len(command) > 2:
        return {"api": "api", "workers": "worker", "banksim": "banksim"}.get(command[2])
    if command[:3] == ["payments", "db", "upgrade"]:
        return "migrate"
    return None


def app_services() -> dict[str, tuple[str, dict[str, Any]]]:
    """Compose services running our image: name -> (role, service)."""
    result = {}
    for name, service in services().items():
        if str(service.get("image", "")).startswith(OWN_IMAGE + ":"):
            role = role_of(command_of(service))
            assert role is not None, f"{name} runs our image with an unknown command"
            result[name] = (role, service)
    return result


def k8s_docs() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(p for d in K8S_DIRS for p in d.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                assert isinstance(doc, dict) and "kind" in doc, path
                docs.append(doc)
    return docs


def k8s_of(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in k8s_docs() if doc["kind"] == kind]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def containers(workload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = pod_spec(workload)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def config_maps() -> dict[str, dict[str, str]]:
    return {doc["metadata"]["name"]: doc.get("data", {}) for doc in k8s_of("ConfigMap")}


def secret_keys() -> dict[str, set[str]]:
    """Keys of the Secrets the manifests expect (documented in secret.example.yaml)."""
    return {
        doc["metadata"]["name"]: set(doc.get("stringData", {})) | set(doc.get("data", {}))
        for doc in k8s_of("Secret")
    }


def secret_files(workload: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """Settings the container reads from mounted Secret files: variable -> Secret key."""
    volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
    secrets = secret_keys()
    files: dict[str, str] = {}
    for mount in container.get("volumeMounts", []):
        secret = volumes[mount["name"]].get("secret")
        if secret is None:
            continue
        # where kernel/settings.py reads them, and only there
        assert PurePosixPath(mount["mountPath"]) == PurePosixPath(SECRETS_DIR), mount
        assert mount.get("readOnly") is True and "subPath" not in mount, mount
        for item in secret["items"]:
            assert item["key"] in secrets[secret["secretName"]], f"unknown secret key {item}"
            files[item["path"]] = item["key"]
    return files


def k8s_env(workload: dict[str, Any], container: dict[str, Any]) -> dict[str, str | None]:
    """The settings the container is given: literal values, ConfigMap values; None for the
    secrets, mounted as files."""
    env: dict[str, str | None] = {}
    maps = config_maps()
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}, f"only ConfigMaps feed the environment: {source}"
        name = source["configMapRef"]["name"]
        assert name in maps, f"envFrom references a missing ConfigMap {name}"
        env.update(maps[name])
    for item in container.get("env", []):
        assert "value" in item, f"{item['name']}: a literal value, never a secretKeyRef"
        env[item["name"]] = str(item["value"])
    for variable in secret_files(workload, container):
        assert variable not in env, f"{variable} given twice"
        env[variable] = None
    return env


def compose_secret_files(service: dict[str, Any]) -> dict[str, str]:
    """Secrets compose mounts in the service: path in the container -> file on the host."""
    declared = load_compose()["secrets"]
    files = {}
    for item in service.get("secrets", []):
        source, target = (item, item) if isinstance(item, str) else (item["source"], item["target"])
        path = target if target.startswith("/") else f"/run/secrets/{target}"
        files[path] = declared[source]["file"]
    return files


def compose_settings(service: dict[str, Any], made: Path) -> dict[str, str]:
    """The settings compose gives the service: its environment and, from the secrets that
    make-secrets.sh made in `made`, the files mounted where kernel/settings.py reads them."""
    env = compose_env(service)
    for path, host_file in compose_secret_files(service).items():
        target = PurePosixPath(path)
        if target.parent == PurePosixPath(SECRETS_DIR) and target.name.startswith(ENV_PREFIX):
            assert target.name not in env, f"{target.name} given twice"
            env[target.name] = (made / host_file).read_text()
    return env


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A compose directory after `sh deploy/compose/make-secrets.sh` (as docs/compose.md
    says), run twice: the second run keeps every secret."""
    root = tmp_path_factory.mktemp("compose")
    subprocess.run(["sh", str(MAKE_SECRETS), str(root)], check=True, capture_output=True)
    first = {p.name: p.read_text() for p in (root / "secrets").iterdir()}
    subprocess.run(["sh", str(MAKE_SECRETS), str(root)], check=True, capture_output=True)
    assert {p.name: p.read_text() for p in (root / "secrets").iterdir()} == first
    return root


def validate_settings(env: dict[str, str] | dict[str, str | None]) -> Settings:
    """The values parse as the settings' types (secrets, None here, keep their defaults). A
    container has no `make dev` marker: unless the values say otherwise it is production,
    whatever this checkout's .data/dev.env says."""
    values = {
        PATHS[field_of(k)]: v for k, v in env.items() if v is not None and k.startswith(ENV_PREFIX)
    }
    return Settings().updated({"env": "production", **values})


def route_paths(app: FastAPI) -> set[str]:
    """Every path the app answers, including routes left out of the OpenAPI schema."""
    paths: set[str] = set()

    def walk(routes: Any, prefix: str) -> None:
        for route in routes:
            path = getattr(route, "path", None)
            if isinstance(path, str):
                paths.add(prefix + path)
            included = getattr(route, "original_router", None)
            if included is not None:
                context = getattr(route, "include_context", None)
                walk(included.routes, prefix + str(getattr(context, "prefix", "") or ""))

    walk(app.routes, "")
    paths.update(app.openapi()["paths"])
    return paths


def routes_of(role: str) -> set[str]:
    settings = Settings.model_validate({})
    if role == "api":
        return route_paths(create_api(settings))
    if role == "banksim":
        return route_paths(create_banksim(settings))
    if role == "worker":  # the Temporal SDK's Prometheus endpoint
        return {"/metrics"}
    return set()


def port_setting(role: str) -> str:
    return {"api": "api_port", "banksim": "banksim_port", "worker": "worker_metrics_port"}[role]


def metrics_port_setting(role: str) -> str:
    """Where Prometheus scrapes a role: the API's internal listener (api/listeners.py)."""
    return "api_internal_port" if role == "api" else port_setting(role)


def image_is_pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag or "$" in image:
        return False
    return tag != "latest" and re.search(r"\d+\.\d+", tag) is not None


def graceful_shutdown_seconds() -> float:
    """The worker's `graceful_shutdown_timeout`, as the worker itself configures it."""
    from workers.payments_worker import GRACEFUL_SHUTDOWN

    source = (ROOT / "workers" / "payments_worker.py").read_text()
    assert "graceful_shutdown_timeout=GRACEFUL_SHUTDOWN" in source
    return GRACEFUL_SHUTDOWN.total_seconds()


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    result = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def module_exists(module: str) -> bool:
    return (ROOT / module / "__main__.py").is_file()


def http_url_in(command: list[str]) -> str:
    urls: list[str] = [m for part in command for m in re.findall(r"http://[^\s'\"]+", part)]
    assert len(urls) == 1, command
    return urls[0]


# --- compose ---------------------------------------------------------------------------------


def test_compose_parses_with_every_component_of_the_issue() -> None:
    names = set(services())
    assert {
        "postgres",
        "temporal-schema",
        "temporal",
        "temporal-namespace",
        "temporal-ui",
        "migrate",
        "api",
        "worker",
        "banksim",
        "prometheus",
        "grafana",
    } <= names
    roles = {role for role, _ in app_services().values()}
    assert roles == {"api", "worker", "banksim", "migrate"}
    # `--scale worker=N` needs no fixed container name and no fixed host port
    worker = services()["worker"]
    assert "container_name" not in worker and "ports" not in worker


def test_every_image_is_pinned() -> None:
    images = [str(s["image"]) for s in services().values()]
    for workload in k8s_of("Deployment") + k8s_of("Job"):
        images += [c["image"] for c in containers(workload)]
    images += [rest.split()[0] for keyword, rest in dockerfile_instructions() if keyword == "FROM"]
    assert images
    unpinned = [image for image in images if not image_is_pinned(image)]
    assert not unpinned, f"images without a pinned version tag: {unpinned}"
    own = {image for image in images if image.split(":")[0] == OWN_IMAGE}
    assert own == {f"{OWN_IMAGE}:{VERSION}"}, "our image is tagged with the project version"
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    assert [i["newTag"] for i in kustomization["images"] if i["name"] == OWN_IMAGE] == [VERSION]


def test_every_payments_variable_is_a_settings_field() -> None:
    texts = [COMPOSE_FILE.read_text(), DOCKERFILE.read_text()]
    texts += [path.read_text() for d in K8S_DIRS for path in sorted(d.rglob("*.yaml"))]
    texts += [path.read_text() for path in sorted((ROOT / "deploy" / "compose").rglob("*.*"))]
    mentioned = {name for text in texts for name in re.findall(r"\bPAYMENTS_[A-Z0-9_]+", text)}
    assert len(mentioned) > 10
    unknown = {name for name in mentioned if field_of(name) not in FIELDS}
    assert not unknown, f"not settings fields (kernel/settings.py): {sorted(unknown)}"


def test_each_compose_service_gets_the_settings_it_needs(made: Path) -> None:
    by_role: dict[str, dict[str, str]] = {}
    for name, (role, service) in app_services().items():
        env = compose_settings(service, made)
        missing = {env_name(f) for f in NEEDS[role]} - set(env)
        assert not missing, f"{name} lacks {sorted(missing)}"
        if role in BIND_ALL:
            assert env[env_name(BIND_ALL[role])] == ALL_INTERFACES
        # the values parse as the settings' types
        validate_settings(env)
        by_role[role] = env
    compose = services()

    # each address names a compose service and the port that service really listens on
    db = urlsplit(by_role["api"][env_name("database_url")])
    assert db.hostname in compose and db.path == "/payments"
    assert by_role["migrate"][env_name("database_url")] == by_role["api"][env_name("database_url")]
    for role in ("api", "worker"):
        host, port = by_role[role][env_name("temporal_address")].split(":")
        assert host in compose and port == "7233", host
        assert "7233" in " ".join(compose[host]["healthcheck"]["test"]), host
    bank = urlsplit(by_role["worker"][env_name("rail_bank_url")])
    assert bank.hostname in compose and bank.hostname in app_services()
    assert str(bank.port) == by_role["banksim"][env_name("banksim_port")]
    callback = urlsplit(by_role["banksim"][env_name("banksim_callback_url")])
    assert callback.hostname in compose and app_services()[callback.hostname][0] == "api"
    # the bank calls back on the API's internal listener, which is not published
    assert str(callback.port) == by_role["api"][env_name("api_internal_port")]
    assert by_role["api"][env_name("api_internal_port")] != by_role["api"][env_name("api_port")]
    assert by_role["api"][env_name("api_internal_host")] == ALL_INTERFACES
    assert callback.path in routes_of("api"), "the bank calls back a route the API serves"

    # shared values agree across processes
    for field in ("temporal_namespace", "task_queue", "sanctions_dir"):
        assert by_role["api"][env_name(field)] == by_role["worker"][env_name(field)], field
    secret = env_name("rail_callback_secret")
    assert by_role["api"][secret] == by_role["banksim"][secret]
    assert (
        by_role["worker"][env_name("task_queue")]
        == TemporalSettings.model_fields["task_queue"].default
    )
    namespace = compose_env(compose["temporal-namespace"])["TEMPORAL_NAMESPACE"]
    assert by_role["api"][env_name("temporal_namespace")] == namespace

    # the sanctions lists are mounted where PAYMENTS_SANCTIONS_DIR points
    for name, (role, service) in app_services().items():
        if "sanctions_dir" in NEEDS[role]:
            targets = [v["target"] for v in service.get("volumes", []) if isinstance(v, dict)]
            assert compose_env(service)[env_name("sanctions_dir")] in targets, name


def test_compose_healthchecks_and_ports_point_at_real_endpoints() -> None:
    for name, (role, service) in app_services().items():
        if role == "migrate":
            assert service["healthcheck"] == {"disable": True}
            continue
        url = urlsplit(http_url_in(command_of({"command": service["healthcheck"]["test"]})))
        env = compose_env(service)
        assert str(url.port) == env[env_name(port_setting(role))], name
        assert url.path in routes_of(role), f"{name} probes {url.path}, which is not served"
        for mapping in service.get("ports", []):
            assert str(mapping).split(":")[-1] == env[env_name(port_setting(role))], name
    worker_env = compose_env(services()["worker"])
    assert int(worker_env[env_name("worker_metrics_port")]) == (
        WorkerSettings.model_fields["metrics_port"].default
    )
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    worker_sd = jobs["payments-worker"]["dns_sd_configs"][0]
    assert worker_sd["names"] == ["worker"]
    assert str(worker_sd["port"]) == worker_env[env_name("worker_metrics_port")]
    api_env = compose_env(services()["api"])
    internal = api_env[env_name("api_internal_port")]
    assert jobs["payments-api"]["static_configs"][0]["targets"] == [f"api:{internal}"]
    assert "/metrics" in routes_of("api")


def test_depends_on_forms_a_dag_that_ends_at_healthy_infrastructure() -> None:
    compose = services()
    image_has_healthcheck = any(k == "HEALTHCHECK" for k, _ in dockerfile_instructions())

    def has_healthcheck(service: dict[str, Any]) -> bool:
        check = service.get("healthcheck")
        if check is not None:
            return not check.get("disable", False)
        return str(service.get("image", "")).startswith(OWN_IMAGE) and image_has_healthcheck

    def one_shot(service: dict[str, Any]) -> bool:
        return str(service.get("restart", "no")).startswith(("no", "on-failure"))

    edges: dict[str, set[str]] = {}
    for name, service in compose.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        edges[name] = set(depends)
        for target, spec in depends.items():
            assert target in compose, f"{name} depends on unknown {target}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert has_healthcheck(compose[target]), f"{target} has no healthcheck"
            else:
                assert condition == "service_completed_successfully", (name, target)
                assert one_shot(compose[target]), f"{target} is not a one-shot service"
        if not one_shot(service):
            assert has_healthcheck(service), f"{name} runs without a healthcheck"

    # topological order exists (no cycle)
    order: list[str] = []
    remaining = dict(edges)
    while remaining:
        ready = sorted(n for n, deps in remaining.items() if deps <= set(order))
        assert ready, f"dependency cycle among {sorted(remaining)}"
        order += ready
        for n in ready:
            del remaining[n]

    def closure(name: str) -> set[str]:
        seen: set[str] = set()
        stack = [name]
        while stack:
            for dep in edges[stack.pop()]:
                if dep not in seen:
                    seen.add(dep)
                    stack.append(dep)
        return seen

    for name in ("api", "worker"):
        assert {"postgres", "temporal", "temporal-namespace", "migrate"} <= closure(name)
    for name, deps in edges.items():
        if not deps:  # every root is infrastructure that reports its own health
            assert has_healthcheck(compose[name]), name


def test_temporal_runs_on_postgresql_with_schema_namespace_and_search_attributes() -> None:
    compose = services()
    temporal = compose["temporal"]
    env = compose_env(temporal)
    assert env["DB"] == "postgres12" and env["POSTGRES_SEEDS"] in compose
    assert "start-dev" not in " ".join(command_of(temporal))
    assert temporal["depends_on"]["temporal-schema"]["condition"] == (
        "service_completed_successfully"
    )
    dynamic = env["DYNAMIC_CONFIG_FILE_PATH"].rsplit("/", 1)[-1]
    assert (ROOT / "deploy/compose/temporal/dynamicconfig" / dynamic).is_file()
    for name in ("temporal-schema", "temporal-namespace"):
        service = compose[name]
        script = command_of(service)[-1]
        mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in service.get("volumes", [])}
        mount = next(m for m in mounts if script.startswith(m + "/"))
        host_path = ROOT / mounts[mount] / script.removeprefix(mount + "/")
        assert host_path.is_file(), script
        text = host_path.read_text()
        if name == "temporal-namespace":
            register = re.search(r"(/deploy/temporal/register-search-attributes\.sh)", text)
            assert register is not None and "/deploy/temporal" in mounts
            assert (ROOT / "deploy/temporal/register-search-attributes.sh").is_file()
        else:
            assert "setup-schema" in text and "update-schema" in text
    init = compose["postgres"]["volumes"][1].split(":")[0]
    init_sql = (ROOT / init).read_text()
    for database in ("payments", "temporal", "temporal_visibility"):
        assert f"CREATE DATABASE {database} " in init_sql
    # the Web UI sends payloads to the codec server: the API's published port, /codec
    ui = compose_env(compose["temporal-ui"])
    codec = urlsplit(ui["TEMPORAL_CODEC_ENDPOINT"])
    assert codec.path == "/codec" and f"{codec.port}:8000" in compose["api"]["ports"]
    api_env = compose_env(compose["api"])
    assert api_env[env_name("temporal_ui_origin")] == ui["TEMPORAL_CORS_ORIGINS"]


# --- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_non_root_with_healthcheck_and_real_entry_points() -> None:
    instructions = dockerfile_instructions()
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(froms) >= 2
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    final_stage = instructions[[k for k, _ in instructions].index("FROM", 1) :]
    assert any(k == "USER" for k, _ in final_stage), "the runtime stage drops root"
    healthcheck = [rest for keyword, rest in instructions if keyword == "HEALTHCHECK"]
    assert len(healthcheck) == 1 and "/healthz" in healthcheck[0]
    assert "/healthz" in routes_of("api")
    cmd = json.loads(next(rest for keyword, rest in instructions if keyword == "CMD"))
    assert role_of(cmd) == "api" and module_exists("api")
    # ENV defaults of the image are settings too, and bind every interface
    env_lines = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    image_env = dict(re.findall(r"(PAYMENTS_[A-Z_]+)=(\S+)", env_lines))
    assert {field_of(k) for k in image_env} <= FIELDS
    for field in BIND_ALL.values():
        assert image_env[env_name(field)] == ALL_INTERFACES
    # every package of the project is copied into the image
    packages = {
        p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = {rest.split()[0].rstrip("/") for k, rest in instructions if k == "COPY"}
    assert packages <= copied, f"not copied: {sorted(packages - copied)}"
    # the dev-only binaries left out of the image are still the names pyproject uses
    deps = {re.split(r"[=\[<>]", d)[0] for d in PYPROJECT["project"]["dependencies"]}
    skipped = re.search(r"dev_only = \{([^}]*)\}", DOCKERFILE.read_text())
    assert skipped is not None
    assert set(re.findall(r"'([\w-]+)'", skipped.group(1))) <= deps


def test_every_command_in_compose_and_k8s_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    import ops.cli
    import ops.migrate

    applied: list[bool] = []
    monkeypatch.setattr(ops.migrate, "upgrade", lambda: applied.append(True))
    commands = [command_of(s) for _, s in app_services().values()]
    for workload in k8s_of("Deployment") + k8s_of("Job"):
        commands += [c["command"] + c.get("args", []) for c in containers(workload)]
    assert len(commands) >= 7
    for command in commands:
        role = role_of(command)
        assert role is not None, command
        if command[0] == "python":
            assert module_exists(command[2]), command
        else:
            assert PYPROJECT["project"]["scripts"][command[0]] == "ops.cli:main"
            applied.clear()
            assert ops.cli.main(command[1:]) == 0 and applied == [True]


# --- Kubernetes ------------------------------------------------------------------------------


def test_k8s_manifests_parse_and_every_deployment_is_complete() -> None:
    docs = k8s_docs()
    kinds = {doc["kind"] for doc in docs}
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "Job"} <= kinds
    assert {"ScaledObject", "HorizontalPodAutoscaler", "Secret"} <= kinds
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (K8S_DIR / resource).is_file(), resource
    assert "secret.example.yaml" not in kustomization["resources"], "no secrets in git"
    pdbs = k8s_of("PodDisruptionBudget")
    services_ = k8s_of("Service")
    roles = set()
    for deployment in k8s_of("Deployment"):
        name = deployment["metadata"]["name"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        matching = [
            pdb for pdb in pdbs if pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(matching) == 1, f"{name} needs exactly one PodDisruptionBudget"
        assert any(svc["spec"]["selector"].items() <= labels.items() for svc in services_), (
            f"{name} has no Service"
        )
        spec = pod_spec(deployment)
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in spec["containers"]:
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), f"{name}: {kind}"
            role = role_of(container["command"])
            assert role in {"api", "worker", "banksim"}, name
            roles.add(role)
            env = k8s_env(deployment, container)
            missing = {env_name(f) for f in NEEDS[role]} - set(env)
            assert not missing, f"{name} lacks {sorted(missing)}"
            assert env[env_name(BIND_ALL[role])] == ALL_INTERFACES
            validate_settings(env)
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                get = container[probe]["httpGet"]
                assert get["path"] in routes_of(role), f"{name} {probe} {get['path']}"
                assert str(ports[get["port"]]) == env[env_name(port_setting(role))]
            annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
            if annotations.get("prometheus.io/scrape") == "true":
                assert (
                    annotations["prometheus.io/port"] == env[env_name(metrics_port_setting(role))]
                )
                assert annotations["prometheus.io/path"] in routes_of(role)
    assert roles == {"api", "worker", "banksim"}
    if any(role_of(c["command"]) == "api" for d in k8s_of("Deployment") for c in containers(d)):
        assert "/readyz" in routes_of("api") and "/healthz" in routes_of("api")


def worker_deployments() -> list[dict[str, Any]]:
    return [
        d
        for d in k8s_of("Deployment")
        if any(role_of(c["command"]) == "worker" for c in containers(d))
    ]


def test_worker_grace_period_exceeds_the_graceful_shutdown() -> None:
    drain = graceful_shutdown_seconds()
    assert drain > 0
    workers = worker_deployments()
    assert workers
    for deployment in workers:
        assert pod_spec(deployment)["terminationGracePeriodSeconds"] > drain
    grace = services()["worker"]["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) > drain


def test_keda_scales_each_worker_deployment_on_its_task_queue_with_cpu_fallback() -> None:
    config = next(iter(config_maps().values()))
    default_queue = TemporalSettings.model_fields["task_queue"].default
    scaled = {so["spec"]["scaleTargetRef"]["name"]: so for so in k8s_of("ScaledObject")}
    roles_deployed: set[str] = set()
    for deployment in worker_deployments():
        name = deployment["metadata"]["name"]
        assert name in scaled, f"{name} has no ScaledObject"
        spec = scaled[name]["spec"]
        (container,) = pod_spec(deployment)["containers"]
        env = k8s_env(deployment, container)
        assert env[env_name("task_queue")] == default_queue
        role = env[env_name("worker_queues")]
        assert role is not None
        roles_deployed.add(role)
        temporal = [t for t in spec["triggers"] if t["type"] == "temporal"]
        assert len(temporal) == 1
        meta = temporal[0]["metadata"]
        # the queue KEDA watches is the queue this Deployment's workers poll
        assert meta["taskQueue"] == queue_for(default_queue, cast(Role, role))
        assert meta["namespace"] == config[env_name("temporal_namespace")]
        assert meta["endpoint"] == config[env_name("temporal_address")]
        assert int(meta["targetQueueSize"]) > 0
        assert any(t["type"] == "cpu" for t in spec["triggers"]), "CPU as second signal"
        assert spec["fallback"]["replicas"] >= spec["minReplicaCount"] >= 1
        assert spec["maxReplicaCount"] > spec["minReplicaCount"]
    assert set(scaled) == {d["metadata"]["name"] for d in worker_deployments()}
    assert roles_deployed == set(ROLES)  # one Deployment per task queue
    # without KEDA, a CPU HPA takes each Deployment a ScaledObject scaled, and the overlay
    # deletes every ScaledObject (the kind does not exist on such a cluster)
    hpas = k8s_of("HorizontalPodAutoscaler")
    assert {hpa["spec"]["scaleTargetRef"]["name"] for hpa in hpas} == set(scaled)
    assert all(hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu" for hpa in hpas)
    without = yaml.safe_load((NO_KEDA_DIR / "kustomization.yaml").read_text())
    deleted = {yaml.safe_load(p["patch"])["metadata"]["name"] for p in without["patches"]}
    assert deleted == set(scaled)
    assert all("kind: ScaledObject" in p["patch"] for p in without["patches"])
    # its base is a sibling folder: an overlay inside the base it loads is a kustomize cycle
    bases = [(NO_KEDA_DIR / r).resolve() for r in without["resources"]]
    assert K8S_DIR.resolve() in bases
    assert all(not NO_KEDA_DIR.resolve().is_relative_to(base) for base in bases)


def test_migration_job_runs_db_upgrade() -> None:
    (job,) = k8s_of("Job")
    (container,) = pod_spec(job)["containers"]
    assert container["command"] == ["payments", "db", "upgrade"]
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert k8s_env(job, container)[env_name("database_url")] is None, "the URL is a Secret file"
    assert job["metadata"]["name"].endswith(VERSION.replace(".", "-"))


# --- Prometheus and Grafana ------------------------------------------------------------------


def test_alert_rules_and_dashboard_are_wired() -> None:
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    for rule_file in prometheus["rule_files"]:
        assert (ROOT / "deploy/prometheus" / Path(rule_file).name).is_file()
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    assert {
        "PaymentsStuckInReview",
        "PaymentsStuckInActionRequired",
        "PaymentsRailErrorRate",
        "LedgerVerifyFailed",
        "WorkflowTaskFailures",
    } <= set(alerts)
    checked_statuses = 0
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"], name
        expr = rule["expr"]
        assert expr.count("(") == expr.count(")"), name
        # the `status` label of payments_* series is a payment status (api_*: HTTP status)
        for group in re.findall(r'payments_\w+\{[^}]*\bstatus=~?"([^"]+)"', expr):
            statuses = set(group.split("|"))
            assert statuses <= {s.value for s in PaymentStatus}, f"{name}: {statuses}"
            checked_statuses += 1
    assert checked_statuses >= 3
    assert "payments_ledger_verify_ok == 0" in alerts["LedgerVerifyFailed"]["expr"]
    assert "temporal_workflow_task_execution_failed" in alerts["WorkflowTaskFailures"]["expr"]
    # rail activities named in the rules exist on the worker
    worker_source = (ROOT / "workers" / "payments_worker.py").read_text()
    for activity in re.findall(r"(\w+_rail\w*)", alerts["PaymentsRailErrorRate"]["expr"]):
        assert f"rails.{activity}" in worker_source, activity

    compose = services()
    grafana_mounts = {
        str(v).split(":")[1]: str(v).split(":")[0] for v in compose["grafana"]["volumes"]
    }
    provisioning = ROOT / grafana_mounts["/etc/grafana/provisioning"]
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    assert urlsplit(datasource["datasources"][0]["url"]).hostname in compose
    provider = yaml.safe_load((provisioning / "dashboards" / "payments.yml").read_text())
    dashboards_dir = provider["providers"][0]["options"]["path"]
    dashboards = ROOT / grafana_mounts[dashboards_dir]
    boards = sorted(dashboards.glob("*.json"))
    assert boards
    for board in boards:
        panels = json.loads(board.read_text())["panels"]
        queries = [t for p in panels for t in p.get("targets", [])]
        assert queries
        assert {t["datasource"]["uid"] for t in queries} == {uid}
        assert {p["datasource"]["uid"] for p in panels if "targets" in p} == {uid}
    prometheus_mount = next(v for v in compose["prometheus"]["volumes"] if "/etc/prometheus" in v)
    assert prometheus_mount.split(":")[0] == "./deploy/prometheus"


def test_scaling_doc_gives_the_measured_numbers_and_the_arithmetic() -> None:
    text = (ROOT / "docs" / "scaling.md").read_text()
    for needle in (
        "10\u00d7",
        "100\u00d7",
        "history shards",
        "partitions",
        "bench-ledger",
        "measured",
    ):
        assert needle in text, needle


def test_compose_defaults_no_secret_and_publishes_only_the_api(made: Path) -> None:
    text = COMPOSE_FILE.read_text()
    for match in _INTERPOLATION.finditer(text):
        name, operator, _ = match.groups()
        if re.search("PASSWORD|SECRET|KEY", name):
            assert operator == ":?", f"${{{name}}} must be required, not defaulted"
    for variable in ("PAYMENTS_PAYLOAD_KEYS", "PAYMENTS_PAYLOAD_KEY_ID"):
        assert variable in compose_settings(services()["api"], made), variable
    published = {name for name, service in services().items() if service.get("ports")}
    assert published == {"api"}


# --- #16 item 6: secrets as files, locked-down pods, default-deny networks -------------------


def workloads() -> list[dict[str, Any]]:
    return k8s_of("Deployment") + k8s_of("Job")


def role_of_workload(workload: dict[str, Any]) -> str:
    (container,) = pod_spec(workload)["containers"]
    role = role_of(container["command"])
    assert role is not None
    return role


def needed_secrets(role: str, worker_queues: str | None = None) -> set[str]:
    """The secret settings a process of this role reads: its NEEDS and what its start-up
    check requires (a worker checks review tokens only when it runs the payments role)."""
    uses = set(USES[role])
    if role == "worker" and worker_queues not in (None, "all", "payments"):
        uses.discard(Uses.REVIEWS)
    wanted = {env_name(f) for f in NEEDS[role]} & FILE_SETTINGS
    for use in uses:
        wanted |= SECRET_VARIABLES[use]
    return wanted


def test_no_secret_reaches_a_container_as_an_environment_variable() -> None:
    # Kubernetes: no secretKeyRef, no envFrom of a Secret (k8s_env refuses both), no secret
    # in the ConfigMap; each process gets, as files, exactly the secrets it uses
    for maps in config_maps().values():
        assert not set(maps) & FILE_SETTINGS, "a secret in a ConfigMap"
    for workload in workloads():
        name = workload["metadata"]["name"]
        for container in containers(workload):
            env = k8s_env(workload, container)
            files = secret_files(workload, container)
            literal = {k for k, v in env.items() if v is not None}
            assert not literal & FILE_SETTINGS, f"{name}: secret in the environment"
            role = role_of(container["command"])
            assert role is not None
            assert set(files) == needed_secrets(role, env.get(env_name("worker_queues"))), name
    # the example Secret names every key some pod mounts
    mounted = {
        key for w in workloads() for c in containers(w) for key in secret_files(w, c).values()
    }
    assert mounted == secret_keys()["payments-secrets"]

    # compose: no PAYMENTS_ secret in an environment; the only secret interpolated into one is
    # the Temporal database password, for the images that read it from nowhere else
    temporal_password = "TEMPORAL_DB_PASSWORD"
    for name, service in services().items():
        assert not set(compose_env(service)) & FILE_SETTINGS, f"{name}: secret in the environment"
        raw = json.dumps(service.get("environment") or {})
        for match in _INTERPOLATION.finditer(raw):
            if re.search("PASSWORD|SECRET|KEY", match.group(1)):
                assert match.group(1) == temporal_password, f"{name}: {match.group(0)}"
                assert name in {"postgres", "temporal-schema", "temporal"}, name
    for name, (role, service) in app_services().items():
        mounted_settings = {
            PurePosixPath(path).name
            for path in compose_secret_files(service)
            if PurePosixPath(path).parent == PurePosixPath(SECRETS_DIR)
        }
        assert mounted_settings == needed_secrets(role), name


def test_compose_secrets_are_made_by_the_script_and_pass_production_checks(made: Path) -> None:
    declared = load_compose()["secrets"]
    made_names = {path.name for path in (made / "secrets").iterdir()}
    # every declared secret is a file the script makes, and it makes nothing unused
    assert {Path(s["file"]).name for s in declared.values()} == made_names
    for name, secret in declared.items():
        assert secret["file"] == f"./secrets/{name}" and set(secret) == {"file"}, name
    # only the owner enters the directory; the files are readable by the containers' users
    assert stat.S_IMODE((made / "secrets").stat().st_mode) == 0o700
    assert stat.S_IMODE((made / ".env").stat().st_mode) == 0o600
    for path in (made / "secrets").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name
    assert (made / ".env").read_text().startswith("TEMPORAL_DB_PASSWORD=")

    # each platform process would start in production (the image's default) on them
    for name, (role, service) in app_services().items():
        settings = validate_settings(compose_settings(service, made))
        assert settings.env == "production"
        assert production_problems(settings, USES[role]) == [], name
    # the ledger's URL carries the password PostgreSQL's init script gives the role
    url = urlsplit((made / "secrets" / "PAYMENTS_DATABASE_URL").read_text())
    assert url.hostname == "postgres" and url.username == "payments"
    assert url.password == (made / "secrets" / "ledger_db_password").read_text()
    postgres = services()["postgres"]
    init = (ROOT / "deploy/compose/postgres/init-databases.sh").read_text()
    assert "/run/secrets/ledger_db_password" in init and "ledger_db_password" in postgres["secrets"]
    assert compose_env(postgres)["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    grafana = compose_env(services()["grafana"])
    assert grafana["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert "/secrets/" in (ROOT / ".gitignore").read_text().split()


def test_compose_backend_is_internal_and_only_the_api_is_published() -> None:
    compose = load_compose()
    networks = compose["networks"]
    assert networks["backend"] == {"internal": True}
    routed = {name for name, spec in networks.items() if not (spec or {}).get("internal")}
    on: dict[str, set[str]] = {name: set() for name in networks}
    for name, service in services().items():
        assert service.get("network_mode") is None, name
        for network in service["networks"]:
            on[network].add(name)
    assert on["backend"] == set(services()), "every service talks on the internal network"
    # a network with a route out carries the published API, and the workers' way out to
    # partners' webhooks and list sources; nothing else
    assert {name for network in routed for name in on[network]} == {"api", "worker"}
    assert on["front"] == {"api"} and on["egress"] == {"worker"}
    assert {name for name, service in services().items() if service.get("ports")} == {"api"}
    assert not services()["worker"].get("ports")


def test_compose_containers_drop_privileges() -> None:
    # images that write outside their volumes at start (they render their configuration)
    writable_root = {"temporal-schema", "temporal", "temporal-namespace", "temporal-ui", "grafana"}
    for name, service in services().items():
        assert service["cap_drop"] == ["ALL"], name
        assert service["security_opt"] == ["no-new-privileges:true"], name
        assert service.get("read_only", False) is (name not in writable_root), name
        assert service.get("privileged") is not True, name
        if name != "postgres":
            assert "cap_add" not in service, name
    # postgres's entrypoint starts as root, owns its data directory, then becomes `postgres`
    assert set(services()["postgres"]["cap_add"]) == {
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "SETGID",
        "SETUID",
    }
    for name, (role, service) in app_services().items():
        tmpfs = set(service["tmpfs"])
        assert "/tmp" in tmpfs, name
        volumes = {
            v["target"] if isinstance(v, dict) else v.split(":")[1]
            for v in service.get("volumes", [])
        }
        # the data directory is writable: a volume (banksim's store) or a tmpfs
        if role != "migrate":
            data_dir = compose_env(service)[env_name("data_dir")]
            assert data_dir in tmpfs | volumes, name
        assert service.get("user") is None, f"{name}: the image's unprivileged user"


def test_every_pod_is_locked_down() -> None:
    accounts = {sa["metadata"]["name"]: sa for sa in k8s_of("ServiceAccount")}
    kinds = {doc["kind"] for doc in k8s_docs()}
    assert {"ServiceAccount", "NetworkPolicy"} <= kinds
    for workload in workloads():
        name = workload["metadata"]["name"]
        assert workload["metadata"]["namespace"] == "payments", name
        spec = pod_spec(workload)
        # no process calls the Kubernetes API: no token to steal, not even the account's
        assert spec["automountServiceAccountToken"] is False, name
        account = accounts[spec["serviceAccountName"]]
        assert account["automountServiceAccountToken"] is False
        assert spec["serviceAccountName"] != "default"
        assert spec.get("hostNetwork") is not True and spec.get("hostPID") is not True
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        volumes = {v["name"]: v for v in spec["volumes"]}
        for volume in volumes.values():
            if "secret" in volume:
                # root-owned, readable by the pod's group (fsGroup) only
                assert volume["secret"]["defaultMode"] == 0o440, name
                assert pod["fsGroup"] == pod["runAsGroup"], name
        for container in containers(workload):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context.get("privileged") is not True, name
            assert container["imagePullPolicy"] == "Always", name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), name
            # what a read-only root leaves writable: scratch space and the data directory
            for mount in container["volumeMounts"]:
                volume = volumes[mount["name"]]
                if not mount.get("readOnly"):
                    assert "emptyDir" in volume or "persistentVolumeClaim" in volume, mount
            assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}, name


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector
    return dict(selector.get("matchLabels", {})).items() <= labels.items()


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    assert isinstance(labels, dict)
    return labels


def rules_for(labels: dict[str, str], direction: str) -> list[dict[str, Any]]:
    """Every ingress or egress rule of every policy that selects pods with these labels."""
    key = {"Ingress": "ingress", "Egress": "egress"}[direction]
    return [
        rule
        for policy in k8s_of("NetworkPolicy")
        if direction in policy["spec"]["policyTypes"]
        and selects(policy["spec"]["podSelector"], labels)
        for rule in policy["spec"].get(key, [])
    ]


def ports_of(rule: dict[str, Any]) -> set[tuple[int, str]]:
    return {(int(p["port"]), p.get("protocol", "TCP")) for p in rule.get("ports", [])}


def peers_allow(rule: dict[str, Any], namespace: str, labels: dict[str, str]) -> bool:
    """Whether the rule's peers include a pod with these labels in this namespace."""
    peers = rule.get("to", rule.get("from"))
    if peers is None:  # no peers: any address, on the rule's ports
        return True
    for peer in peers:
        if "ipBlock" in peer:
            continue
        in_namespace = (
            selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": namespace})
            if "namespaceSelector" in peer
            else namespace == "payments"
        )
        if in_namespace and selects(peer.get("podSelector", {}), labels):
            return True
    return False


def allowed(rules: list[dict[str, Any]], port: int, namespace: str, labels: dict[str, str]) -> bool:
    return any(
        (port, "TCP") in ports_of(rule) and peers_allow(rule, namespace, labels) for rule in rules
    )


def workload_named(name: str) -> dict[str, Any]:
    (workload,) = [w for w in workloads() if w["metadata"]["name"] == name]
    return workload


def container_port(workload: dict[str, Any], name: str | None = None) -> int:
    (container,) = pod_spec(workload)["containers"]
    ports = container.get("ports", [{"containerPort": None}])
    (port,) = [p for p in ports if name is None or p.get("name") == name]
    return int(port["containerPort"])


def test_network_policies_deny_by_default_and_allow_only_the_ports_in_use() -> None:
    policies = {p["metadata"]["name"]: p for p in k8s_of("NetworkPolicy")}
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    for policy in policies.values():
        assert policy["metadata"]["namespace"] == "payments"
        # every policy selects pods that exist (a typo would select none)
        selector = policy["spec"]["podSelector"]
        assert selector == {} or any(selects(selector, pod_labels(w)) for w in workloads())

    # the ports, read from the settings the processes are given
    config = next(iter(config_maps().values()))
    example = next(iter(k8s_of("Secret")))["stringData"]
    db_port = urlsplit(example["database-url"]).port
    temporal_host, temporal_port = config[env_name("temporal_address")].rsplit(":", 1)
    temporal_namespace = temporal_host.split(".")[1]  # <service>.<namespace>.svc…
    bank = urlsplit(config[env_name("rail_bank_url")])
    callback = urlsplit(config[env_name("banksim_callback_url")])
    api, banksim = workload_named("api"), workload_named("banksim")
    assert bank.port == container_port(banksim)
    assert callback.port == container_port(api, "internal") != container_port(api, "http")
    assert bank.hostname is not None and bank.hostname.split(".")[0] == "banksim"
    metrics_port = WorkerSettings.model_fields["metrics_port"].default
    monitoring = "monitoring"
    anywhere = ("somewhere", {"app": "anything"})

    # every pod resolves names with the cluster DNS, on both protocols
    dns = {"k8s-app": "kube-dns"}
    for workload in workloads():
        egress = rules_for(pod_labels(workload), "Egress")
        for protocol in ("UDP", "TCP"):
            assert any(
                (53, protocol) in ports_of(r) and peers_allow(r, "kube-system", dns) for r in egress
            ), workload["metadata"]["name"]

    egress_ports: dict[str, set[int]] = {}
    for workload in workloads():
        name = workload["metadata"]["name"]
        labels = pod_labels(workload)
        role = role_of_workload(workload)
        egress = rules_for(labels, "Egress")
        ingress = rules_for(labels, "Ingress")
        if "database_url" in NEEDS[role]:
            assert db_port is not None and allowed(egress, db_port, *anywhere), name
        if "temporal_address" in NEEDS[role]:
            assert allowed(egress, int(temporal_port), temporal_namespace, {}), name
            assert not allowed(egress, int(temporal_port), *anywhere), name
        # the Prometheus scrape reaches the port the pod's annotations name, from monitoring
        annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/scrape") == "true":
            port = int(annotations["prometheus.io/port"])
            assert allowed(ingress, port, monitoring, {}), name
        else:
            assert not ingress or role == "banksim", name
        # every egress rule names its ports, but the webhooks' to public addresses (a
        # partner's URL may name any port); none opens every port to every address
        for rule in egress:
            public = rule.get("to") and all("ipBlock" in peer for peer in rule["to"])
            assert rule.get("ports") or public, name
        egress_ports[name] = {port for rule in egress for port, _ in ports_of(rule)} - {53}

    # the bank: only the rail workers reach it; it reaches the API's callbacks only
    rails = pod_labels(workload_named("worker-rails"))
    assert bank.port is not None and callback.port is not None
    banksim_in = rules_for(pod_labels(banksim), "Ingress")
    assert allowed(banksim_in, bank.port, "payments", rails)
    for other in workloads():
        if other["metadata"]["name"] != "worker-rails":
            assert not allowed(banksim_in, bank.port, "payments", pod_labels(other))
            assert not allowed(
                rules_for(pod_labels(other), "Egress"), bank.port, "payments", pod_labels(banksim)
            )
    assert allowed(rules_for(rails, "Egress"), bank.port, "payments", pod_labels(banksim))
    assert egress_ports["banksim"] == {callback.port}
    assert allowed(
        rules_for(pod_labels(banksim), "Egress"), callback.port, "payments", pod_labels(api)
    )
    # the API: partners through the ingress controller on the public listener only; the
    # bank's callbacks and the scrape on the internal one (api/listeners.py)
    api_in = rules_for(pod_labels(api), "Ingress")
    public = container_port(api, "http")
    assert allowed(api_in, public, "ingress-nginx", {"app": "controller"})
    assert not allowed(api_in, callback.port, "ingress-nginx", {"app": "controller"})
    assert not allowed(api_in, public, "payments", pod_labels(banksim))
    assert allowed(api_in, callback.port, "payments", pod_labels(banksim))
    assert not allowed(api_in, callback.port, "payments", rails)
    assert not allowed(api_in, callback.port, *anywhere)
    assert egress_ports["api"] == {db_port, int(temporal_port)}
    assert egress_ports["payments-migrate-" + VERSION.replace(".", "-")] == {db_port}
    assert egress_ports["worker-ledger"] == {db_port, int(temporal_port)}
    assert egress_ports["worker-rails"] == {db_port, int(temporal_port), bank.port}
    assert metrics_port in {p for r in rules_for(rails, "Ingress") for p, _ in ports_of(r)}


def test_webhook_and_list_egress_reaches_public_addresses_only() -> None:
    """The payments workers' webhooks and the compliance workers' list sources leave the
    cluster to public addresses only; the blocks agree with the webhook guard."""
    inside = [
        "10.1.2.3",
        "172.16.5.4",
        "192.168.0.1",
        "127.0.0.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",
        "0.0.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "fd00::1",
        "fe80::1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",
    ]
    outside = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"]
    for name in ("worker-payments", "worker-compliance"):
        blocks = [
            peer["ipBlock"]
            for rule in rules_for(pod_labels(workload_named(name)), "Egress")
            for peer in rule.get("to", [])
            if "ipBlock" in peer
        ]
        assert {b["cidr"] for b in blocks} == {"0.0.0.0/0", "::/0"}, name

        def reachable(address: str, blocks: list[dict[str, Any]] = blocks) -> bool:
            ip = ipaddress.ip_address(address)
            return any(
                ip in ipaddress.ip_network(block["cidr"])
                and not any(ip in ipaddress.ip_network(e) for e in block["except"])
                for block in blocks
            )

        for address in inside:
            assert not address_allowed(ipaddress.ip_address(address)), address
            assert not reachable(address), f"{name} reaches {address}"
        for address in outside:
            assert reachable(address), f"{name} cannot reach {address}"
        # nothing the guard would let a webhook reach is cut off by the policy
        for block in blocks:
            for excluded in block["except"]:
                network = ipaddress.ip_network(excluded)
                assert not address_allowed(network[1]), excluded
    # the other workers have no way out of the cluster
    for name in ("worker-ledger", "worker-rails"):
        rules = rules_for(pod_labels(workload_named(name)), "Egress")
        assert not any("ipBlock" in p for r in rules for p in r.get("to", [])), name


def test_the_mtls_component_mounts_client_certificates_into_every_temporal_client() -> None:
    component = yaml.safe_load((K8S_DIR / "temporal-mtls" / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    [config_patch, mount_patch] = component["patches"]
    settings = {
        op["path"].removeprefix("/data/"): op["value"]
        for op in yaml.safe_load(config_patch["patch"])
    }
    assert settings["PAYMENTS_TEMPORAL_TLS"] == "true"
    ops = yaml.safe_load(mount_patch["patch"])
    [volume] = [op["value"] for op in ops if op["path"].endswith("/volumes/-")]
    [mount] = [op["value"] for op in ops if op["path"].endswith("/volumeMounts/-")]
    assert mount["readOnly"] and mount["name"] == volume["name"]
    files = {item["path"] for item in volume["secret"]["items"]}
    for name in ("CA", "CERT", "KEY"):
        path = PurePosixPath(settings[f"PAYMENTS_TEMPORAL_TLS_{name}_PATH"])
        assert path.parent == PurePosixPath(mount["mountPath"]) and path.name in files
    # every Deployment that runs a Temporal client, and only those (the bank simulator not)
    pattern = re.compile(mount_patch["target"]["name"])
    patched = {
        d["metadata"]["name"] for d in k8s_of("Deployment") if pattern.search(d["metadata"]["name"])
    }
    clients = {
        d["metadata"]["name"]
        for d in k8s_of("Deployment")
        if d["spec"]["template"]["spec"]["containers"][0]["command"][-1] in ("api", "workers")
    }
    assert patched == clients and {"api", "worker-payments"} <= clients
