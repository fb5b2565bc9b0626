"""The README's and the docs' commands, run as written against the real stack (issue #22).

Every fenced shell or Python block of README.md and docs/*.md is either run here, in order,
in one shell session (so the tour's variables carry from one command to the next), or
listed in NOT_RUN with the reason; every inline `payments …`, `curl …`, `temporal …` or
`.venv/bin/…` command is either the prefix of a command run here or listed in
INLINE_NOT_RUN; every `make <target>` names a target of the Makefile. A command no test
runs is a defect, so a block or command that is neither fails this test.

The only substitutions are the tour's first lines, which name where `make dev` listens and
where it keeps its keys: the test stack listens on free ports and its keys belong to a
fresh tenant. Each chunk of a block (commands separated by a blank line) is one step:
STEPS says, in order, what each step's answer must be (HTTP status of each `curl`, and the
fields the README's text promises). `curl` reports each status on stderr through a curlrc
of this test's own (`CURL_HOME`), so the commands stay exactly as a newcomer types them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from ops.devstack import Stack, settings_env

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "clients" / "python" / "README.md",
]
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)\s*$")
SHELL = {"sh", "bash", "shell", "console"}
INLINE_COMMAND = re.compile(r"^(?:payments|curl|temporal|\.venv/bin/\S+) \S")
DONE = "@@DONE"
HTTP = re.compile(r"^@@HTTP (\d{3})$", re.MULTILINE)

# (file, first line of the block) -> why no test runs it
NOT_RUN: dict[tuple[str, str], str] = {
    (
        "README.md",
        "make dev    # " + "set everything up and run the whole platform in the "
        "foreground (Ctrl-C stops it)",
    ): (
        "`make dev` starts the stack this test starts itself (ops.devstack.Stack, the same "
        "code); `make test` runs this test"
    ),
    ("docs/compose.md", "sh deploy/compose/make-secrets.sh"): (
        "writes docker compose's production secrets beside the checkout; "
        "tests/unit/test_deploy.py runs the script in a temporary directory and checks "
        "what it writes against the production checks"
    ),
    ("docs/compose.md", "docker compose up --build -d"): "needs Docker",
    (
        "docs/backups.md",
        "payments backup create                      # a base backup now (seconds for a dev "
        "database)",
    ): (
        "a restore replaces the database under the shared stack: "
        "tests/chaos/test_restore_drill.py runs create, verify, restore and heal on a stack "
        "of its own, and `backup list` is the listing `verify` walks"
    ),
    ("docs/backups.md", "docker compose run --rm --entrypoint sh wal-archive -c \\"): (
        "needs Docker"
    ),
    (
        "clients/python/README.md",
        "pip install ./clients/python   # from a checkout; `make install` does this",
    ): ("`make install` installs the client the same way (the tests import it)"),
    (
        "clients/python/README.md",
        "from payments_client import ApiError, PaymentsClient, verify_webhook",
    ): (
        "a sketch with placeholders (acc_…, psk_…, a web framework's request); the README's "
        "tour in Python makes the same calls and runs here"
    ),
}
# blocks that are not commands (diagrams, configuration files)
NOT_COMMANDS = {"", "yaml", "text", "json", "toml", "ini"}

# inline command (as written) -> why it is not run (the others must prefix a run command)
INLINE_NOT_RUN: dict[str, str] = {
    "payments list --status action_required": "no payment waits for ops in the tour; "
    "`payments list --status settled` is run",
    "payments list --status in_review --older-than 60": "a review that waited an hour",
    "payments retry pay_…": "needs a payment in action_required (test_outcome_unknown.py)",
    "payments cancel pay_… --operator you": "test_decisions_audited.py cancels",
    "payments review pay_… --decision approve --reviewer you": (
        "test_cli_and_health.py::test_ops_cli_finds_shows_and_reviews_a_payment runs it"
    ),
    "payments reconcile --date 2026-11-29": "test_reconciliation.py runs the CLI",
    "temporal workflow reset -w pay_… --type LastWorkflowTask": "resets a workflow",
    "temporal workflow show --output json": "test_payload_encryption.py runs it",
    "payments keys create --tenant T --name N --scopes payments:write,payments:read "
    "[--rate-limit N]": (
        "run by this test (it makes the tour's keys) with a tenant and names of its own"
    ),
    "payments keys create --tenant T --name N --scopes a,b": (
        "DESIGN's synopsis of the command this test makes its keys with"
    ),
    "payments audit verify --full": "test_audit.py runs --full",
    ".venv/bin/python bench/screening_calibration.py": "a benchmark of the matcher (minutes)",
    ".venv/bin/python bench/volume.py --sizes 10000,100000,1000000": (
        "a benchmark at a million payments (hours of both cores)"
    ),
    "payments keys revoke KEY_ID": "test_partner_api.py revokes a key",
    "payments ledger verify --full": "test_full_verification.py runs --full",
    **{
        command: "test_partitions.py runs it (test_the_archive_commands, on a database of its own)"
        for command in (
            "payments archive list",
            "payments archive ledger --month YYYY-MM --dir DIR",
            "payments archive audit --month YYYY-MM --dir DIR",
            "payments archive verify --dir DIR",
        )
    },
    "payments keys rotate KEY_ID": "test_breach_runbooks.py runs it (a tenant API key leaked)",
    "payments keys revoke --tenant T [--principal P]": (
        "test_breach_runbooks.py runs both (a compromised tenant, a compromised ops principal)"
    ),
    "payments webhooks rotate-secret|end-overlap|disable ENDPOINT_ID --tenant T": (
        "test_breach_runbooks.py runs each (a leaked webhook secret, a compromised tenant)"
    ),
    "payments payload-keys generate|rewrap|check": (
        "test_breach_runbooks.py runs each (a payload master key leaked), restarting the"
        " stack's processes in between"
    ),
    "payments secrets generate": "test_breach_runbooks.py runs it (the callback secret leaked)",
    # the risk register names the breach commands (SEC-11 to SEC-13) in their short forms
    **{
        command: "the risk register names it; test_breach_runbooks.py runs it"
        for command in (
            "payments keys rotate",
            "payments keys revoke",
            "payments keys revoke --tenant T",
            "payments keys revoke --tenant T --principal P",
            "payments webhooks rotate-secret",
            "payments webhooks disable",
            "payments payload-keys rewrap",
            "payments payload-keys check",
        )
    },
    "payments purge": "test_retention.py runs it",
    "payments db upgrade": "the stack's start runs the migrations",
    "temporal server start-dev": "the stack starts it (ops.devstack)",
    "docker compose exec api payments <command>": "needs Docker",
    "payments backup create|list|verify|restore --to TIME": (
        "DESIGN's synopsis; tests/chaos/test_restore_drill.py runs each"
    ),
    "payments customers erase": "test_erasure.py runs it (the risk register names the command)",
    "payments customers erase cus_…": "needs a customer to erase: test_erasure.py runs it",
    "payments heal": "tests/chaos/test_restore_drill.py runs it after a restore",
    "payments heal --since TIME": "tests/chaos/test_restore_drill.py runs it after a restore",
    "payments backup create|list|verify": "tests/chaos/test_restore_drill.py runs them",
    "payments backup restore --to TIME": (
        "replaces the database: tests/chaos/test_restore_drill.py runs it on a stack of its own"
    ),
    "payments customers erase cus_… [--reason DSR-42]": (
        "needs a customer with no open payment and no balance: test_erasure.py runs it"
    ),
    "payments customers hold cus_… --operator O --purpose CASE": (
        "needs an erased customer: test_erasure.py runs it"
    ),
    ".venv/bin/python bench/workflow_bench.py --rounds 4 --payments 160": (
        "a benchmark (minutes of both cores): `make bench` runs it"
    ),
    ".venv/bin/python bench/workflow_bench.py --payments 40 --concurrency 8 --rounds 2": (
        "a benchmark (minutes of both cores): `make bench` runs it"
    ),
    ".venv/bin/python bench/post_profile.py --payments 30 --settle": (
        "a profile of the API on a private stack of its own (a minute of both cores)"
    ),
    ".venv/bin/python bench/post_profile.py --payments 64 --concurrency 8": (
        "a profile of the API on a private stack of its own (a minute of both cores)"
    ),
    ".venv/bin/python bench/workflow_bench.py": (
        "a benchmark (minutes of both cores): `make bench` runs it"
    ),
    ".venv/bin/python bench/workflow_bench.py --payments 32 --concurrency 8 --rounds 2 "
    "--variants bare+attrs,bare+codec,bare+local,bare+patches,bare+temporal": (
        "a benchmark with every variant (minutes of both cores): `make bench` runs bare+local"
    ),
    ".venv/bin/python bench/workflow_bench.py --payments N --concurrency 8 --rounds 2 "
    "--variants bare+local,bare+patches": (
        "a benchmark (minutes of both cores), N a size: `make bench` runs it"
    ),
    ".venv/bin/python bench/batch.py --items 10000 --accept-only --run-before-cancel 30": (
        "a benchmark (a 10,000-item batch): `make bench-batch` runs its comparison"
    ),
    ".venv/bin/python bench/batch.py --items 300 --warmup 30": (
        "a benchmark (two private stacks' worth of minutes): `make bench-batch` runs it"
    ),
    ".venv/bin/python bench/batch.py --items 10000 --batch-only": (
        "a benchmark (a 10,000-item batch to its end, most of an hour)"
    ),
    "payments batches submit FILE [--skip-invalid] [--no-follow]": (
        "test_payment_batches.py runs it (a CSV file, followed to the end)"
    ),
}
# the tour's first lines: what `make dev` uses, and what the test stack uses instead
TOUR_SETTINGS = ("API", "BANK", "KEYS", "TENANT")


@dataclass
class Block:
    """One fenced block of a document."""

    doc: str
    line: int
    lang: str
    text: str

    @property
    def first_line(self) -> str:
        return self.text.splitlines()[0] if self.text else ""

    def chunks(self) -> list[str]:
        """The block's steps: runs of lines separated by a blank line."""
        return [chunk.strip("\n") for chunk in re.split(r"\n\s*\n", self.text) if chunk.strip()]


def scan(path: Path) -> tuple[list[Block], list[str]]:
    """The fenced blocks of a Markdown file (list-indented ones dedented) and the inline
    code spans outside them."""
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    prose: list[str] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence:
            indent = len(fence["indent"])
            end = i + 1
            while not re.match(r"^ *```\s*$", lines[end]):
                end += 1
            text = "\n".join(line[indent:] for line in lines[i + 1 : end])
            blocks.append(Block(path.relative_to(ROOT).as_posix(), i + 1, fence["lang"], text))
            i = end + 1
            continue
        prose.append(lines[i])
        i += 1
    # a span may wrap onto the next line of its paragraph (never across one)
    spans = re.findall(r"`([^`]+)`", "\n".join(prose))
    return blocks, [" ".join(span.split()) for span in spans if "\n\n" not in span]


def all_docs() -> tuple[list[Block], list[str]]:
    """Every block and inline span of README.md and docs/*.md, in reading order."""
    blocks: list[Block] = []
    inline: list[str] = []
    for path in DOCS:
        found, spans = scan(path)
        blocks += found
        inline += spans
    return blocks, inline


def runnable(blocks: list[Block]) -> list[Block]:
    """The blocks this test runs; fails on a command block it neither runs nor excuses."""
    run: list[Block] = []
    unknown: list[str] = []
    for block in blocks:
        if block.lang in NOT_COMMANDS or (block.doc, block.first_line) in NOT_RUN:
            continue
        if block.lang in SHELL or block.lang == "python":
            run.append(block)
        else:
            unknown.append(f"{block.doc}:{block.line} ({block.lang})")
    assert not unknown, f"blocks of an unknown kind: {unknown}"
    return run


# ------------------------------------------------------------------ the shell session


@dataclass
class Answer:
    """What one step printed: the HTTP status of each curl, the JSON documents, the text."""

    statuses: list[int]
    documents: list[Any]
    text: str
    exit_code: int

    def only(self, status: int) -> Any:
        """The one JSON answer of a step with one curl, after checking its status."""
        assert self.statuses == [status], self.text
        assert len(self.documents) == 1, self.text
        return self.documents[0]


def json_documents(text: str) -> list[Any]:
    """Every top-level JSON object or array in `text`, in order."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    i = 0
    while i < len(text):
        if text[i] in "{[":
            try:
                value, end = decoder.raw_decode(text, i)
            except json.JSONDecodeError:
                i += 1
                continue
            found.append(value)
            i = end
        else:
            i += 1
    return found


class Shell:
    """One bash session: the tour's variables and function carry from step to step."""

    def __init__(self, env: dict[str, str]) -> None:
        # stderr joins stdout: `keep_id` shows answers there, and curl its statuses
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin: IO[str] = self.process.stdin
        self.stdout: IO[str] = self.process.stdout

    def run(self, commands: str) -> Answer:
        """Run `commands` as typed and collect what they printed."""
        self.stdin.write(f"{commands}\nprintf '\\n{DONE} %s\\n' $?\n")
        self.stdin.flush()
        lines: list[str] = []
        while True:
            line = self.stdout.readline()
            assert line, "the shell exited:\n" + "".join(lines)
            if line.startswith(DONE):
                break
            lines.append(line)
        text = "".join(lines)
        statuses = [int(code) for code in HTTP.findall(text)]
        documents = json_documents(HTTP.sub("", text))
        return Answer(statuses, documents, text, int(line.split()[1]))

    def var(self, name: str) -> str:
        """A shell variable's value."""
        return self.run(f'printf "%s" "${name}"').text.strip()

    def close(self) -> None:
        self.stdin.close()
        self.process.wait(timeout=30)


# ------------------------------------------------------------------ what each step promises


@dataclass
class Tour:
    """What the steps share: the stack, the partner's view of the API, the shell."""

    stack: Stack
    shell: Shell
    partner: httpx.Client
    keys: dict[str, str]
    tenant: str
    seen: dict[str, str] = field(default_factory=dict)

    def wait_for(self, payment_id: str, statuses: set[str]) -> dict[str, Any]:
        """Poll until the payment reaches one of `statuses` (the deadline only stops a
        hang; no assertion depends on how long it took)."""
        deadline = time.monotonic() + 90
        while True:
            payment: dict[str, Any] = self.partner.get(f"/v1/payments/{payment_id}").json()
            if payment["status"] in statuses:
                return payment
            assert time.monotonic() < deadline, f"{payment_id} stuck in {payment['status']}"
            time.sleep(0.1)


Check = Callable[[Tour, Answer], None]


def setup(tour: Tour, answer: Answer) -> None:
    assert answer.text.strip() == "", answer.text
    assert tour.shell.var("API_KEY") == tour.keys["partner"]
    assert tour.shell.var("OPS_KEY") == tour.keys["ops"]
    assert tour.shell.var("PLATFORM_KEY") == tour.keys["platform"]


def onboarded(tour: Tour, answer: Answer) -> None:
    customer = answer.only(201)
    assert customer["id"].startswith("cus_") and customer["id"] == tour.shell.var("CUS")
    assert customer["kyc"]["status"] == "approved"
    assert customer["kyc"]["risk_tier"] == "low"
    tour.seen["CUS"] = customer["id"]


def account_opened(tour: Tour, answer: Answer) -> None:
    account = answer.only(201)
    assert account["id"] == tour.shell.var("ACC")
    assert (account["customer_id"], account["currency"]) == (tour.seen["CUS"], "EUR")
    assert account["balances"] == {"posted": 0, "pending": 0, "available": 0}
    tour.seen["ACC"] = account["id"]


def funded(tour: Tour, answer: Answer) -> None:
    deposit = answer.only(201)
    assert (deposit["account_id"], deposit["amount"]) == (tour.seen["ACC"], 100_000)
    balances = tour.partner.get(f"/v1/accounts/{tour.seen['ACC']}").json()["balances"]
    assert balances["posted"] == 100_000


def paid(tour: Tour, answer: Answer) -> None:
    payment = answer.only(202)
    assert payment["status"] == "processing" and payment["id"] == tour.shell.var("PAY")
    tour.seen["PAY"] = payment["id"]
    tour.wait_for(payment["id"], {"settled"})


def read_settled(tour: Tour, answer: Answer) -> None:
    assert answer.statuses == [200, 200], answer.text
    payment, account = answer.documents
    assert payment["status"] == "settled"
    assert [s["status"] for s in payment["status_history"]] == [
        "processing",
        "submitted",
        "settled",
    ]
    assert account["balances"]["posted"] == 97_500


def found_by_ops(tour: Tour, answer: Answer) -> None:
    assert answer.exit_code == 0, answer.text
    # the search attribute follows the status through Temporal's visibility store, which
    # may trail the API's read by a moment: ask again (read-only) until it is listed
    deadline = time.monotonic() + 60
    while tour.seen["PAY"] not in answer.text:
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.5)
        answer = tour.shell.run(tour.seen["chunk"])


def paid_a_listed_name(tour: Tour, answer: Answer) -> None:
    payment = answer.only(202)
    tour.seen["PAY"] = payment["id"]
    tour.wait_for(payment["id"], {"in_review"})


def in_review(tour: Tour, answer: Answer) -> None:
    payment = answer.only(200)
    assert payment["status"] == "in_review"
    hits = [(hit["list_name"], hit["matched_name"]) for hit in payment["screening_hits"]]
    assert ("OFAC-SDN", "BANCO NACIONAL DE CUBA") in hits, hits


def approved(tour: Tour, answer: Answer) -> None:
    decided = answer.only(200)
    assert decided["id"] == tour.seen["PAY"]
    assert tour.wait_for(tour.seen["PAY"], {"settled", "failed", "rejected"})["status"] == (
        "settled"
    )


def rule_added(tour: Tour, answer: Answer) -> None:
    rule = answer.only(201)
    assert rule["code"] == "AC04", rule


def paid_a_closed_account(tour: Tour, answer: Answer) -> None:
    payment = answer.only(202)
    tour.seen["PAY"] = payment["id"]
    tour.wait_for(payment["id"], {"failed", "settled", "in_review"})


def rail_rejected(tour: Tour, answer: Answer) -> None:
    payment = answer.only(200)
    assert payment["status"] == "failed"
    assert payment["failure"]["reason_code"] == "AC04"


def ach_paid(tour: Tour, answer: Answer) -> None:
    assert answer.statuses == [201, 201, 202], answer.text
    account, deposit, payment = answer.documents
    assert account["currency"] == "USD" and deposit["amount"] == 50_000
    assert payment["rail"] == "ach" and payment["status"] == "processing"
    tour.seen["PAY"] = payment["id"]
    tour.wait_for(payment["id"], {"submitted"})


def clock_moved(tour: Tour, answer: Answer) -> None:
    moved = answer.only(200)
    assert "now" in moved, moved
    tour.wait_for(tour.seen["PAY"], {"settled", "failed", "returned"})


def ach_settled(tour: Tour, answer: Answer) -> None:
    assert answer.only(200)["status"] == "settled"


def ops_cli(tour: Tour, answer: Answer) -> None:
    assert answer.exit_code == 0, answer.text
    lines = answer.text
    # `list`: newest change first across tenants, so this tour's payments may be behind
    # other tests' here; every row it shows is settled, and its count closes it
    listing, counted, shown = re.split(r"^(\d+) payment\(s\)$", lines, maxsplit=1, flags=re.M)
    rows = [row.split() for row in listing.strip().splitlines()]
    assert rows and len(rows) == int(counted) <= 5, lines
    assert all(row[0].startswith("pay_") and row[1] == "settled" for row in rows), lines
    # `show`: this tour's ACH payment, its timeline
    assert shown.lstrip().startswith(tour.seen["PAY"]), lines
    assert "processing" in shown and "submitted" in shown and "settled" in shown
    assert "OK: ledger verified" in lines
    assert "OK: audit trail verified" in lines
    assert "partner-app" in lines and "ops-olga" in lines  # the tenant's keys
    # `settings`: the values this stack runs with, secrets masked
    settings = tour.stack.settings
    assert re.search(rf"^PAYMENTS_API_PORT +api\.port +{settings.api.port}$", lines, re.M), lines
    assert re.search(r"^PAYMENTS_RAIL_CALLBACK_SECRET +\S+ +<set>$", lines, re.M), lines
    assert settings.rails.callback_secret not in lines


def workflows_counted(tour: Tour, answer: Answer) -> None:
    assert answer.exit_code == 0, answer.text
    assert re.search(r"Total: \d+", answer.text), answer.text


def python_tour(tour: Tour, answer: Answer) -> None:
    raise AssertionError("the Python tour runs in its own interpreter (run_python)")


# (a text the step contains, its check), in the order of the documents
STEPS: list[tuple[str, Check]] = [
    ("API=http://127.0.0.1:8000", setup),
    ("# 1. onboard a customer", onboarded),
    ("# 2. open a EUR account", account_opened),
    ("# 3. fund it", funded),
    ("# 4. pay 25.00 EUR by SEPA", paid),
    ("# 5. read its status", read_settled),
    ("# 6. find it the way ops do", found_by_ops),
    ("Banco Nacional de Cuba", paid_a_listed_name),
    ('# a moment later: "in_review"', in_review),
    ("# ops approve", approved),
    ("/v1/admin/rules", rule_added),
    ("payment-$ACC-closed", paid_a_closed_account),
    ('# a moment later: "failed"', rail_rejected),
    ('"rail\\":\\"ach\\"', ach_paid),
    ("clock/advance", clock_moved),
    ('# a moment later: "settled"', ach_settled),
    (".venv/bin/payments list --status settled", ops_cli),
    # docs/versioning.md: when a patch may be deprecated, and when deleted
    ('ExecutionStatus="Running"', workflows_counted),
    ("<deploy time of the deprecation>", workflows_counted),
]


def substitute(chunk: str, tour: Tour, keys_file: Path) -> str:
    """The test stack's values for the lines that name `make dev`'s, and for the
    placeholders of docs/versioning.md's checks (its namespace and a deploy time)."""
    settings = tour.stack.settings
    values = {
        "API": settings.api.url,
        "BANK": settings.rails.bank_url,
        "KEYS": str(keys_file),
        "TENANT": tour.tenant,
    }
    for name, value in values.items():
        chunk = re.sub(rf"^{name}=\S+$", f"{name}={value}", chunk, flags=re.MULTILINE)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    chunk = re.sub(r"<deploy time of [^>]*>", now, chunk)
    return chunk.replace("--namespace payments", f"--namespace {settings.temporal.namespace}")


def tour_settings_as_written() -> None:
    """The tour's first lines name `make dev`'s defaults, complete URLs."""
    readme = (ROOT / "README.md").read_text()
    for line in (
        "API=http://127.0.0.1:8000",
        "BANK=http://127.0.0.1:8100",
        "KEYS=.data/dev-keys.json",
        "TENANT=ten_dev",
    ):
        assert f"\n{line}\n" in readme, f"the tour no longer starts with {line}"


# ------------------------------------------------------------------ the tests


def test_every_url_in_the_readme_is_complete() -> None:
    """`:8100/v1/...` is not a URL for curl 7.88 (exit 3, nothing done)."""
    for path in DOCS:
        text = path.read_text()
        shorthand = re.findall(r"(?<![\w/.])(:\d{2,5}/\S*)", text)
        assert not shorthand, f"{path.name}: incomplete URLs {shorthand}"
        # a host and port with a path but no scheme: curl guesses, a browser searches
        schemeless = re.findall(r"(?<![/\w.@])((?:127\.0\.0\.1|localhost):\d+/\S*)", text)
        assert not schemeless, f"{path.name}: URLs without http:// {schemeless}"


def test_every_make_target_and_module_named_exists() -> None:
    """`make X` names a target of the Makefile; `python -m X` a module of this checkout."""
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+(?: [\w-]+)*):", makefile, flags=re.MULTILINE))
    known = {name for line in targets for name in line.split()}
    _, inline = all_docs()
    for span in inline:
        if match := re.match(r"^make ([\w-]+)", span):
            assert match[1] in known, f"`{span}`: no such make target"
        if match := re.match(r"^python -m ([\w|]+)$", span):
            for module in match[1].split("|"):
                assert (ROOT / module / "__main__.py").exists(), f"`{span}`: no {module}"


def test_every_command_is_run_or_excused() -> None:
    """The static half of the doc test: no block or inline command is left unaccounted for
    (the stack test below runs them)."""
    blocks, inline = all_docs()
    run = runnable(blocks)
    chunks = [chunk for block in run if block.lang in SHELL for chunk in block.chunks()]
    assert_steps_match(chunks)
    commands = [line.strip() for chunk in chunks for line in chunk.splitlines()]
    unaccounted = [
        span
        for span in inline
        if INLINE_COMMAND.match(span)
        and span not in INLINE_NOT_RUN
        and not any(
            synopsis(span).match(command.removeprefix(".venv/bin/")) for command in commands
        )
    ]
    assert not unaccounted, f"inline commands neither run nor excused: {unaccounted}"
    stale = set(INLINE_NOT_RUN) - set(inline)
    assert not stale, f"INLINE_NOT_RUN names commands the documents no longer have: {stale}"
    stale_blocks = set(NOT_RUN) - {(b.doc, b.first_line) for b in blocks}
    assert not stale_blocks, f"NOT_RUN names blocks the documents no longer have: {stale_blocks}"


def synopsis(span: str) -> re.Pattern[str]:
    """An inline command as a pattern over the commands run: its placeholders (`pay_…`,
    `T`, `KEY_ID`, `<…>`, `{…}`) match any word, its `[optional]` parts may be left out."""
    words = []
    for word in re.sub(r" \[[^\]]*\]", "", span).split(" "):
        placeholder = re.fullmatch(r"[a-z]+_…|[A-Z][A-Z_]*|<[^>]*>|\{[^}]*\}", word)
        words.append(r"\S+" if placeholder else re.escape(word))
    return re.compile(" ".join(words))


def assert_steps_match(chunks: list[str]) -> None:
    """Each chunk of the shell blocks is the next step of STEPS, and each step has one."""
    for index, chunk in enumerate(chunks):
        assert index < len(STEPS), f"no step checks this command (add one to STEPS):\n{chunk}"
        marker, _ = STEPS[index]
        assert marker in chunk, (
            f"step {index} expected a chunk containing {marker!r}; the documents have:\n{chunk}"
        )
    assert len(chunks) == len(STEPS), f"steps without a command: {STEPS[len(chunks) :]}"


@pytest.fixture
def tour(stack: Stack) -> Iterator[Tour]:
    """A fresh tenant with the three keys the tour reads, made by the documented CLI, and a
    shell whose curl reports each answer's status."""
    tenant = f"ten_{uuid.uuid4().hex[:12]}"
    env = settings_env(stack.settings)
    cli = str(Path(sys.executable).parent / "payments")
    keys = {}
    for role, owner, name, scopes in (
        ("partner", tenant, "partner-app", "payments:write,payments:read"),
        ("ops", tenant, "ops-olga", "ops,payments:read"),
        # the platform operator funds the tenant's accounts (`make dev`'s ten_platform)
        ("platform", f"{tenant}_platform", "platform-pat", "platform,payments:read"),
    ):
        made = subprocess.run(
            [cli, "keys", "create", "--tenant", owner, "--name", name, "--scopes", scopes],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        keys[role] = made.stdout.strip().splitlines()[-1]
    with tempfile.TemporaryDirectory(prefix="readme-tour-") as scratch:
        home = Path(scratch)
        # %{stderr}: the status goes where `$(…)` does not capture it (curl >= 7.63)
        (home / ".curlrc").write_text('write-out = "%{stderr}\\n@@HTTP %{http_code}\\n"\n')
        (home / "dev-keys.json").write_text(json.dumps(keys))
        env |= {
            "CURL_HOME": str(home),
            "TEMPORAL_ADDRESS": stack.settings.temporal.address,
            "TEMPORAL_NAMESPACE": stack.settings.temporal.namespace,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
        }
        shell = Shell(env)
        with httpx.Client(
            base_url=stack.settings.api.url,
            headers={"Authorization": f"Bearer {keys['partner']}"},
            timeout=30,
        ) as partner:
            yield Tour(stack, shell, partner, keys, tenant, {"KEYS": str(home / "dev-keys.json")})
        shell.close()


def test_the_readme_and_docs_commands_run_as_written(tour: Tour) -> None:
    """Every shell block, in order, in one session: each step's answer is what the text
    promises. Prints how many commands ran."""
    tour_settings_as_written()
    blocks, _ = all_docs()
    run = runnable(blocks)
    chunks = [chunk for block in run if block.lang in SHELL for chunk in block.chunks()]
    assert_steps_match(chunks)
    keys_file = Path(tour.seen["KEYS"])
    commands = 0
    for chunk, (_, check) in zip(chunks, STEPS, strict=True):
        tour.seen["chunk"] = substitute(chunk, tour, keys_file)
        answer = tour.shell.run(tour.seen["chunk"])
        try:
            check(tour, answer)
        except AssertionError as failed:
            raise AssertionError(
                f"{failed}\n--- the step:\n{chunk}\n--- it printed:\n{answer.text}"
            ) from None
        commands += count_commands(chunk)
    print(f"\nREADME/docs: {commands} commands in {len(chunks)} steps ran as written")


def count_commands(chunk: str) -> int:
    """Commands in a chunk: lines that start outside a comment, a quoted string left open
    by the line before, or a line continued by a trailing backslash."""
    count = 0
    quote = ""  # the quote character a string spanning lines was opened with
    continued = False
    for line in chunk.splitlines():
        stripped = line.strip()
        if not quote and not continued and stripped and not stripped.startswith("#"):
            count += 1
        escaped = False
        for char in line:
            if escaped:
                escaped = False
            elif char == "\\" and quote != "'":
                escaped = True
            elif quote and char == quote:
                quote = ""
            elif not quote and char in "'\"":
                quote = char
            elif not quote and char == "#":
                break  # a comment to the end of the line
        continued = not quote and stripped.endswith("\\")
    return count


def test_the_python_tour_runs_as_written(tour: Tour) -> None:
    """The README's tour in Python, with the partner client, against the stack: the same
    promises as the shell tour, and the iterator pages through both payments."""
    blocks, _ = all_docs()
    python = [block for block in runnable(blocks) if block.lang == "python"]
    assert len(python) == 1, [f"{b.doc}:{b.line}" for b in python]
    source = python[0].text
    for name, value in (("API", tour.stack.settings.api.url), ("KEYS", tour.seen["KEYS"])):
        written = re.compile(rf'^{name} = "[^"]*"$', re.MULTILINE)
        assert written.search(source), f"the Python tour no longer sets {name}"
        source = written.sub(f"{name} = {json.dumps(value)}", source)
    done = subprocess.run(
        [sys.executable, "-c", source], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    assert lines[0][0] == "customer" and lines[0][2] == "approved", done.stdout
    payments = [line for line in lines if line[0] == "payment"]
    assert [status for _, _, status in payments] == ["settled", "settled"], done.stdout
    assert ["posted", "95000"] in lines, done.stdout
    listed = [line for line in lines if line[0] == "listed"]
    # newest first, one page each
    assert [pid for _, pid, _ in listed] == [pid for _, pid, _ in reversed(payments)]
    print(f"\nREADME: the Python tour ran ({len(source.splitlines())} lines)")


def test_the_python_tour_type_checks(tmp_path: Path) -> None:
    """The tour in Python passes mypy --strict with the client's types: what a partner's
    type checker would say of the README's example."""
    blocks, _ = all_docs()
    (python,) = [block for block in runnable(blocks) if block.lang == "python"]
    snippet = tmp_path / "tour.py"
    snippet.write_text(python.text + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(snippet)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
