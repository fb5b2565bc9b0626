"""The one settings object of the platform (DESIGN §8 convention 5).

Every process (API, worker, bank simulator, CLI, dev stack) reads the same `Settings`, so a
port or path is changed in exactly one place: an environment variable `PAYMENTS_<FIELD>`
or a `.env` file.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


# The OFAC snapshots (public-domain US Treasury data) shipped inside the repository for dev,
# tests and benchmarks; their provenance is in compliance/data/sanctions/README.md. Production
# points `sanctions_dir` or `sanctions_source` at its own copy of the current lists.
BUNDLED_SANCTIONS = PROJECT_ROOT / "compliance" / "data" / "sanctions"


DEV_MARKER = PROJECT_ROOT / ".data" / "dev.env"


class Settings(BaseSettings):
    """Configuration for every component; defaults run the embedded dev stack."""

    # `make dev` marks its checkout with DEV_MARKER, so that `payments` commands in a second
    # shell know they talk to the dev stack; the environment still overrides it
    model_config = SettingsConfigDict(
        env_prefix="PAYMENTS_", env_file=(".env", DEV_MARKER), extra="ignore"
    )

    # `production` (the default) refuses published secrets (kernel/environment.py); `dev`
    # is for `make dev`, the tests and the benchmarks
    env: Literal["dev", "production"] = "production"

    # where the embedded dev stack keeps PostgreSQL, Temporal's SQLite file and the simulator
    data_dir: Path = PROJECT_ROOT / ".data"

    # PostgreSQL (embedded in dev; any PostgreSQL >= 15 in production)
    postgres_port: int = 55432
    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:55432/payments"

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233
    task_queue: str = "payments"
    # which build this worker is (the image tag in production); with versioning on, each
    # workflow stays on the build that started it (PINNED) until it completes
    worker_build_id: str = "dev"
    worker_versioning: bool = False
    # worker tuning: how much one process runs at once
    worker_max_concurrent_activities: int = 100
    worker_max_concurrent_workflow_tasks: int = 100
    # which task queues this worker polls ("all" or a comma list of queue roles)
    worker_queues: str = "all"
    # payments schedule activities on per-role queues (payments-ledger, -rails, -compliance),
    # each served by its own worker Deployment; off: on the payment's own queue, where an
    # all-in-one worker runs them without a round trip through a second queue. On by default,
    # as the payment workflow's input is: it works with any worker layout (an all-in-one
    # worker polls the role queues too), while off strands activities unless every worker
    # runs every role; the all-in-one stacks (make dev, compose, tests) switch it off.
    split_activity_queues: bool = True
    # the worker's Prometheus endpoint (Temporal SDK metrics); 0 switches it off
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = 9464

    # API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_max_body_bytes: int = 64 * 1024
    # default per-key limit; a key may carry its own
    api_rate_limit_per_second: int = 100
    # an idempotent request still "in flight" after this long is taken to have crashed
    idempotency_takeover_seconds: float = 60.0
    # idempotency records are purged this long after their request (`payments purge`); the
    # key of an object older than this answers 409 `idempotency_key_expired`, never a
    # second object
    idempotency_retention_seconds: float = 24 * 3600.0
    # a deposit above this amount (minor units, any currency) waits for a second ops
    # principal's approval before anything is credited (four-eyes)
    deposit_review_threshold: int = 10_000_000
    # events and their webhook deliveries are purged this long after the event (webhooks
    # retry for 3 days, well within it)
    event_retention_seconds: float = 30 * 24 * 3600.0
    # rows deleted per purge transaction: short transactions, short locks
    purge_batch_size: int = 1_000

    # bank simulator, and how it reaches us back
    banksim_host: str = "127.0.0.1"
    banksim_port: int = 8100
    banksim_url: str = "http://127.0.0.1:8100"
    banksim_callback_url: str = "http://127.0.0.1:8000/v1/rails/sepa/callbacks"
    banksim_settle_delay_seconds: float = 1.0
    rail_callback_secret: str = "dev-rail-callback-secret"  # noqa: S105 (dev default)
    # accepted clock skew between the simulator's signature timestamp and ours
    rail_callback_tolerance_seconds: int = 300
    # fallback poll of the rail when no callback arrives
    rail_poll_interval_seconds: float = 30.0

    # --- bank simulator: ACH, clock, callbacks, statements (#5; owned by banksim/) ---
    # where the simulator posts ACH settlement notices (JSON) and return files (NACHA)
    banksim_ach_callback_url: str = "http://127.0.0.1:8000/v1/rails/ach/callbacks"
    banksim_ach_returns_url: str = "http://127.0.0.1:8000/v1/rails/ach/returns"
    # The simulated bank's FedACH cut-offs (HH:MM,… local time of banksim_ach_timezone, Fed
    # business days). The bank's own schedule, apart from `ach_cutoffs` (the platform's
    # knowledge of it), so a test can make the two disagree as they can in life.
    banksim_ach_cutoffs: str = "10:30,14:45,16:45"
    banksim_ach_timezone: str = "America/New_York"
    # simulator seconds between settlement and a return (ACH return file, SEPA booked return)
    banksim_ach_return_delay_seconds: float = 3600.0
    banksim_sepa_return_delay_seconds: float = 3600.0
    # callback delivery: attempts per start of the simulator, first backoff (doubling, <= 30 s)
    banksim_callback_max_attempts: int = 10
    banksim_callback_backoff_seconds: float = 0.5
    # the platform's ACH settlement account at the bank, as camt.053 statements name it
    banksim_ach_account_number: str = "4000123456"
    # --- end bank simulator block ---

    # the platform's own account at the bank: the debtor side of every SEPA message
    sepa_debtor_iban: str = "DE89370400440532013000"
    sepa_debtor_bic: str = "COBADEFFXXX"

    # webhooks: first retry after this long, doubling up to an hour, for three days
    webhook_retry_initial_seconds: float = 5.0
    # webhook URLs may name loopback, private, link-local... addresses (DESIGN §9): only
    # `make dev`, the tests and the benchmarks, whose receivers listen on loopback
    webhook_allow_private_networks: bool = False
    # enabled endpoints a tenant may have at once (each event fans out to every one)
    webhook_max_endpoints_per_tenant: int = 16
    # after a secret rotation, how long deliveries are signed with the previous secret too
    webhook_secret_rotation_overlap_seconds: float = 86400.0
    # one delivery: to connect, between two reads of the answer, and for the whole exchange
    # (with the guard's 5 s DNS look-up, within the activity's 30 s start-to-close)
    webhook_connect_timeout_seconds: float = 5.0
    webhook_read_timeout_seconds: float = 10.0
    webhook_total_timeout_seconds: float = 20.0

    # Temporal payload encryption (AES-256-GCM): "id:<base64 32 bytes>,…" and the current id.
    # The default is a published development key: set real keys outside dev.
    payload_keys: str = "dev-2026-11:ZGV2LW9ubHktcGF5bG9hZC1rZXktbm90LXNlY3JldCE="
    payload_key_id: str = "dev-2026-11"
    # who may use the codec server (the Web UI's origin for CORS)
    temporal_ui_origin: str = "http://127.0.0.1:8233"
    # dev convenience: the codec server trusts callers on this machine without a key (the
    # dev stack turns it on; production refuses it)
    codec_allow_loopback: bool = False

    # OpenTelemetry traces, exported over OTLP/HTTP when enabled
    otel_enabled: bool = False
    otel_exporter_otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"

    # compliance
    sanctions_dir: Path = BUNDLED_SANCTIONS / "ofac-2021"

    # --- sanctions name matching (#4; owned by the screening engine) ---
    # name-match scores (0..1) at which a hit goes to review / is treated as a confirmed
    # match; defaults = compliance.matcher.MatcherSettings, chosen with `make bench-screening`
    # (pass them as MatcherSettings.with_thresholds(review, block))
    screening_review_threshold: float = 0.86
    screening_block_threshold: float = 0.98
    # POST /v1/screenings calls per API key per minute (every call is also audited)
    screening_rate_limit_per_minute: int = 30

    # --- customer onboarding and watch-list refresh (#4; owned by onboarding) ---
    # where the sanctions lists come from: a directory of OFAC CSV files (sdn.csv, alt.csv,
    # add.csv) or an http(s) URL serving them; empty means `sanctions_dir`
    sanctions_source: str = ""
    # the PEP list: a CSV file path or http(s) URL; empty means the bundled fictional sample
    pep_source: str = ""
    # how often the list refresh schedule loads the sources again
    list_refresh_interval_seconds: float = 3600.0
    # how often a worker compares the recorded current list versions with the ones it loaded
    list_version_check_seconds: float = 5.0
    # customers per page (activity) when every customer is screened again after a list update
    rescreen_page_size: int = 200
    # a review (customer KYC or payment) left waiting this long is escalated (flagged; never
    # decided by time)
    review_escalation_seconds: float = 86400.0
    # how long POST /v1/customers waits for the KYC decision before answering `pending`
    onboarding_wait_seconds: float = 5.0
    # --- end onboarding block ---

    # payment velocity limits (minor units per rolling 24 h, by KYC risk tier)
    limit_daily_amount_low: int = 5_000_000
    limit_daily_amount_medium: int = 2_000_000
    limit_daily_amount_high: int = 500_000
    limit_daily_count_low: int = 100
    limit_daily_count_medium: int = 50
    limit_daily_count_high: int = 10

    # ACH origination: the platform's bank (ODFI) and its cut-off windows (America/New_York,
    # Federal Reserve business days). A positive `ach_window_seconds` replaces the cut-offs
    # with windows of that length (dev and tests, where a day of cut-offs cannot be waited).
    ach_odfi_routing: str = "091000019"
    ach_company_id: str = "1234567890"
    ach_company_name: str = "PAYMENTS PLATFORM"
    ach_cutoffs: str = "10:30,14:45,16:45"
    ach_submit_lead_seconds: float = 300.0
    ach_window_seconds: float = 0.0
    # attempts at sending a window's file before the batch asks the bank what it has of it
    ach_submit_max_attempts: int = 8
    ach_return_window_seconds: float = 2 * 86400.0
    # SEPA: a settled payment waits this long for the creditor bank's return (pacs.004); the
    # rulebook gives it 3 TARGET business days, 5 calendar days cover weekends and holidays.
    # 0 ends a payment at settlement (a later return is then found by reconciliation only).
    sepa_return_window_seconds: float = 5 * 86400.0
    # reconciliation of yesterday's bank statements (UTC cron)
    reconciliation_cron: str = "30 6 * * *"

    # --- watch-list refresh guards (#17 item 5; owned by list refresh) ---
    # A refresh refuses a new list version that fails any guard: the current version stays
    # loaded everywhere, the refusal is audited and counted (payments_list_refresh_refused).
    # The sources themselves are `sanctions_source` / `pep_source` above: settings only,
    # never a workflow input. A new version with fewer entities than (1 - share) x the current
    # one's is refused: a publisher's list never loses a fifth of its entries in one edition,
    # a truncated download or a tampered mirror does.
    list_max_shrink_share: float = Field(default=0.2, ge=0.0, le=1.0)
    # fewer entities than this is refused whatever the current version had (the bundled OFAC
    # editions have 7,379 and 8,976; the live SDN list well over 10,000)
    sanctions_list_min_entities: int = Field(default=1000, ge=1)
    # an empty PEP list is refused; production sets its provider's size
    pep_list_min_entities: int = Field(default=1, ge=1)
    # when set, the SHA-256 (hex) a new version's bytes must have (sanctions: sdn.csv, alt.csv
    # and add.csv concatenated, `cat sdn.csv alt.csv add.csv | sha256sum`; PEP: the CSV file)
    sanctions_list_sha256: str = Field(default="", pattern=r"^([0-9a-fA-F]{64})?$")
    pep_list_sha256: str = Field(default="", pattern=r"^([0-9a-fA-F]{64})?$")
    # --- end watch-list refresh guards ---

    @property
    def banksim_db_path(self) -> Path:
        """The simulator's own storage (a bank's records are not ours)."""
        return self.data_dir / "banksim.db"

    @property
    def api_url(self) -> str:
        """Base URL of the API as the other local processes reach it."""
        return f"http://{self.api_host}:{self.api_port}"


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings (cached: read the environment once)."""
    return Settings()
