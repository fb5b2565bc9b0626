"""The one settings object of the platform, in sections (DESIGN §8 convention 5).

Every process (API, worker, bank simulator, CLI, dev stack) reads the same `Settings`, so a
port or path is changed in exactly one place: an environment variable `PAYMENTS_<NAME>` or a
`.env` file. The object is a set of sections (`settings.api.port`, `settings.ach.cutoffs`),
each owned by the part of the platform it configures; the bank simulator has its own
(`settings.banksim`). A section's field is read from `PAYMENTS_<SECTION>_<FIELD>` unless it
names its variable: the variables kept the names they had before the sections existed, so no
deployment had to change (`docs/configuration` in the README lists them).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


# The OFAC snapshots (public-domain US Treasury data) shipped inside the repository for dev,
# tests and benchmarks; their provenance is in compliance/data/sanctions/README.md. Production
# points `lists.sanctions_dir` or `lists.sanctions_source` at its own copy of the current lists.
BUNDLED_SANCTIONS = PROJECT_ROOT / "compliance" / "data" / "sanctions"


DEV_MARKER = PROJECT_ROOT / ".data" / "dev.env"

# `make dev` marks its checkout with DEV_MARKER, so that `payments` commands in a second shell
# know they talk to the dev stack; the environment still overrides it
_ENV_FILES = (".env", DEV_MARKER)

# Secrets mounted as files (docker compose `secrets:`, a Kubernetes Secret volume): the file
# `<SECRETS_DIR>/PAYMENTS_PAYLOAD_KEYS` sets the setting the variable would, so a secret never
# has to sit in a process's environment (readable in /proc, `docker inspect`, crash dumps).
# A variable that is set still wins over the file, as it wins over `.env`.
SECRETS_DIR = Path("/run/secrets")


def secret_list(configured: str) -> list[str]:
    """A secret setting that takes several while one rotates: comma-separated, current first."""
    return [part.strip() for part in configured.split(",") if part.strip()]


def _var(default: Any, variable: str) -> Any:
    """A field read from the environment variable `variable`, set in code by its field name."""
    return Field(default, validation_alias=variable)


class Section(BaseSettings):
    """A group of settings read from the environment under `prefix`."""

    prefix: ClassVar[str] = "PAYMENTS_"
    model_config = SettingsConfigDict(
        env_prefix="PAYMENTS_", env_file=_ENV_FILES, extra="ignore", validate_by_name=True
    )

    def __init__(self, **values: Any) -> None:
        # pydantic-settings ignores names it does not know (the environment and .env hold
        # every section's variables), so a misspelled or moved setting would vanish silently
        unknown = {name for name in values if not name.startswith("_")} - set(
            type(self).model_fields
        )
        if unknown:
            raise TypeError(f"{type(self).__name__} has no setting {sorted(unknown)}")
        super().__init__(**values)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # SECRETS_DIR is looked for when the settings are read, not fixed in model_config: a
        # machine without it (dev, tests) gets no "directory does not exist" warning on every
        # read, and a test can point it at a directory of its own
        if SECRETS_DIR.is_dir():
            file_secret_settings = SecretsSettingsSource(settings_cls, secrets_dir=SECRETS_DIR)
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    def env_items(self) -> Iterator[tuple[str, Any]]:
        """(environment variable, value) for every field: how a child process reads it."""
        for name, field in type(self).model_fields.items():
            alias = field.validation_alias
            variable = alias if isinstance(alias, str) else f"{self.prefix}{name}".upper()
            yield variable, getattr(self, name)

    def updated(self, changes: Mapping[str, Any]) -> Self:
        """A validated copy with `changes` applied (unknown names refused, not ignored)."""
        unknown = set(changes) - set(type(self).model_fields)
        if unknown:
            raise KeyError(f"{type(self).__name__} has no setting {sorted(unknown)}")
        # model_validate does not read the environment again: only `changes` differ
        return type(self).model_validate({**self.model_dump(), **changes})


def _prefixed(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix)


class DatabaseSettings(Section):
    """PostgreSQL: embedded in dev, any PostgreSQL >= 15 in production."""

    prefix: ClassVar[str] = "PAYMENTS_DATABASE_"
    model_config = _prefixed(prefix)

    url: str = "postgresql+psycopg://postgres@127.0.0.1:55432/payments"
    # the port the embedded dev PostgreSQL listens on
    embedded_port: int = _var(55432, "PAYMENTS_POSTGRES_PORT")
    # a pooled connection is pinged before use only after resting this long (kernel/db.py;
    # 0: before every use); keep it below the time PostgreSQL takes to restart or fail over
    ping_after_idle_seconds: float = 1.0


class TemporalSettings(Section):
    """Where the Temporal frontend is, and the payments' task queue."""

    prefix: ClassVar[str] = "PAYMENTS_TEMPORAL_"
    model_config = _prefixed(prefix)

    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    ui_port: int = 8233
    task_queue: str = _var("payments", "PAYMENTS_TASK_QUEUE")
    # Transport security of every Temporal client (API, workers, CLI, benchmarks). The dev
    # server speaks plain gRPC on loopback; a cluster anyone else can reach must not.
    # `tls` encrypts and checks the server against `tls_ca_path` (system roots when empty);
    # a client certificate and key (mTLS) prove who the client is; `tls_server_name`
    # overrides the name checked in the server's certificate.
    tls: bool = False
    tls_ca_path: str = ""
    tls_cert_path: str = ""
    tls_key_path: str = ""
    tls_server_name: str = ""
    # an API key (Temporal Cloud, or a cluster with an authorizer), sent as a bearer token
    api_key: str = ""


class WorkerSettings(Section):
    """What one worker process runs, and how much of it at once."""

    prefix: ClassVar[str] = "PAYMENTS_WORKER_"
    model_config = _prefixed(prefix)

    # which build this worker is (the image tag in production); with versioning on, each
    # workflow stays on the build that started it (PINNED) until it completes
    build_id: str = "dev"
    versioning: bool = False
    max_concurrent_activities: int = 100
    max_concurrent_workflow_tasks: int = 100
    # which task queues this worker polls ("all" or a comma list of queue roles)
    queues: str = "all"
    # payments schedule activities on per-role queues (payments-ledger, -rails, -compliance),
    # each served by its own worker Deployment; off: on the payment's own queue, where an
    # all-in-one worker runs them without a round trip through a second queue. On by default,
    # as the payment workflow's input is: it works with any worker layout (an all-in-one
    # worker polls the role queues too), while off strands activities unless every worker
    # runs every role; the all-in-one stacks (make dev, compose, tests) switch it off.
    split_activity_queues: bool = _var(True, "PAYMENTS_SPLIT_ACTIVITY_QUEUES")
    # ledger activities' micro-batcher (ledger/batcher.py): holds, posts, voids and returns
    # arriving within this many milliseconds go to the ledger as one batch (at most
    # `ledger_batch_max`); 0 sends each alone
    ledger_batch_window_ms: float = 2.0
    ledger_batch_max: int = 100
    # the worker's Prometheus endpoint (Temporal SDK metrics); 0 switches it off
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464


class ApiSettings(Section):
    """The partner API's listener, limits and idempotency."""

    prefix: ClassVar[str] = "PAYMENTS_API_"
    model_config = _prefixed(prefix)

    host: str = "127.0.0.1"
    port: int = 8000
    # the internal listener: the bank's callbacks and /metrics, on a port partners never
    # reach (only the public port is published); the same port as `port` serves everything
    # on one listener (a development convenience, refused in production)
    internal_host: str = "127.0.0.1"
    internal_port: int = 8001
    max_body_bytes: int = 64 * 1024
    # default per-key limit; a key may carry its own
    rate_limit_per_second: int = 100
    # failed authentications (no key, a wrong or revoked one) per source address per minute
    # in one API process; past it the address is refused (429) until its bucket refills,
    # valid key or not: guessing keys costs time. Behind a proxy the source is the proxy's
    # address unless uvicorn is told to trust its X-Forwarded-For (`forwarded_allow_ips`).
    auth_failures_per_minute: int = 30
    # The proxies (ingress controller, load balancer) whose X-Forwarded-For / -Proto this
    # process believes: comma-separated addresses or networks ("10.0.0.0/8"), "*" for any
    # peer (only when nothing but the proxy can reach the port). Empty (the default): no
    # peer is believed, so the source address is the TCP peer's and a client cannot forge
    # another address to escape the failed-authentication limit. Behind an ingress, name it:
    # otherwise every client shares the ingress's address (and its limit).
    forwarded_allow_ips: str = ""
    # an idempotent request still "in flight" after this long is taken to have crashed
    idempotency_takeover_seconds: float = _var(60.0, "PAYMENTS_IDEMPOTENCY_TAKEOVER_SECONDS")

    # --- outages (issue #24, item 5; docs/runbooks/temporal-down.md, postgres-down.md) ----
    # What a 503 tells the client to wait (`Retry-After`, whole seconds) before sending the
    # request again while Temporal or PostgreSQL is down.
    outage_retry_after_seconds: int = 5
    # The API's Temporal calls: how long the client keeps retrying an unreachable server, and
    # how long one start may take on a server that hangs, before the request is answered 503
    # (the SDK's default retries for 10 s, and waits on a hung server until the keep-alive
    # notices). Webhook delivery starts from workers use the same bound.
    temporal_retry_seconds: float = 3.0
    temporal_rpc_timeout_seconds: float = 5.0

    @property
    def url(self) -> str:
        """Base URL of the API as the other local processes reach it."""
        return f"http://{self.host}:{self.port}"

    @property
    def internal_url(self) -> str:
        """Base URL of the internal listener (the bank's callbacks, metrics)."""
        return f"http://{self.internal_host}:{self.internal_port}"


class RetentionSettings(Section):
    """How long what expires is kept (`payments purge`)."""

    # idempotency records are purged this long after their request; the key of an object
    # older than this answers 409 `idempotency_key_expired`, never a second object
    idempotency_seconds: float = _var(24 * 3600.0, "PAYMENTS_IDEMPOTENCY_RETENTION_SECONDS")
    # events and their webhook deliveries are purged this long after the event (webhooks
    # retry for 3 days, well within it)
    event_seconds: float = _var(30 * 24 * 3600.0, "PAYMENTS_EVENT_RETENTION_SECONDS")
    # monthly partitions of the append-only tables are created this many months ahead by
    # the daily partition-maintenance schedule (a month without one refuses its rows)
    partition_months_ahead: int = _var(3, "PAYMENTS_PARTITION_MONTHS_AHEAD")
    # rows deleted per purge transaction: short transactions, short locks
    purge_batch_size: int = _var(1_000, "PAYMENTS_PURGE_BATCH_SIZE")
    # the personal details of a payment (creditor name, IBAN or account number, remittance
    # text) are erased this long after it closed, and its Temporal payloads' data key shred.
    # AML record-keeping (EU AMLD Art. 40, US BSA 31 CFR 1010.430) asks for 5 years: the
    # default; amount, currency, dates, status and the ledger stay (no personal data).
    payment_details_seconds: float = _var(
        5 * 365 * 86400.0, "PAYMENTS_RETENTION_PAYMENT_DETAILS_SECONDS"
    )
    # what an erasure must keep for AML (the customer's identity and transaction records)
    # is sealed under a legal-hold key of its own and shred this long after the erasure;
    # 0 keeps nothing (a jurisdiction without the obligation)
    legal_hold_seconds: float = _var(5 * 365 * 86400.0, "PAYMENTS_RETENTION_LEGAL_HOLD_SECONDS")


class DepositSettings(Section):
    """Money credited from outside (ops deposits, incoming credits)."""

    prefix: ClassVar[str] = "PAYMENTS_DEPOSIT_"
    model_config = _prefixed(prefix)

    # a deposit above this amount (minor units, any currency) waits for a second ops
    # principal's approval before anything is credited (four-eyes)
    review_threshold: int = 10_000_000


class BatchSettings(Section):
    """Payment batches (`POST /v1/payment-batches`, issue #19)."""

    prefix: ClassVar[str] = "PAYMENTS_BATCH_"
    model_config = _prefixed(prefix)

    # a batch whose total in one currency is above this (minor units) waits in `in_review`
    # for a second principal's approval before any of its payments starts (four-eyes).
    # Each payment still passes its own screening and limits (PAYMENTS_LIMIT_*)
    review_threshold: int = 1_000_000
    # items per batch (JSON, CSV or pain.001)
    max_items: int = 10_000
    # a batch body may be this large (10,000 items of a few hundred bytes each)
    max_body_bytes: int = 16 * 1024 * 1024
    # items the batch workflow starts per activity (a page read from the database)
    page_size: int = 250
    # payments one page starts at a time (each is a transaction and a workflow start)
    start_concurrency: int = 16
    # how often the batch workflow reads its items' statuses while payments run
    progress_interval_seconds: float = 2.0


class ScheduleSettings(Section):
    """Payments on a date (`execute_at`) and payment schedules (issue #19)."""

    prefix: ClassVar[str] = "PAYMENTS_SCHEDULE_"
    model_config = _prefixed(prefix)

    # how far ahead `execute_at` and a schedule's `start_at` may be (a year and a day: the
    # same date next year is allowed)
    max_ahead_days: int = 366
    # the shortest interval a payment schedule may have (`interval`)
    min_interval_seconds: int = 3600


class RailSettings(Section):
    """The platform's side of the bank connection, every rail."""

    prefix: ClassVar[str] = "PAYMENTS_RAIL_"
    model_config = _prefixed(prefix)

    # where the bank's API is (the simulator in dev)
    bank_url: str = "http://127.0.0.1:8100"
    # HMAC secrets of the bank's callbacks (rails/callback_auth.py), comma-separated while
    # one rotates: the bank signs with each, any verifies
    callback_secret: str = "dev-rail-callback-secret"  # noqa: S105 (dev default)
    # HMAC secrets that sign our requests to the bank (rails/bank_auth.py), comma-separated
    # while one rotates; the bank refuses an unsigned submission, file or question
    submission_secret: str = "dev-rail-submission-secret"  # noqa: S105 (dev default)
    # accepted clock skew between the bank's signature timestamp and ours
    callback_tolerance_seconds: int = 300
    # fallback poll of the rail when no callback arrives
    poll_interval_seconds: float = 30.0


class SepaSettings(Section):
    """SEPA credit transfers: the platform's own account, the return window."""

    prefix: ClassVar[str] = "PAYMENTS_SEPA_"
    model_config = _prefixed(prefix)

    # the platform's own account at the bank: the debtor side of every SEPA message
    debtor_iban: str = "DE89370400440532013000"
    debtor_bic: str = "COBADEFFXXX"
    # a settled payment waits this long for the creditor bank's return (pacs.004); the
    # rulebook gives it 3 TARGET business days, 5 calendar days cover weekends and holidays.
    # 0 ends a payment at settlement (a later return is then found by reconciliation only).
    return_window_seconds: float = 5 * 86400.0
    # the rail's deadline for the creditor bank's answer to a recall (camt.056 → camt.029):
    # the rulebook gives it 15 TARGET business days; 21 calendar days cover them. An answer
    # that has not come by then leaves the recall rejected (answer_reason NOAS).
    recall_answer_deadline_seconds: float = 21 * 86400.0
    # once the bank accepted a recall, its funds follow as a pacs.004 (FOCR); none by then
    # marks the recall `funds_overdue_at` (an event and an audit record, for ops to chase the
    # bank) while the workflow keeps waiting, so late funds are still booked
    recall_funds_deadline_seconds: float = 5 * 86400.0
    # the counterpart bank of recalls (the camt.056's assignee) when the creditor gave no BIC
    counterpart_bic: str = "BANKSIMXXXX"


class AchSettings(Section):
    """ACH origination: the platform's bank (ODFI) and its cut-off windows."""

    prefix: ClassVar[str] = "PAYMENTS_ACH_"
    model_config = _prefixed(prefix)

    odfi_routing: str = "091000019"
    company_id: str = "1234567890"
    company_name: str = "PAYMENTS PLATFORM"
    # HH:MM,… America/New_York, Federal Reserve business days. A positive `window_seconds`
    # replaces the cut-offs with windows of that length (dev and tests, where a day of
    # cut-offs cannot be waited).
    cutoffs: str = "10:30,14:45,16:45"
    submit_lead_seconds: float = 300.0
    window_seconds: float = 0.0
    # attempts at sending a window's file before the batch asks the bank what it has of it
    submit_max_attempts: int = 8
    return_window_seconds: float = 2 * 86400.0
    # how long a reversal entry may still be returned once its file was accepted: no return
    # by then and the reversal stands (the funds are booked back)
    reversal_return_window_seconds: float = 2 * 86400.0


class BankSimSettings(Section):
    """The bank simulator's own settings (#5; owned by banksim/): where it listens, how it
    calls the platform back, and how the simulated bank behaves."""

    prefix: ClassVar[str] = "PAYMENTS_BANKSIM_"
    model_config = _prefixed(prefix)

    host: str = "127.0.0.1"
    port: int = 8100
    # where the simulator posts SEPA status reports and returns, ACH settlement notices
    # (JSON) and return files (NACHA)
    callback_url: str = "http://127.0.0.1:8001/v1/rails/sepa/callbacks"
    ach_callback_url: str = "http://127.0.0.1:8001/v1/rails/ach/callbacks"
    ach_returns_url: str = "http://127.0.0.1:8001/v1/rails/ach/returns"
    settle_delay_seconds: float = 1.0
    # The simulated bank's FedACH cut-offs (HH:MM,… local time of ach_timezone, Fed business
    # days). The bank's own schedule, apart from `ach.cutoffs` (the platform's knowledge of
    # it), so a test can make the two disagree as they can in life.
    ach_cutoffs: str = "10:30,14:45,16:45"
    ach_timezone: str = "America/New_York"
    # simulator seconds between settlement and a return (ACH return file, SEPA booked return)
    ach_return_delay_seconds: float = 3600.0
    sepa_return_delay_seconds: float = 3600.0
    # simulator seconds before the bank answers a recall (camt.029) without a rule saying
    recall_answer_delay_seconds: float = 1.0
    # callback delivery: attempts per start of the simulator, first backoff (doubling, <= 30 s)
    callback_max_attempts: int = 10
    callback_backoff_seconds: float = 0.5
    # the platform's ACH settlement account at the bank, as camt.053 statements name it
    ach_account_number: str = "4000123456"


class WebhookSettings(Section):
    """Deliveries to partners' endpoints."""

    prefix: ClassVar[str] = "PAYMENTS_WEBHOOK_"
    model_config = _prefixed(prefix)

    # first retry after this long, doubling up to an hour, for three days
    retry_initial_seconds: float = 5.0
    # webhook URLs may name loopback, private, link-local... addresses (DESIGN §9): only
    # `make dev`, the tests and the benchmarks, whose receivers listen on loopback
    allow_private_networks: bool = False
    # enabled endpoints a tenant may have at once (each event fans out to every one)
    max_endpoints_per_tenant: int = 16
    # after a secret rotation, how long deliveries are signed with the previous secret too
    secret_rotation_overlap_seconds: float = 86400.0
    # one delivery: to connect, between two reads of the answer, and for the whole exchange
    # (with the guard's 5 s DNS look-up, within the activity's 30 s start-to-close)
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 10.0
    total_timeout_seconds: float = 20.0


class CodecSettings(Section):
    """Temporal payload encryption (AES-256-GCM) and the codec server the Web UI calls."""

    prefix: ClassVar[str] = "PAYMENTS_CODEC_"
    model_config = _prefixed(prefix)

    # "id:<base64 32 bytes>,…" and the current id. The default is a published development
    # key: set real keys outside dev.
    payload_keys: str = _var(
        "dev-2026-11:ZGV2LW9ubHktcGF5bG9hZC1rZXktbm90LXNlY3JldCE=", "PAYMENTS_PAYLOAD_KEYS"
    )
    payload_key_id: str = _var("dev-2026-11", "PAYMENTS_PAYLOAD_KEY_ID")
    # who may use the codec server (the Web UI's origin for CORS)
    ui_origin: str = _var("http://127.0.0.1:8233", "PAYMENTS_TEMPORAL_UI_ORIGIN")
    # dev convenience: the codec server trusts callers on this machine without a key (the
    # dev stack turns it on; production refuses it)
    allow_loopback: bool = False
    # The Web UI's users, in production: the UI passes the access token of its OIDC login
    # (`Authorization: Bearer <JWT>`) with every codec call. The codec server checks its
    # signature against the identity provider's keys (`oidc_jwks`: a JWKS file path or an
    # https URL; empty turns JWTs off, leaving API keys), its issuer and audience, then maps
    # claims: `oidc_roles_claim` (a list or a space-separated string) must hold `platform`
    # (any tenant's payloads) or `ops` (the tenant `oidc_tenant_claim` names).
    oidc_jwks: str = ""
    oidc_issuer: str = ""
    oidc_audience: str = ""
    oidc_tenant_claim: str = "payments_tenant"
    oidc_roles_claim: str = "payments_roles"
    # how long a process keeps a customer's data key after reading it: an erasure elsewhere
    # (API, CLI) is complete in every worker within this time
    data_key_cache_seconds: float = 60.0


class TracingSettings(Section):
    """OpenTelemetry traces, exported over OTLP/HTTP when enabled."""

    prefix: ClassVar[str] = "PAYMENTS_OTEL_"
    model_config = _prefixed(prefix)

    enabled: bool = False
    exporter_otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"


class ScreeningSettings(Section):
    """Sanctions name matching (#4; owned by the screening engine) and its reviews."""

    prefix: ClassVar[str] = "PAYMENTS_SCREENING_"
    model_config = _prefixed(prefix)

    # name-match scores (0..1) at which a hit goes to review / is treated as a confirmed
    # match; defaults = compliance.matcher.MatcherSettings, chosen with `make bench-screening`
    # (pass them as MatcherSettings.with_thresholds(review, block))
    review_threshold: float = 0.86
    block_threshold: float = 0.98
    # POST /v1/screenings calls per API key per minute (every call is also audited)
    rate_limit_per_minute: int = 30
    # how long POST /v1/customers waits for the KYC decision before answering `pending`
    onboarding_wait_seconds: float = _var(5.0, "PAYMENTS_ONBOARDING_WAIT_SECONDS")


class ReviewSettings(Section):
    """Four-eyes reviews of payments and customers."""

    prefix: ClassVar[str] = "PAYMENTS_REVIEW_"
    model_config = _prefixed(prefix)

    # a review left waiting this long is escalated (flagged; never decided by time)
    escalation_seconds: float = 86400.0
    # HMAC secrets of review tokens (kernel/review_tokens.py), comma-separated: the first
    # mints, any verifies (rotation). The API and the workers must share them. The default is
    # published: set your own outside dev.
    token_secrets: str = "dev-review-token-secret"  # noqa: S105 (dev default)
    # how long a minted token proves its decision (the API sends it at once)
    token_ttl_seconds: int = 300


class ListSettings(Section):
    """Where the watch lists come from and how often they are loaded again (#4)."""

    prefix: ClassVar[str] = "PAYMENTS_LIST_"
    model_config = _prefixed(prefix)

    # the OFAC lists a worker loads when no refresh has recorded a version yet
    sanctions_dir: Path = _var(BUNDLED_SANCTIONS / "ofac-2021", "PAYMENTS_SANCTIONS_DIR")
    # a directory of OFAC CSV files (sdn.csv, alt.csv, add.csv) or an http(s) URL serving
    # them; empty means `sanctions_dir`
    sanctions_source: str = _var("", "PAYMENTS_SANCTIONS_SOURCE")
    # the PEP list: a CSV file path or http(s) URL; empty means the bundled fictional sample
    pep_source: str = _var("", "PAYMENTS_PEP_SOURCE")
    # how often the list refresh schedule loads the sources again
    refresh_interval_seconds: float = 3600.0
    # how often a worker compares the recorded current list versions with the ones it loaded
    version_check_seconds: float = 5.0
    # customers per page (activity) when every customer is screened again after a list update
    rescreen_page_size: int = _var(200, "PAYMENTS_RESCREEN_PAGE_SIZE")

    # --- refresh guards (#17 item 5; owned by list refresh) ---
    # A refresh refuses a new list version that fails any guard: the current version stays
    # loaded everywhere, the refusal is audited and counted (payments_list_refresh_refused,
    # alert ListRefreshRefused). The sources are the settings above, never a workflow input.
    # A new version with fewer entities than (1 - share) x the current one's is refused: a
    # publisher's list does not lose a fifth of its entries in one edition, a truncated
    # download or a tampered mirror does. (PAYMENTS_LIST_MAX_SHRINK_SHARE)
    max_shrink_share: float = Field(default=0.2, ge=0.0, le=1.0)
    # fewer entities than this is refused whatever the current version had (the bundled OFAC
    # editions have 7,379 and 8,976; the live SDN list well over 10,000)
    sanctions_min_entities: int = Field(default=1000, ge=1)
    # an empty PEP list is refused; production sets its provider's size
    pep_min_entities: int = Field(default=1, ge=1)
    # when set, the SHA-256 (hex) a new version's bytes must have (sanctions: sdn.csv, alt.csv
    # and add.csv concatenated, `cat sdn.csv alt.csv add.csv | sha256sum`; PEP: the CSV file)
    sanctions_sha256: str = Field(default="", pattern=r"^([0-9a-fA-F]{64})?$")
    pep_sha256: str = Field(default="", pattern=r"^([0-9a-fA-F]{64})?$")
    # --- end refresh guards ---


class LimitSettings(Section):
    """Payment velocity limits: minor units and payments per rolling 24 h, by KYC risk tier."""

    prefix: ClassVar[str] = "PAYMENTS_LIMIT_"
    model_config = _prefixed(prefix)

    daily_amount_low: int = 5_000_000
    daily_amount_medium: int = 2_000_000
    daily_amount_high: int = 500_000
    daily_count_low: int = 100
    daily_count_medium: int = 50
    daily_count_high: int = 10


class CounterpartySettings(Section):
    """Saved counterparties and their verification (issue #18)."""

    prefix: ClassVar[str] = "PAYMENTS_COUNTERPARTIES_"
    model_config = _prefixed(prefix)

    # how long after its file was accepted a prenote may still be returned: NACHA has the
    # originator wait three banking days (five calendar days cover weekends and holidays)
    prenote_window_seconds: float = 5 * 86400.0
    # a Verification-of-Payee check the bank cannot answer (NOAP, unreachable) is asked again
    # this many times, first after `payee_check_retry_seconds`, then doubling (1 h, 2 h, 4 h):
    # a responding bank's outage rarely outlasts a day. Still unanswered, the counterparty
    # stays `pending` and payments to it go to review.
    payee_check_retries: int = 3
    payee_check_retry_seconds: float = 3600.0


class ReconciliationSettings(Section):
    """Reconciliation of yesterday's bank statements."""

    prefix: ClassVar[str] = "PAYMENTS_RECONCILIATION_"
    model_config = _prefixed(prefix)

    # UTC cron
    cron: str = "30 6 * * *"


class Settings(Section):
    """Configuration for every component, by section; defaults run the embedded dev stack."""

    # `production` (the default) refuses published secrets (kernel/environment.py); `dev`
    # is for `make dev`, the tests and the benchmarks
    env: Literal["dev", "production"] = "production"
    # where the embedded dev stack keeps PostgreSQL, Temporal's SQLite file and the simulator
    data_dir: Path = PROJECT_ROOT / ".data"

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    deposits: DepositSettings = Field(default_factory=DepositSettings)
    batches: BatchSettings = Field(default_factory=BatchSettings)
    schedules: ScheduleSettings = Field(default_factory=ScheduleSettings)
    rails: RailSettings = Field(default_factory=RailSettings)
    sepa: SepaSettings = Field(default_factory=SepaSettings)
    ach: AchSettings = Field(default_factory=AchSettings)
    banksim: BankSimSettings = Field(default_factory=BankSimSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    codec: CodecSettings = Field(default_factory=CodecSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    screening: ScreeningSettings = Field(default_factory=ScreeningSettings)
    reviews: ReviewSettings = Field(default_factory=ReviewSettings)
    lists: ListSettings = Field(default_factory=ListSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    reconciliation: ReconciliationSettings = Field(default_factory=ReconciliationSettings)
    counterparties: CounterpartySettings = Field(default_factory=CounterpartySettings)

    def sections(self) -> dict[str, Section]:
        """Every section by its name."""
        return {
            name: value
            for name in type(self).model_fields
            if isinstance(value := getattr(self, name), Section)
        }

    def env_items(self) -> Iterator[tuple[str, Any]]:
        """(environment variable, value) for every setting of every section."""
        for name in ("env", "data_dir"):
            yield f"PAYMENTS_{name.upper()}", getattr(self, name)
        for section in self.sections().values():
            yield from section.env_items()

    def updated(self, changes: Mapping[str, Any]) -> Settings:
        """A validated copy with `changes` applied, named `"section.field"` (or `"env"`,
        `"data_dir"`): `settings.updated({"api.port": 0, "ach.window_seconds": 2.0})`."""
        by_section: dict[str, dict[str, Any]] = {}
        top: dict[str, Any] = {}
        for key, value in changes.items():
            section, dot, field = key.partition(".")
            if dot:
                by_section.setdefault(section, {})[field] = value
            else:
                top[key] = value
        sections = self.sections()
        unknown = set(by_section) - set(sections)
        unknown |= set(top) - {"env", "data_dir"}
        if unknown:
            raise KeyError(f"no setting {sorted(unknown)}")
        values: dict[str, Any] = {
            "env": self.env,
            "data_dir": self.data_dir,
            **{name: section for name, section in sections.items()},
        }
        for name, fields in by_section.items():
            values[name] = sections[name].updated(fields)
        values.update(top)
        return Settings.model_validate(values)

    @property
    def banksim_db_path(self) -> Path:
        """The simulator's own storage (a bank's records are not ours)."""
        return self.data_dir / "banksim.db"


def setting_paths() -> dict[str, str]:
    """Every environment variable and the setting it sets (`"section.field"`)."""
    paths = {"PAYMENTS_ENV": "env", "PAYMENTS_DATA_DIR": "data_dir"}
    for name, field in Settings.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, Section):
            for field_name, spec in section.model_fields.items():
                alias = spec.validation_alias
                variable = alias if isinstance(alias, str) else f"{section.prefix}{field_name}"
                paths[variable.upper()] = f"{name}.{field_name}"
    return paths


# values `payments settings` never prints: secrets, and the database URL (it may carry a password)
SECRET_PATHS = frozenset(
    {
        "codec.payload_keys",
        "rails.callback_secret",
        "rails.submission_secret",
        "reviews.token_secrets",
        "database.url",
        "temporal.api_key",
    }
)


def describe(settings: Settings) -> Iterator[tuple[str, str, str]]:
    """(environment variable, path, value) of every setting, secrets masked."""
    paths = setting_paths()
    for variable, value in settings.env_items():
        path = paths[variable.upper()]
        shown = "<set>" if path in SECRET_PATHS and value else str(value)
        yield variable.upper(), path, shown


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings (cached: read the environment once)."""
    return Settings()
