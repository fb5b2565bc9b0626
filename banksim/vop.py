"""Verification of Payee (EPC VOP scheme): does the name the payer gives match the holder of
the IBAN? The simulator holds no account register: an IBAN without a rule matches whatever
name is given; a `vop` rule (admin API) decides the answer for one IBAN."""

from __future__ import annotations

from dataclasses import dataclass

from banksim.store import Store, normalize_iban

# the EPC VOP answers: match, close match (with the registered name), no match, not possible
VOP_MATCH = "MTCH"
VOP_CLOSE_MATCH = "CMTC"
VOP_NO_MATCH = "NMTC"
VOP_NOT_POSSIBLE = "NOAP"
VOP_CODES = frozenset({VOP_MATCH, VOP_CLOSE_MATCH, VOP_NO_MATCH, VOP_NOT_POSSIBLE})
# rules are keyed by (rail, key): VoP rules live apart from the IBAN's reject/return rule
VOP_RULES = "sepa-vop"


@dataclass(frozen=True)
class PayeeAnswer:
    """The answer to one verification request."""

    result: str
    # the name the bank holds, given on a close match only (as the scheme allows)
    name: str | None = None


def verify_payee(store: Store, iban: str, name: str) -> PayeeAnswer:
    """The bank's answer for (`iban`, `name`), as its rule for the IBAN decides."""
    rule = store.rule_for(VOP_RULES, normalize_iban(iban))
    if rule is None or rule.code == VOP_MATCH:
        return PayeeAnswer(VOP_MATCH)
    if rule.code == VOP_CLOSE_MATCH:
        return PayeeAnswer(VOP_CLOSE_MATCH, rule.detail)
    return PayeeAnswer(rule.code)
