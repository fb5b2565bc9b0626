"""The client: one method per API operation, over one `httpx.Client`.

What it adds to plain HTTP:
- an `Idempotency-Key` on every POST (generated unless given), kept across its retries, so a
  retried request never makes a second payment, deposit or customer;
- retries with exponential backoff and full jitter on 429, 503, connection failures and a
  409 `idempotency_request_in_progress` (its own earlier attempt still being answered),
  waiting at least what `Retry-After` asks (and giving up rather than waiting longer than
  `max_retry_wait`);
- iterators over the lists that page with `starting_after`;
- problem documents raised as `ApiError` with the stable `code`.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Literal, Self, cast

import httpx

from payments_client.errors import ApiError, retry_after_seconds
from payments_client.models import (
    AccountCreate,
    AccountOut,
    CancelCreate,
    CounterpartyCreate,
    CounterpartyOut,
    CustomerCreate,
    CustomerOut,
    DepositCreate,
    DepositOut,
    DepositReviewCreate,
    EntryOut,
    ErasureCreate,
    ErasureOut,
    EventOut,
    Liveness,
    PaymentBatchCreate,
    PaymentBatchItemOut,
    PaymentBatchOut,
    PaymentCreate,
    PaymentOut,
    PaymentScheduleCreate,
    PaymentScheduleOut,
    PaymentStatus,
    Readiness,
    RecallCreate,
    ReconciliationCreate,
    ReconciliationList,
    ReconciliationOut,
    ReviewCreate,
    ScreeningCreate,
    ScreeningOut,
    WebhookEndpointCreate,
    WebhookEndpointList,
    WebhookEndpointOut,
)

__version__ = "1.0.0"

Method = Literal["GET", "POST", "DELETE"]
# each method's operation in the OpenAPI document; the drift check compares this table, and
# the methods' parameter and return types, with the document's operations and schemas
OPERATIONS: dict[str, tuple[Method, str]] = {
    "health": ("GET", "/healthz"),
    "ready": ("GET", "/readyz"),
    "create_customer": ("POST", "/v1/customers"),
    "get_customer": ("GET", "/v1/customers/{customer_id}"),
    "review_customer": ("POST", "/v1/customers/{customer_id}/review"),
    "erase_customer": ("POST", "/v1/customers/{customer_id}/erase"),
    "create_account": ("POST", "/v1/accounts"),
    "get_account": ("GET", "/v1/accounts/{account_id}"),
    "list_entries": ("GET", "/v1/accounts/{account_id}/entries"),
    "create_deposit": ("POST", "/v1/deposits"),
    "list_deposits": ("GET", "/v1/deposits"),
    "get_deposit": ("GET", "/v1/deposits/{deposit_id}"),
    "review_deposit": ("POST", "/v1/deposits/{deposit_id}/review"),
    "create_payment": ("POST", "/v1/payments"),
    "list_payments": ("GET", "/v1/payments"),
    "get_payment": ("GET", "/v1/payments/{payment_id}"),
    "review_payment": ("POST", "/v1/payments/{payment_id}/review"),
    "cancel_payment": ("POST", "/v1/payments/{payment_id}/cancel"),
    "retry_payment": ("POST", "/v1/payments/{payment_id}/retry"),
    "recall_payment": ("POST", "/v1/payments/{payment_id}/recall"),
    "create_payment_batch": ("POST", "/v1/payment-batches"),
    "get_payment_batch": ("GET", "/v1/payment-batches/{batch_id}"),
    "list_payment_batch_items": ("GET", "/v1/payment-batches/{batch_id}/items"),
    "review_payment_batch": ("POST", "/v1/payment-batches/{batch_id}/review"),
    "cancel_payment_batch": ("POST", "/v1/payment-batches/{batch_id}/cancel"),
    "create_payment_schedule": ("POST", "/v1/payment-schedules"),
    "list_payment_schedules": ("GET", "/v1/payment-schedules"),
    "get_payment_schedule": ("GET", "/v1/payment-schedules/{schedule_id}"),
    "pause_payment_schedule": ("POST", "/v1/payment-schedules/{schedule_id}/pause"),
    "resume_payment_schedule": ("POST", "/v1/payment-schedules/{schedule_id}/resume"),
    "delete_payment_schedule": ("DELETE", "/v1/payment-schedules/{schedule_id}"),
    "screen": ("POST", "/v1/screenings"),
    "create_counterparty": ("POST", "/v1/counterparties"),
    "list_counterparties": ("GET", "/v1/counterparties"),
    "get_counterparty": ("GET", "/v1/counterparties/{counterparty_id}"),
    "disable_counterparty": ("DELETE", "/v1/counterparties/{counterparty_id}"),
    "list_webhook_endpoints": ("GET", "/v1/webhook-endpoints"),
    "create_webhook_endpoint": ("POST", "/v1/webhook-endpoints"),
    "rotate_webhook_secret": ("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"),
    "disable_webhook_endpoint": ("DELETE", "/v1/webhook-endpoints/{endpoint_id}"),
    "list_events": ("GET", "/v1/events"),
    "run_reconciliation": ("POST", "/v1/reconciliations"),
    "list_reconciliations": ("GET", "/v1/reconciliations"),
    "get_reconciliation": ("GET", "/v1/reconciliations/{run_id}"),
}
RETRIED_STATUSES = frozenset({429, 503})
IN_FLIGHT = "idempotency_request_in_progress"


class PaymentsClient:
    """A partner's (or ops') client of the Payments Platform API.

    `base_url` is the API's root (`http://127.0.0.1:8000` under `make dev`), `api_key` a
    `psk_…` key. Use it as a context manager, or call `close()`.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_wait: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {api_key}",
                "User-Agent": f"payments-client-python/{__version__}",
            },
            timeout=timeout,
            transport=transport,
        )
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_wait = max_retry_wait
        # injectable so tests (and callers with their own scheduler) control the waiting
        self._sleep = sleep

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    def request(
        self,
        operation: str,
        *,
        path: Mapping[str, str] | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Send one operation of OPERATIONS (retrying as the module says) and return the
        decoded JSON answer; raise `ApiError` on a problem document."""
        method, template = OPERATIONS[operation]
        url = template.format(**(path or {}))
        headers = {}
        if method == "POST":
            # one key for every attempt of this call: the retry is the same request
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        query = {name: value for name, value in (params or {}).items() if value is not None}
        attempt = 0
        while True:
            try:
                response = self._http.request(method, url, json=json, params=query, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout):
                # safe to send again: GETs read, and every POST carries its idempotency key
                if attempt >= self.max_retries:
                    raise
                self._sleep(self._backoff(attempt, None))
                attempt += 1
                continue
            if self._retryable(response) and attempt < self.max_retries:
                asked = retry_after_seconds(response)
                if asked is None or asked <= self.max_retry_wait:
                    self._sleep(self._backoff(attempt, asked))
                    attempt += 1
                    continue
            if response.status_code >= 400:
                raise ApiError(response)
            return response.json()

    @staticmethod
    def _retryable(response: httpx.Response) -> bool:
        """429 and 503 pass; so does a 409 saying this key's first request is still in
        flight, which is what a retry after a read timeout meets while the first attempt
        is still being answered."""
        if response.status_code in RETRIED_STATUSES:
            return True
        if response.status_code != 409:
            return False
        try:
            code = response.json().get("code")
        except (ValueError, AttributeError):
            return False
        return bool(code == IN_FLIGHT)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Full-jitter exponential backoff, never shorter than the server's Retry-After."""
        jittered = random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))
        return max(jittered, retry_after or 0.0)

    def _pages(
        self,
        operation: str,
        params: Mapping[str, Any],
        path: Mapping[str, str] | None = None,
    ) -> Iterator[Any]:
        """Every item of a list that pages with `starting_after` (keyset: stable while new
        objects arrive), fetching the next page only when the caller gets there."""
        cursor = params.get("starting_after")
        while True:
            page = self.request(operation, path=path, params={**params, "starting_after": cursor})
            yield from page["data"]
            if not page["has_more"] or not page["data"]:
                return
            cursor = page["data"][-1]["id"]

    # ------------------------------------------------------------------ health

    def health(self) -> Liveness:
        """`GET /healthz`: the API process is alive."""
        return cast(Liveness, self.request("health"))

    def ready(self) -> Readiness:
        """`GET /readyz`: the database and Temporal are reachable."""
        return cast(Readiness, self.request("ready"))

    # ------------------------------------------------------------------ customers, accounts

    def create_customer(
        self, body: CustomerCreate, *, idempotency_key: str | None = None
    ) -> CustomerOut:
        """Onboard a customer; the answer carries the KYC decision (`kyc.status`)."""
        return cast(
            CustomerOut,
            self.request("create_customer", json=body, idempotency_key=idempotency_key),
        )

    def get_customer(self, customer_id: str) -> CustomerOut:
        """A customer with its KYC outcome."""
        return cast(CustomerOut, self.request("get_customer", path={"customer_id": customer_id}))

    def review_customer(
        self, customer_id: str, body: ReviewCreate, *, idempotency_key: str | None = None
    ) -> CustomerOut:
        """Decide a customer's KYC review (ops, four-eyes)."""
        return cast(
            CustomerOut,
            self.request(
                "review_customer",
                path={"customer_id": customer_id},
                json=body,
                idempotency_key=idempotency_key,
            ),
        )

    def erase_customer(
        self, customer_id: str, body: ErasureCreate, *, idempotency_key: str | None = None
    ) -> ErasureOut:
        """Erase a customer's personal data (ops); 409 while a payment is open or an
        account holds money. Repeating it answers the first erasure."""
        return cast(
            ErasureOut,
            self.request(
                "erase_customer",
                path={"customer_id": customer_id},
                json=body,
                idempotency_key=idempotency_key,
            ),
        )

    def create_account(
        self, body: AccountCreate, *, idempotency_key: str | None = None
    ) -> AccountOut:
        """Open a ledger account for a customer in one currency."""
        return cast(
            AccountOut, self.request("create_account", json=body, idempotency_key=idempotency_key)
        )

    def get_account(self, account_id: str) -> AccountOut:
        """An account with its balances (posted, pending, available)."""
        return cast(AccountOut, self.request("get_account", path={"account_id": account_id}))

    def list_entries(self, account_id: str, *, page_size: int = 100) -> Iterator[EntryOut]:
        """Every ledger entry of an account, newest first, page by page."""
        return self._pages("list_entries", {"limit": page_size}, path={"account_id": account_id})

    # ------------------------------------------------------------------ deposits

    def create_deposit(
        self, body: DepositCreate, *, idempotency_key: str | None = None
    ) -> DepositOut:
        """Credit incoming funds (ops); exactly once per idempotency key."""
        return cast(
            DepositOut, self.request("create_deposit", json=body, idempotency_key=idempotency_key)
        )

    def list_deposits(
        self, *, status: str | None = None, page_size: int = 100
    ) -> Iterator[DepositOut]:
        """Every deposit (optionally of one status), newest first."""
        return self._pages("list_deposits", {"limit": page_size, "status": status})

    def get_deposit(self, deposit_id: str) -> DepositOut:
        """One deposit."""
        return cast(DepositOut, self.request("get_deposit", path={"deposit_id": deposit_id}))

    def review_deposit(
        self, deposit_id: str, body: DepositReviewCreate, *, idempotency_key: str | None = None
    ) -> DepositOut:
        """Decide a deposit in `pending_review` (ops, four-eyes)."""
        return cast(
            DepositOut,
            self.request(
                "review_deposit",
                path={"deposit_id": deposit_id},
                json=body,
                idempotency_key=idempotency_key,
            ),
        )

    # ------------------------------------------------------------------ payments

    def create_payment(
        self, body: PaymentCreate, *, idempotency_key: str | None = None
    ) -> PaymentOut:
        """Initiate a payment (202, status `processing` or `scheduled`).

        Pass your own `idempotency_key` (e.g. your order id) to make the call safe to repeat
        across process restarts too; a generated one protects only this call's retries.
        """
        return cast(
            PaymentOut, self.request("create_payment", json=body, idempotency_key=idempotency_key)
        )

    def list_payments(
        self,
        *,
        status: PaymentStatus | None = None,
        account_id: str | None = None,
        batch_id: str | None = None,
        schedule_id: str | None = None,
        page_size: int = 100,
    ) -> Iterator[PaymentOut]:
        """Every payment (optionally filtered, e.g. a batch's or a schedule's), newest first,
        page by page."""
        return self._pages(
            "list_payments",
            {
                "limit": page_size,
                "status": status,
                "account_id": account_id,
                "batch_id": batch_id,
                "schedule_id": schedule_id,
            },
        )

    def get_payment(self, payment_id: str) -> PaymentOut:
        """A payment: status, failure, screening hits, status history."""
        return cast(PaymentOut, self.request("get_payment", path={"payment_id": payment_id}))

    def review_payment(
        self, payment_id: str, body: ReviewCreate, *, idempotency_key: str | None = None
    ) -> PaymentOut:
        """Decide a payment in `in_review` (ops, four-eyes)."""
        return cast(
            PaymentOut,
            self.request(
                "review_payment",
                path={"payment_id": payment_id},
                json=body,
                idempotency_key=idempotency_key,
            ),
        )

    def cancel_payment(
        self,
        payment_id: str,
        body: CancelCreate | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> PaymentOut:
        """Cancel a payment while no money can leave."""
        return cast(
            PaymentOut,
            self.request(
                "cancel_payment",
                path={"payment_id": payment_id},
                json=body or {},
                idempotency_key=idempotency_key,
            ),
        )

    def retry_payment(self, payment_id: str, *, idempotency_key: str | None = None) -> PaymentOut:
        """Retry a payment in `action_required` (ops)."""
        return cast(
            PaymentOut,
            self.request(
                "retry_payment", path={"payment_id": payment_id}, idempotency_key=idempotency_key
            ),
        )

    # ------------------------------------------------------------------ payment batches

    def create_payment_batch(
        self, body: PaymentBatchCreate, *, idempotency_key: str | None = None
    ) -> PaymentBatchOut:
        """Send up to 10,000 payments at once (202, `processing` or `in_review`); pass your
        own `idempotency_key` (e.g. the payroll run's id) so a resend never pays twice."""
        return cast(
            PaymentBatchOut,
            self.request("create_payment_batch", json=body, idempotency_key=idempotency_key),
        )

    def get_payment_batch(self, batch_id: str) -> PaymentBatchOut:
        """A batch's status, totals and its items' counts by status."""
        return cast(PaymentBatchOut, self.request("get_payment_batch", path={"batch_id": batch_id}))

    def list_payment_batch_items(
        self, batch_id: str, *, page_size: int = 100
    ) -> Iterator[PaymentBatchItemOut]:
        """Every item of a batch in order, with its payment's id and status, page by page."""
        return self._pages(
            "list_payment_batch_items", {"limit": page_size}, path={"batch_id": batch_id}
        )

    def review_payment_batch(
        self, batch_id: str, body: ReviewCreate, *, idempotency_key: str | None = None
    ) -> PaymentBatchOut:
        """Approve or reject a batch in `in_review` (ops, four-eyes), once for all items."""
        return cast(
            PaymentBatchOut,
            self.request(
                "review_payment_batch",
                path={"batch_id": batch_id},
                json=body,
                idempotency_key=idempotency_key,
            ),
        )

    def cancel_payment_batch(
        self,
        batch_id: str,
        body: CancelCreate | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> PaymentBatchOut:
        """Cancel a batch: items not started and payments not yet submitted are canceled."""
        return cast(
            PaymentBatchOut,
            self.request(
                "cancel_payment_batch",
                path={"batch_id": batch_id},
                json=body or {},
                idempotency_key=idempotency_key,
            ),
        )

    # ------------------------------------------------------------------ payment schedules

    def create_payment_schedule(
        self, body: PaymentScheduleCreate, *, idempotency_key: str | None = None
    ) -> PaymentScheduleOut:
        """A recurring payment (201): every `interval`, or by a `calendar` rule, each run a
        payment of its own (listed with `list_payments(schedule_id=...)`)."""
        return cast(
            PaymentScheduleOut,
            self.request("create_payment_schedule", json=body, idempotency_key=idempotency_key),
        )

    def list_payment_schedules(self, *, page_size: int = 100) -> Iterator[PaymentScheduleOut]:
        """Every payment schedule (deleted ones too), newest first, page by page."""
        return self._pages("list_payment_schedules", {"limit": page_size})

    def get_payment_schedule(self, schedule_id: str) -> PaymentScheduleOut:
        """A payment schedule: its payment, rule and status."""
        return cast(
            PaymentScheduleOut,
            self.request("get_payment_schedule", path={"schedule_id": schedule_id}),
        )

    def pause_payment_schedule(
        self, schedule_id: str, *, idempotency_key: str | None = None
    ) -> PaymentScheduleOut:
        """Pause a schedule: no run until it is resumed."""
        return self._schedule_action("pause_payment_schedule", schedule_id, idempotency_key)

    def resume_payment_schedule(
        self, schedule_id: str, *, idempotency_key: str | None = None
    ) -> PaymentScheduleOut:
        """Resume a paused schedule from its next run."""
        return self._schedule_action("resume_payment_schedule", schedule_id, idempotency_key)

    def delete_payment_schedule(self, schedule_id: str) -> PaymentScheduleOut:
        """Stop a schedule for good (payments it made already are not touched)."""
        return self._schedule_action("delete_payment_schedule", schedule_id, None)

    def _schedule_action(
        self, operation: str, schedule_id: str, idempotency_key: str | None
    ) -> PaymentScheduleOut:
        return cast(
            PaymentScheduleOut,
            self.request(
                operation, path={"schedule_id": schedule_id}, idempotency_key=idempotency_key
            ),
        )

    def recall_payment(
        self, payment_id: str, body: RecallCreate, *, idempotency_key: str | None = None
    ) -> PaymentOut:
        """Ask for a settled payment's money back (SEPA recall, ACH reversal)."""
        return cast(
            PaymentOut,
            self.request(
                "recall_payment",
                path={"payment_id": payment_id},
                json=body,
                idempotency_key=idempotency_key,
            ),
        )

    # ------------------------------------------------------------------ screening

    def screen(self, body: ScreeningCreate, *, idempotency_key: str | None = None) -> ScreeningOut:
        """Screen a name against the sanctions lists."""
        return cast(
            ScreeningOut, self.request("screen", json=body, idempotency_key=idempotency_key)
        )

    # ------------------------------------------------------------------ counterparties

    def create_counterparty(
        self, body: CounterpartyCreate, *, idempotency_key: str | None = None
    ) -> CounterpartyOut:
        """Save a beneficiary (201): screened now, verified at the bank before first use."""
        return cast(
            CounterpartyOut,
            self.request("create_counterparty", json=body, idempotency_key=idempotency_key),
        )

    def list_counterparties(
        self, *, rail: Literal["sepa", "ach"] | None = None, page_size: int = 100
    ) -> Iterator[CounterpartyOut]:
        """Every saved counterparty (disabled ones too), newest first, page by page."""
        return self._pages("list_counterparties", {"limit": page_size, "rail": rail})

    def get_counterparty(self, counterparty_id: str) -> CounterpartyOut:
        """A counterparty with its verification and screening."""
        return cast(
            CounterpartyOut,
            self.request("get_counterparty", path={"counterparty_id": counterparty_id}),
        )

    def disable_counterparty(self, counterparty_id: str) -> CounterpartyOut:
        """Disable a counterparty: payments can no longer name it."""
        return cast(
            CounterpartyOut,
            self.request("disable_counterparty", path={"counterparty_id": counterparty_id}),
        )

    # ------------------------------------------------------------------ webhooks, events

    def list_webhook_endpoints(self) -> WebhookEndpointList:
        """The tenant's webhook endpoints (one page: a tenant has at most a few)."""
        return cast(WebhookEndpointList, self.request("list_webhook_endpoints"))

    def create_webhook_endpoint(
        self, body: WebhookEndpointCreate, *, idempotency_key: str | None = None
    ) -> WebhookEndpointOut:
        """Register a URL; the answer's `secret` (`whsec_…`) is shown only this once."""
        return cast(
            WebhookEndpointOut,
            self.request("create_webhook_endpoint", json=body, idempotency_key=idempotency_key),
        )

    def rotate_webhook_secret(
        self, endpoint_id: str, *, idempotency_key: str | None = None
    ) -> WebhookEndpointOut:
        """A new secret; the old one still signs until `previous_secret_expires_at`."""
        return cast(
            WebhookEndpointOut,
            self.request(
                "rotate_webhook_secret",
                path={"endpoint_id": endpoint_id},
                idempotency_key=idempotency_key,
            ),
        )

    def disable_webhook_endpoint(self, endpoint_id: str) -> WebhookEndpointOut:
        """Stop deliveries to an endpoint."""
        return cast(
            WebhookEndpointOut,
            self.request("disable_webhook_endpoint", path={"endpoint_id": endpoint_id}),
        )

    def list_events(
        self,
        *,
        type: str | None = None,
        payment_id: str | None = None,
        page_size: int = 100,
    ) -> Iterator[EventOut]:
        """Every event (optionally of a type or a payment), newest first."""
        return self._pages(
            "list_events", {"limit": page_size, "type": type, "payment_id": payment_id}
        )

    # ------------------------------------------------------------------ reconciliation (ops)

    def run_reconciliation(
        self, body: ReconciliationCreate, *, idempotency_key: str | None = None
    ) -> ReconciliationList:
        """Reconcile a day's bank statements now (ops)."""
        return cast(
            ReconciliationList,
            self.request("run_reconciliation", json=body, idempotency_key=idempotency_key),
        )

    def list_reconciliations(self, *, limit: int = 10) -> ReconciliationList:
        """The latest reconciliation runs (one page)."""
        return cast(
            ReconciliationList, self.request("list_reconciliations", params={"limit": limit})
        )

    def get_reconciliation(self, run_id: str) -> ReconciliationOut:
        """One reconciliation run with its discrepancies."""
        return cast(ReconciliationOut, self.request("get_reconciliation", path={"run_id": run_id}))
