"""Static checks of the deployment files (no Docker engine or cluster needed).

Dockerfile, docker-compose.yml, deploy/k8s, deploy/prometheus and deploy/grafana are checked
against the code they run: the settings it reads, the routes it serves, the entry points it
has and the shutdown timeout of its workers.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]
from fastapi import FastAPI

from api.app import create_app as create_api
from banksim.app import create_app as create_banksim
from kernel.settings import PROJECT_ROOT, Settings, TemporalSettings, WorkerSettings, setting_paths
from workflows.models import PaymentStatus
from workflows.queues import ROLES, Role, queue_for

ROOT = PROJECT_ROOT
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
K8S_DIR = ROOT / "deploy" / "k8s"
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
    for path in sorted(K8S_DIR.rglob("*.yaml")):
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


def k8s_env(container: dict[str, Any]) -> dict[str, str | None]:
    """The container's environment: literal values, ConfigMap values; None for secrets."""
    env: dict[str, str | None] = {}
    maps = config_maps()
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        assert name in maps, f"envFrom references a missing ConfigMap {name}"
        env.update(maps[name])
    secrets = secret_keys()
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            assert ref["key"] in secrets.get(ref["name"], set()), f"unknown secret key {ref}"
            env[item["name"]] = None
    return env


def validate_settings(env: dict[str, str] | dict[str, str | None]) -> Settings:
    """The values parse as the settings' types (secrets, None here, keep their defaults)."""
    values = {
        PATHS[field_of(k)]: v for k, v in env.items() if v is not None and k.startswith(ENV_PREFIX)
    }
    return Settings().updated(values)


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
    texts += [path.read_text() for path in sorted(K8S_DIR.rglob("*.yaml"))]
    texts += [path.read_text() for path in sorted((ROOT / "deploy" / "compose").rglob("*.*"))]
    mentioned = {name for text in texts for name in re.findall(r"\bPAYMENTS_[A-Z0-9_]+", text)}
    assert len(mentioned) > 10
    unknown = {name for name in mentioned if field_of(name) not in FIELDS}
    assert not unknown, f"not settings fields (kernel/settings.py): {sorted(unknown)}"


def test_each_compose_service_gets_the_settings_it_needs() -> None:
    by_role: dict[str, dict[str, str]] = {}
    for name, (role, service) in app_services().items():
        env = compose_env(service)
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
    assert str(callback.port) == by_role["api"][env_name("api_port")]
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
    assert jobs["payments-api"]["static_configs"][0]["targets"] == ["api:8000"]
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
            env = k8s_env(container)
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
                assert annotations["prometheus.io/port"] == env[env_name(port_setting(role))]
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
        env = k8s_env(container)
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
    # without KEDA, a CPU HPA takes the same Deployment
    (hpa,) = k8s_of("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] in scaled
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    without = yaml.safe_load((K8S_DIR / "without-keda" / "kustomization.yaml").read_text())
    assert "../" in without["resources"]
    assert "kind: ScaledObject" in without["patches"][0]["patch"]


def test_migration_job_runs_db_upgrade() -> None:
    (job,) = k8s_of("Job")
    (container,) = pod_spec(job)["containers"]
    assert container["command"] == ["payments", "db", "upgrade"]
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert k8s_env(container)[env_name("database_url")] is None, "the URL comes from a Secret"
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


def test_compose_defaults_no_secret_and_publishes_only_the_api() -> None:
    text = COMPOSE_FILE.read_text()
    for match in _INTERPOLATION.finditer(text):
        name, operator, _ = match.groups()
        if re.search("PASSWORD|SECRET|KEY", name):
            assert operator == ":?", f"${{{name}}} must be required, not defaulted"
    for variable in ("PAYMENTS_PAYLOAD_KEYS", "PAYMENTS_PAYLOAD_KEY_ID"):
        assert variable in compose_env(services()["api"]), variable
    published = {name for name, service in services().items() if service.get("ports")}
    assert published == {"api"}
