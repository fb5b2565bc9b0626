"""The alert rules and Alertmanager, with the real tools.

- `promtool check rules` and `promtool test rules` over deploy/prometheus/alerts.yml and
  its unit tests (alerts.test.yml: each alert fires and resolves);
- amlint over deploy/alertmanager/alertmanager.yml, its routing cases at full route
  coverage, and every rule of alerts.yml routed to the receiver its severity names;
- the real Alertmanager on loopback, with the compose config pointed at the compose
  receiver (deploy/alertmanager/webhook_receiver.py) run on loopback: an alert posted to
  its API arrives at the receiver firing, then resolved;
- every `temporal` command the alert runbooks cite exists with the flags they give (the
  Temporal CLI that `make install` brings, asked for its help: nothing runs).

promtool and Alertmanager come from Debian (`prometheus`, `prometheus-alertmanager`):
`make test` runs .ci/install-prometheus-tools.sh first, and the fixture below runs it too
when they are missing, so that `pytest` alone works on a fresh machine.
"""

from __future__ import annotations

import json
import queue
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from ops.devstack import free_port

# the repository (these files are read where they are checked in, not from settings)
ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
ROUTE_TESTS = ROOT / "deploy" / "alertmanager" / "routes.test.yml"
RECEIVER = ROOT / "deploy" / "alertmanager" / "webhook_receiver.py"
RUNBOOKS = ROOT / "docs" / "runbooks"
TEMPORAL = Path(sys.executable).parent / "temporal"
INSTALL = ROOT / ".ci" / "install-prometheus-tools.sh"
AMLINT = Path(sys.executable).parent / "amlint"
# a process that should answer in milliseconds on loopback; generous for 2 busy cores
DEADLINE = 30.0


@dataclass(frozen=True)
class Tools:
    """Paths of the Debian binaries."""

    promtool: str
    alertmanager: str


def _which_tools() -> Tools | None:
    promtool = shutil.which("promtool")
    alertmanager = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    return Tools(promtool, alertmanager) if promtool and alertmanager else None


@pytest.fixture(scope="module")
def tools() -> Tools:
    """promtool and alertmanager, installed from Debian if this machine lacks them."""
    found = _which_tools()
    if found is None:
        result = subprocess.run(["bash", str(INSTALL)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        found = _which_tools()
    assert found is not None, f"{INSTALL.name} ran but promtool/alertmanager are not on PATH"
    return found


def _run(*command: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, cwd=cwd)


def _alert_names() -> list[str]:
    rules = yaml.safe_load(RULES.read_text())
    return [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]


# --- Prometheus rules ----------------------------------------------------------------------


def test_promtool_checks_and_tests_every_rule(tools: Tools) -> None:
    check = _run(tools.promtool, "check", "rules", RULES)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(_alert_names())} rules found" in check.stdout
    # relative paths: the test file names its rule file beside it
    tested = _run(tools.promtool, "test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_prometheus_config_loads_the_rules_and_sends_alerts_to_alertmanager(
    tools: Tools, tmp_path: Path
) -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    # in the container the rules are mounted at /etc/prometheus; here they are beside it
    assert config["rule_files"] == [f"/etc/prometheus/{RULES.name}"]
    config["rule_files"] = [str(RULES)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    check = _run(tools.promtool, "check", "config", tmp_path / "prometheus.yml")
    assert check.returncode == 0, check.stdout + check.stderr
    [target] = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    host, port = target.split(":")
    assert host in compose and port == "9093"
    assert f"http://127.0.0.1:{port}/-/ready" in " ".join(compose[host]["healthcheck"]["test"])
    # the config Alertmanager runs with in compose is the one checked here
    assert any(
        str(v).startswith(f"./deploy/alertmanager/{ALERTMANAGER_CONFIG.name}:")
        for v in compose[host]["volumes"]
    )
    # every alert carries the label the inhibit rules bind on
    assert "cluster" in config["global"]["external_labels"]


def test_the_rule_tests_notice_a_broken_rule(tools: Tools, tmp_path: Path) -> None:
    # the same tests against a rule that waits for a day instead of 4 hours: they must fail,
    # or they would pass whatever the rules say
    broken = RULES.read_text().replace(
        'status="in_review"}) > 4 * 3600', 'status="in_review"}) > 24 * 3600'
    )
    assert broken != RULES.read_text()
    (tmp_path / RULES.name).write_text(broken)
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    tested = _run(tools.promtool, "test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert tested.returncode != 0
    assert "PaymentsStuckInReview" in tested.stdout + tested.stderr


# --- Alertmanager: static checks -------------------------------------------------------------


def test_alertmanager_config_passes_amlint() -> None:
    # --strict: warnings fail too; --rules: the routes are checked against the real alerts
    check = _run(AMLINT, "check", "--strict", "--rules", RULES, ALERTMANAGER_CONFIG)
    assert check.returncode == 0, check.stdout + check.stderr
    routed = _run(AMLINT, "test", "--fail-under", "100", ALERTMANAGER_CONFIG, ROUTE_TESTS)
    assert routed.returncode == 0, routed.stdout + routed.stderr


def test_every_rule_routes_to_the_receiver_of_its_severity() -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    by_severity = {
        route["matchers"][0].split("=")[1].strip('"'): route["receiver"]
        for route in config["route"]["routes"]
    }
    assert set(by_severity) == {"critical", "warning"}
    rules = yaml.safe_load(RULES.read_text())
    for rule in (r for g in rules["groups"] for r in g["rules"] if "alert" in r):
        severity = rule["labels"]["severity"]
        answer = _run(
            AMLINT,
            "route",
            "--format",
            "json",
            ALERTMANAGER_CONFIG,
            f"alertname={rule['alert']}",
            f"severity={severity}",
        )
        assert answer.returncode == 0, answer.stderr
        assert by_severity[severity] in answer.stdout, (rule["alert"], answer.stdout)


# --- Alertmanager: a firing alert reaches the receiver ---------------------------------------


def _lines(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


@dataclass
class Receiver:
    """The compose receiver, running on loopback, with the JSON lines it printed."""

    port: int
    lines: queue.Queue[str]
    seen: list[dict[str, Any]] = field(default_factory=list)

    def alert(self, **expected: str) -> dict[str, Any]:
        """A printed alert whose fields have the expected values, waiting for it if need be.

        Notifications of different routes arrive in any order: every line read is kept.
        """
        deadline = time.monotonic() + DEADLINE
        while True:
            for seen in self.seen:
                if all(seen.get(key) == value for key, value in expected.items()):
                    return seen
            left = deadline - time.monotonic()
            try:
                self.seen.append(json.loads(self.lines.get(timeout=max(left, 0))))
            except queue.Empty:
                raise AssertionError(
                    f"no alert with {expected} reached the receiver; it got {self.seen}"
                ) from None


@dataclass
class Process:
    """A child process whose output is read as it comes, so a full pipe never blocks it."""

    popen: subprocess.Popen[str]
    stdout: queue.Queue[str]
    stderr: queue.Queue[str]

    def stop(self) -> str:
        """Terminate it; what it wrote on stderr (for failure messages)."""
        self.popen.terminate()
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        return "".join(self.stderr.queue)


def _start(command: list[str]) -> Process:
    popen = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert popen.stdout is not None and popen.stderr is not None
    process = Process(popen, queue.Queue(), queue.Queue())
    for stream, into in ((popen.stdout, process.stdout), (popen.stderr, process.stderr)):
        threading.Thread(target=_lines, args=(stream, into), daemon=True).start()
    return process


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """deploy/alertmanager/webhook_receiver.py on a free loopback port."""
    port = free_port()
    process = _start([sys.executable, str(RECEIVER), "--host", "127.0.0.1", "--port", str(port)])
    # it says where it listens once the socket is bound
    try:
        first = process.stderr.get(timeout=DEADLINE)
    except queue.Empty:
        first = ""
    assert "listening on" in first, process.stop()
    yield Receiver(port, process.stdout)
    process.stop()


def loopback_config(receiver_port: int) -> dict[str, Any]:
    """The compose config with its receiver on loopback and the waits cut to test speed.

    Only addresses and timers change: the route tree, matchers, receivers and inhibit rules
    are the file's own.
    """
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            assert hook["url"].startswith("http://alert-receiver:9095/"), hook["url"]
            hook["url"] = hook["url"].replace("alert-receiver:9095", f"127.0.0.1:{receiver_port}")
    for route in [config["route"], *config["route"]["routes"]]:
        if "group_wait" in route:
            route["group_wait"] = "0s"
        route["group_interval"] = "1s"
    return config


@pytest.fixture
def alertmanager(tools: Tools, receiver: Receiver, tmp_path: Path) -> Iterator[str]:
    """The real Alertmanager on loopback (no cluster gossip); its base URL."""
    config = tmp_path / "alertmanager.yml"
    config.write_text(yaml.safe_dump(loopback_config(receiver.port)))
    port = free_port()
    process = _start(
        [
            tools.alertmanager,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            # a single instance: no gossip listener on every interface
            "--cluster.listen-address=",
        ]
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + DEADLINE
    while True:
        assert process.popen.poll() is None, process.stop()
        try:
            if httpx.get(f"{base}/-/ready", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "alertmanager did not become ready"
        time.sleep(0.1)
    yield base
    process.stop()


def _alert(name: str, severity: str, *, ends_at: datetime | None = None) -> dict[str, Any]:
    rules = yaml.safe_load(RULES.read_text())
    rule = next(r for g in rules["groups"] for r in g["rules"] if r.get("alert") == name)
    alert: dict[str, Any] = {
        "labels": {"alertname": name, "severity": severity, "cluster": "payments-compose"},
        "annotations": {
            "summary": rule["annotations"]["summary"],
            "runbook_url": rule["annotations"]["runbook_url"],
        },
        "startsAt": "2026-01-01T00:00:00Z",
    }
    if ends_at is not None:
        alert["endsAt"] = ends_at.isoformat().replace("+00:00", "Z")
    return alert


def test_alertmanager_delivers_a_firing_alert_to_the_receiver(
    alertmanager: str, receiver: Receiver
) -> None:
    # what Prometheus does: POST the firing alerts to Alertmanager's API
    posted = httpx.post(
        f"{alertmanager}/api/v2/alerts",
        json=[_alert("LedgerVerifyFailed", "critical"), _alert("PaymentsStuckInReview", "warning")],
        timeout=5,
    )
    assert posted.status_code == 200, posted.text

    critical = receiver.alert(alertname="LedgerVerifyFailed", status="firing")
    assert critical["route"] == "critical" and critical["receiver"] == "oncall-critical"
    assert critical["runbook_url"] == "docs/runbooks/LedgerVerifyFailed.md"
    assert (ROOT / critical["runbook_url"]).is_file()
    warning = receiver.alert(alertname="PaymentsStuckInReview", status="firing")
    assert warning["route"] == "warning" and warning["receiver"] == "ops-warning"

    # the condition clears: Prometheus sends the alert with an end time; the receiver hears
    # that it resolved (send_resolved)
    resolved = httpx.post(
        f"{alertmanager}/api/v2/alerts",
        json=[_alert("LedgerVerifyFailed", "critical", ends_at=datetime.now(UTC))],
        timeout=5,
    )
    assert resolved.status_code == 200, resolved.text
    done = receiver.alert(alertname="LedgerVerifyFailed", status="resolved")
    assert done["route"] == "critical"


# --- runbooks: the Temporal steps -----------------------------------------------------------


def cited_temporal_commands(text: str) -> list[str]:
    """`temporal …` lines of a runbook's shell blocks."""
    commands: list[str] = []
    language: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            language = stripped[3:] if language is None else None
        elif language in ("sh", "bash", "") and stripped.startswith("temporal "):
            commands.append(stripped)
    return commands


def test_runbooks_cite_only_temporal_commands_the_cli_has() -> None:
    checked = 0
    for name in _alert_names():
        for command in cited_temporal_commands((RUNBOOKS / f"{name}.md").read_text()):
            argv = shlex.split(command, comments=True)[1:]
            path = argv[: next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))]
            # --help after the flags: the CLI refuses an unknown flag, runs nothing
            answer = _run(TEMPORAL, *argv, "--help")
            assert answer.returncode == 0, f"{name}.md: `{command}`: {answer.stderr}"
            # an unknown subcommand prints its parent's help instead of failing
            usage = f"temporal {' '.join(path)} [flags]"
            assert usage in answer.stdout, f"{name}.md: `{command}` is no temporal command"
            checked += 1
    assert checked >= 20
