"""Event-type filters: an endpoint receives the types it lists (exactly, or a family as
`payment.*`), and every type when it lists none."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from ops.devstack import Stack
from services.events import enabled_endpoints
from tests.integration.webhook_support import partner_api


async def test_deliveries_go_to_the_endpoints_whose_filter_selects_the_event_type(
    database: Stack, engine: AsyncEngine
) -> None:
    filters = {
        "settled_only": ["payment.settled"],
        "payments": ["payment.*"],
        "customers": ["customer.*", "payment.returned"],
        "everything": None,
    }
    async with partner_api(database.settings) as (partner, tenant_id):
        ids = {}
        for name, event_types in filters.items():
            created = await partner.post(
                "/v1/webhook-endpoints",
                json={"url": f"http://127.0.0.1:9/{name}", "event_types": event_types},
            )
            assert created.status_code == 201, created.text
            assert created.json()["event_types"] == event_types
            ids[created.json()["id"]] = name
        disabled = await partner.post(
            "/v1/webhook-endpoints",
            json={"url": "http://127.0.0.1:9/disabled", "event_types": ["payment.*"]},
        )
        await partner.delete(f"/v1/webhook-endpoints/{disabled.json()['id']}")

        for bad in (["payment settled"], ["*"], ["payment"], [], ["Payment.Settled"]):
            refused = await partner.post(
                "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/x", "event_types": bad}
            )
            assert refused.status_code == 422, (bad, refused.text)
            assert refused.json()["param"].startswith("event_types"), refused.text

    async def receivers(event_type: str) -> set[str]:
        async with engine.connect() as conn:
            return {ids[i] for i in await enabled_endpoints(conn, tenant_id, event_type)}

    assert await receivers("payment.settled") == {"settled_only", "payments", "everything"}
    assert await receivers("payment.failed") == {"payments", "everything"}
    assert await receivers("payment.returned") == {"payments", "customers", "everything"}
    assert await receivers("customer.kyc_approved") == {"customers", "everything"}
    assert await receivers("ledger.anything") == {"everything"}
