"""Screening of a payment sees through disguises and reads what the parties wrote: a
look-alike name, a listed entity named in the remittance text, a country the IBAN
contradicts each hold the payment for review; an honest payment settles."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.helpers import (
    TERMINAL,
    Tenant,
    funded_account,
    pay,
    payment_body,
    wait_for_status,
)

# "Nicolas Maduro Moros" with Greek omicrons (U+03BF) for every Latin "o"
GREEK_MADURO = "Nicolas Maduro Moros".replace("o", "\u03bf")


async def _review_reasons(tenant: Tenant, body: dict[str, Any]) -> list[dict[str, Any]]:
    payment = await pay(tenant.partner, body)
    shown = await wait_for_status(tenant.partner, payment["id"], {"in_review"} | TERMINAL)
    assert shown["status"] == "in_review", shown
    hits: list[dict[str, Any]] = shown["screening_hits"]
    return hits


async def test_a_greek_look_alike_name_is_found_and_flagged(tenant: Tenant) -> None:
    account = await funded_account(tenant, 5_000)
    hits = await _review_reasons(tenant, payment_body(account["id"], 100, name=GREEK_MADURO))
    assert any("MADURO MOROS" in hit["matched_name"] for hit in hits), hits
    # the disguise is a reason of its own, shown beside the list hit
    assert any(hit["entity_id"] == "mixed_script" for hit in hits), hits


async def test_a_listed_entity_named_in_the_remittance_text_holds_the_payment(
    tenant: Tenant,
) -> None:
    account = await funded_account(tenant, 5_000)
    body = payment_body(account["id"], 100)
    body["remittance_info"] = "payment for BANCO NACIONAL DE CUBA invoice 42"
    hits = await _review_reasons(tenant, body)
    remittance = [hit for hit in hits if hit["party"] == "remittance"]
    assert [hit["matched_name"] for hit in remittance] == ["BANCO NACIONAL DE CUBA"]
    assert remittance[0]["decision"] == "review"


@pytest.mark.parametrize("declared", ["FR", "VE"])
async def test_a_country_the_iban_contradicts_is_a_review_reason(
    tenant: Tenant, declared: str
) -> None:
    account = await funded_account(tenant, 5_000)
    body = payment_body(account["id"], 100, country=declared)  # a German IBAN
    hits = await _review_reasons(tenant, body)
    mismatch = [hit for hit in hits if hit["entity_id"] == "country_mismatch"]
    assert len(mismatch) == 1 and mismatch[0]["list_name"] == "input-checks", hits
    assert declared in mismatch[0]["matched_name"] and "DE" in mismatch[0]["matched_name"]


async def test_an_honest_payment_with_ordinary_remittance_settles(tenant: Tenant) -> None:
    account = await funded_account(tenant, 5_000)
    payment = await pay(tenant.partner, payment_body(account["id"], 100))  # "Invoice 42"
    settled = await wait_for_status(tenant.partner, payment["id"], TERMINAL)
    assert settled["status"] == "settled" and settled["screening_hits"] == []
