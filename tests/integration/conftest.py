"""Fixtures for tests through the real API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from ops.devstack import Stack
from tests.integration.helpers import Tenant, make_keys


@pytest.fixture
async def tenant(stack: Stack) -> AsyncIterator[Tenant]:
    """A fresh tenant per test, so tests never see each other's objects."""
    tenant_id = f"ten_{uuid.uuid4().hex[:12]}"
    partner_key, ops_key = await make_keys(stack, tenant_id)
    base = stack.settings.api.url
    async with (
        httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {partner_key}"}, timeout=30
        ) as partner,
        httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {ops_key}"}, timeout=30
        ) as ops,
    ):
        yield Tenant(tenant_id, partner, ops)
