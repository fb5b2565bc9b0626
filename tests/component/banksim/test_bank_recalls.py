"""The bank simulator's SEPA recalls: a camt.056 for a settled transaction is answered by a
signed camt.029 as the IBAN's recall rule says (accepted by default, then the funds back by a
pacs.004 with reason FOCR; rejected with the rule's code, after its delay), and a recall of a
transaction the bank never settled is rejected NOOR."""

from __future__ import annotations

from datetime import UTC, date, datetime

from iso20022.camt029 import parse_camt029
from iso20022.camt056 import CancellationRequest, build_camt056
from iso20022.pacs004 import parse_pacs004
from iso20022.schemas import CAMT029, PACS004, message_name
from tests.component.banksim.support import (
    OTHER_VALID_IBAN,
    XML,
    BankClient,
    assert_signed,
    pacs008,
)


def camt056(message_id: str, reason: str = "DUPL") -> bytes:
    return build_camt056(
        CancellationRequest(
            assignment_id=f"R{message_id}",
            case_id=f"e2e-{message_id}",
            created_at=datetime(2026, 3, 10, 11, 0, tzinfo=UTC),
            assigner_bic="COBADEFFXXX",
            assignee_bic="DEUTDEFFXXX",
            original_message_id=message_id,
            end_to_end_id=f"e2e-{message_id}",
            amount_minor=2500,
            currency="EUR",
            settlement_date=date(2026, 3, 10),
            reason_code=reason,
        )
    )


async def recall(bank: BankClient, message_id: str) -> None:
    response = await bank.http.post(
        f"{bank.url}/v1/sepa/recalls", content=camt056(message_id), headers=XML
    )
    assert response.status_code == 202, response.text


async def test_recalls_are_answered_as_their_rules_say(bank: BankClient) -> None:
    rule = await bank.add_rule(
        rail="sepa", creditor_iban=OTHER_VALID_IBAN, action="recall", code="LEGL", delay_seconds=60
    )
    assert rule.status_code == 201, rule.text
    assert (rule.json()["action"], rule.json()["delay_seconds"]) == ("recall", 60.0)
    accepted, rejected = "MSG-RECALL-OK", "MSG-RECALL-NO"
    assert (await bank.submit(pacs008(accepted))).status_code == 202
    assert (await bank.submit(pacs008(rejected, creditor_iban=OTHER_VALID_IBAN))).is_success
    await bank.receiver.wait_for(2)
    await bank.advance(seconds=bank.settings.banksim.settle_delay_seconds)
    await bank.receiver.wait_for(4)
    await recall(bank, accepted)
    await recall(bank, rejected)
    await recall(bank, "MSG-NEVER-SENT")
    # the default delay answers the accepted one and the unknown one; the rule's, the other
    await bank.advance(seconds=bank.settings.banksim.recall_answer_delay_seconds)
    await bank.advance(seconds=60)
    calls = await bank.receiver.wait_for(8)
    answers, returns = {}, []
    for call in calls[4:]:
        assert_signed(call)
        if message_name(call.body) == CAMT029:
            resolution = parse_camt029(call.body)
            answers[resolution.original_message_id] = (resolution.status, resolution.reason_code)
        else:
            assert message_name(call.body) == PACS004
            returns.extend(parse_pacs004(call.body).transactions)
    assert answers == {
        accepted: ("CNCL", ""),
        rejected: ("RJCR", "LEGL"),
        "MSG-NEVER-SENT": ("RJCR", "NOOR"),
    }
    assert [(tx.end_to_end_id, tx.reason_code) for tx in returns] == [(f"e2e-{accepted}", "FOCR")]


async def test_invalid_recall_rules_and_messages_are_refused(bank: BankClient) -> None:
    bad_sepa = await bank.add_rule(
        rail="sepa", creditor_iban=OTHER_VALID_IBAN, action="recall", code="x1"
    )
    assert bad_sepa.status_code in (400, 422)
    bad_ach = await bank.add_rule(rail="ach", account_number="1234", action="recall", code="AC04")
    assert bad_ach.status_code == 400
    good_ach = await bank.add_rule(rail="ach", account_number="1234", action="recall", code="R10")
    assert good_ach.status_code == 201, good_ach.text
    not_camt = await bank.http.post(
        f"{bank.url}/v1/sepa/recalls", content=pacs008("MSG-X"), headers=XML
    )
    assert (not_camt.status_code, not_camt.json()["code"]) == (400, "schema_invalid")
