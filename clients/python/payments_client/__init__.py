"""Typed Python client for the Payments Platform API.

    from payments_client import PaymentsClient

    with PaymentsClient("http://127.0.0.1:8000", api_key="psk_…") as client:
        payment = client.create_payment({...})  # an Idempotency-Key is generated

See README.md beside this package for the tour, retries, pagination and webhooks.
"""

from payments_client.client import OPERATIONS, PaymentsClient, __version__
from payments_client.errors import ApiError, PaymentsError, WebhookVerificationError
from payments_client.webhooks import WebhookEvent, sign, verify_webhook

__all__ = [
    "OPERATIONS",
    "ApiError",
    "PaymentsClient",
    "PaymentsError",
    "WebhookEvent",
    "WebhookVerificationError",
    "__version__",
    "sign",
    "verify_webhook",
]
