"""The search attributes the dev server registers match the ones the deploy script registers."""

from __future__ import annotations

import re

from kernel.settings import PROJECT_ROOT
from workflows.search_attributes import ALL, cli_flags


def test_dev_flags_and_deploy_script_register_the_same_attributes() -> None:
    flags = {flag.split("=", 1)[1] for flag in cli_flags()}
    script = (PROJECT_ROOT / "deploy/temporal/register-search-attributes.sh").read_text()
    in_script = set(re.findall(r"\b([A-Za-z]+=(?:Keyword|Int|Bool))\b", script))
    assert flags == in_script
    assert {key.name for key in ALL} >= {
        "PaymentStatus",
        "PaymentRail",
        "TenantId",
        "CustomerId",
        "AmountMinor",
        "Currency",
        "ReviewEscalated",
    }
