"""A test's HTTP client for the bank simulator: requests to its rail routes carry the
platform's signature, as the workers' do (activities/bank_http.py)."""

from __future__ import annotations

import httpx

from activities.bank_http import BankAuth
from kernel.settings import Settings


def bank_client(settings: Settings, timeout: float = 30) -> httpx.AsyncClient:
    """A client for the simulator at `rails.bank_url`, signing as the platform does."""
    return httpx.AsyncClient(
        base_url=settings.rails.bank_url,
        timeout=timeout,
        auth=BankAuth(settings.rails.bank_url, settings.rails.submission_secret),
    )
