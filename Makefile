# Two commands on a fresh machine: `make dev` runs the platform, `make test` passes the suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: drill-restore client risk-register prometheus-tools chaos dev test install lint typecheck fmt unit component integration e2e clean bench-ledger record-histories bench load bench-screening bench-screening-disguise bench-volume scan-deploy bench-batch bench-audit

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

# the partner client (clients/python) is its own package; the tests import it
$(STAMP): $(BIN)/python pyproject.toml clients/python/pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e clients/python
	touch $(STAMP)

install: $(STAMP)

dev: $(STAMP)
	$(BIN)/python -m ops.devstack

# promtool and alertmanager (Debian packages, not on PyPI) for the alert-rule tests: installed
# when missing (as root; otherwise it says what to install)
prometheus-tools:
	bash .ci/install-prometheus-tools.sh

test component: prometheus-tools

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -p no:cacheprovider -q --durations=15

# one tier at a time (tests/conftest.py TIERS): what each costs is in its name
unit component integration e2e: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider -q --durations=10 -m $@

# IaC scan of deploy/ with checkov (docs/compose.md "Scanner"), in a virtualenv of its own:
# its dependencies (boto3, networkx, aiohttp …) stay out of the project's. Skipped checks and
# why: deploy/checkov.yaml.
SCAN_VENV := .venv-scan
CHECKOV := $(SCAN_VENV)/bin/checkov
CHECKOV_VERSION := 3.3.30

$(CHECKOV):
	$(PYTHON) -m venv $(SCAN_VENV) || python3 -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)

scan-deploy: $(CHECKOV)
	$(CHECKOV) --config-file deploy/checkov.yaml --framework kubernetes -d deploy/k8s -d deploy/k8s-without-keda
	$(CHECKOV) --config-file deploy/checkov.yaml --framework dockerfile -f Dockerfile
	$(CHECKOV) --config-file deploy/checkov.yaml --framework secrets -d deploy -f docker-compose.yml

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

fmt: $(STAMP)
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

# chaos at scale: two workers, 300 payments, workers/Temporal/PostgreSQL killed, the bank
# failing; CHAOS_SEED=<seed> replays a run (a short version runs inside `make test`)
chaos: $(STAMP)
	CHAOS_PAYMENTS=$${CHAOS_PAYMENTS:-300} $(BIN)/python -m pytest -p no:cacheprovider -q -s tests/chaos

# the restore drill at full size (docs/runbooks/restore.md): payments flowing, a base backup,
# more payments, the database deleted, restored to a point before the last ones, healed;
# prints RPO and RTO (a short version runs inside `make test`)
drill-restore: $(STAMP)
	DRILL_PAYMENTS=$${DRILL_PAYMENTS:-40} $(BIN)/python -m pytest -p no:cacheprovider -q -s tests/chaos/test_restore_drill.py

bench-ledger: $(STAMP)
	$(BIN)/python bench/ledger_bench.py

# audit appends, 32 writers of 8 tenants: one chain for all against a chain per tenant
# (issue #20); e.g. make bench-audit AUDIT_BENCH_ARGS="--rounds 6 --seconds 5"
bench-audit: $(STAMP)
	$(BIN)/python bench/audit_bench.py $(AUDIT_BENCH_ARGS)

# reads, per-payment writes, verification and storage at 10k and 100k payments, and their
# ratio (issue #23); e.g. make bench-volume VOLUME_ARGS="--sizes 10000,100000,1000000"
bench-volume: $(STAMP)
	$(BIN)/python bench/volume.py $(VOLUME_ARGS)

# sanctions screening: our matcher against nomenklatura's logic-v2 and ofac (installed here only)
bench-screening: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench-screening]'
	$(BIN)/python bench/screening_bench.py

# look-alike letters, fullwidth forms, invisible characters: listed names found, common names hit
bench-screening-disguise: $(STAMP)
	$(BIN)/python bench/screening_disguise.py

# payments through the API against bare Temporal, side by side (docs/performance.md);
# N payments as one batch against N individual POSTs (issue #19);
# e.g. make bench-batch BATCH_ARGS="--items 10000"
bench-batch: $(STAMP)
	$(BIN)/python bench/batch.py $(BATCH_ARGS)

# e.g. make bench BENCH_ARGS="--payments 200 --concurrency 16"
bench: $(STAMP)
	$(BIN)/python bench/workflow_bench.py $(BENCH_ARGS)

# the API at a target rate with a realistic mix; e.g. make load LOAD_ARGS="--rate 10 --duration 120"
# (add --connect to drive a running `make dev` instead of a private stack)
load: $(STAMP)
	$(BIN)/python bench/load.py $(LOAD_ARGS)

# record the histories of every long-running workflow's paths; the current generation is
# archived first (renamed v<N>_*, never deleted: those are the workflows still running
# somewhere), and every generation keeps replaying in tests/replay (docs/versioning.md)
record-histories: $(STAMP)
	$(BIN)/python -m tests.replay.generations
	RECORD_HISTORIES=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/workflows

# the partner client's copy of the OpenAPI document and its typed models, from the app's
# document; tests/unit/test_client_drift.py fails until this runs after an API change
client: $(STAMP)
	$(BIN)/python -m ops.client_codegen

clean:
	rm -rf .data

# docs/risk-register.md from docs/risk-register.yaml (a unit test fails when it is stale)
risk-register: $(STAMP)
	$(BIN)/python -m ops.risk_register
