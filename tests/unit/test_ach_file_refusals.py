"""`AchAdapter.submit_file` against a scripted bank (the bank is the true external boundary):
an entry that cannot go in a file is left out and reported, the others go out; a refusal
of the whole file that names entries is answered by resending the file without them."""

from __future__ import annotations

import json
from typing import Any, cast

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.rails import AchAdapter
from kernel.settings import Settings
from nacha import parse_file
from workflows.models import AchBatchInput, AchEntryInput, AchFileInput, RefusedEntry

BATCH = AchBatchInput(
    "2026-12-07T10:25", "2026-12-07T15:25:00+00:00", "2026-12-07T10:25:00", "A", "file_1"
)


def entry(n: int, **changes: Any) -> AchEntryInput:
    values: dict[str, Any] = {
        "payment_id": f"pay_{n:04d}",
        "trace_number": f"09100001{n:07d}",
        "amount": 100 * n,
        "creditor_name": f"Creditor {n}",
        "routing_number": "021000021",
        "account_number": f"1234567{n}",
    }
    values.update(changes)
    return AchEntryInput(**values)


class Bank:
    """Takes files; refuses any that holds an entry of `refused_accounts`, naming its line."""

    def __init__(self, refused_accounts: frozenset[str] = frozenset(), *, name: bool = True):
        self.refused_accounts = refused_accounts
        self.name = name
        self.files: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        text = request.content.decode("ascii")
        self.files.append(text)
        lines = text.splitlines()
        errors = [
            {"line": n, "code": "invalid_field", "message": "no such account", "record_type": "6"}
            for n, line in enumerate(lines, start=1)
            if line.startswith("6") and line[12:29].strip() in self.refused_accounts
        ]
        if errors:
            if not self.name:
                errors = [{"line": None, "code": "invalid_file", "message": "refused"}]
            body = {"code": "invalid_file", "errors": errors}
            return httpx.Response(400, content=json.dumps(body))
        return httpx.Response(202, json={"file_id": "file_1", "duplicate": False})


async def submit(bank: Bank, entries: list[AchEntryInput]) -> Any:
    client = httpx.AsyncClient(transport=httpx.MockTransport(bank.handle))
    adapter = AchAdapter(client, cast(Any, None), cast(Any, None), Settings())
    async with client:
        return await ActivityEnvironment().run(adapter.submit_file, AchFileInput(BATCH, entries))


def traces_in(document: str) -> list[str]:
    return [e.trace_number for e in parse_file(document).batches[0].entries]


async def test_an_invalid_entry_is_left_out_and_the_others_go() -> None:
    bank = Bank()
    good, too_big, bad_routing = (
        entry(1),
        entry(2, amount=10**10),
        entry(3, routing_number="021000022"),
    )
    result = await submit(bank, [good, too_big, bad_routing, entry(4, creditor_name="Zoë Łukasz")])
    assert result.status == "ACCP"
    assert [(r.payment_id, r.reason) for r in result.refused] == [
        ("pay_0002", "AM02"),
        ("pay_0003", "RC01"),
    ]
    assert len(bank.files) == 1
    assert traces_in(bank.files[0]) == [good.trace_number, entry(4).trace_number]


async def test_entries_the_bank_names_are_left_out_and_the_file_sent_again() -> None:
    bank = Bank(frozenset({"12345672"}))
    result = await submit(bank, [entry(1), entry(2), entry(3)])
    assert result.status == "ACCP"
    assert result.refused == [
        RefusedEntry("pay_0002", "CH16", "refused by the bank: invalid_field: no such account")
    ]
    assert [len(traces_in(f)) for f in bank.files] == [3, 2]


async def test_a_refusal_naming_no_entry_refuses_the_file() -> None:
    bank = Bank(frozenset({"12345672"}), name=False)
    with pytest.raises(ApplicationError) as raised:
        await submit(bank, [entry(1), entry(2)])
    assert raised.value.type == "file_refused"


async def test_no_file_when_every_entry_is_refused() -> None:
    bank = Bank()
    result = await submit(bank, [entry(1, amount=10**10)])
    assert (result.status, [r.payment_id for r in result.refused]) == ("EMPTY", ["pay_0001"])
    assert bank.files == []
