"""The bank simulator's fixtures, shared by its tests: a real simulator on a loopback port,
and a receiver standing in for the platform's callback endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.component.banksim.support import (
    BankClient,
    Receiver,
    make_settings,
    running_bank,
    running_receiver,
)


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    """The platform's side of the callbacks: records what the bank sends."""
    async with running_receiver() as served:
        yield served


@pytest_asyncio.fixture
async def bank(tmp_path: Path, receiver: tuple[Receiver, str]) -> AsyncIterator[BankClient]:
    """A simulator with its own storage under `tmp_path`, calling back to `receiver`."""
    recv, url = receiver
    async with running_bank(make_settings(tmp_path, url), recv) as client:
        yield client
