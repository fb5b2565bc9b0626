"""Fault injection, deterministic by seed.

Each kind of decision draws from its own `random.Random` seeded from the configured seed, so
the sequence of 503s depends only on the seed and the order of submissions, never on how
callbacks interleave with them.
"""

from __future__ import annotations

import random
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, Field, model_validator

Rate = Annotated[float, Field(ge=0, le=1)]


class FaultConfig(BaseModel):
    """`PUT /v1/admin/faults`: every field optional; the defaults inject nothing."""

    seed: int = 0
    latency_seconds: Annotated[float, Field(ge=0, le=120)] = 0.0
    # answer a submission with 503 without keeping it
    error_rate: Rate = 0.0
    # keep the submission, then hang the response for timeout_seconds (the client times out)
    timeout_rate: Rate = 0.0
    timeout_seconds: Annotated[float, Field(ge=0, le=600)] = 30.0
    # deliver a callback twice
    duplicate_callback_rate: Rate = 0.0
    # SEPA: final status before ACCP; ACH: the return file before the settlement notice
    out_of_order_callbacks: bool = False

    @model_validator(mode="after")
    def _rates_fit(self) -> Self:
        if self.error_rate + self.timeout_rate > 1:
            raise ValueError("error_rate + timeout_rate must not exceed 1")
        return self


class SubmissionFault(StrEnum):
    """What happens to one submission."""

    NONE = "none"
    ERROR = "error"
    TIMEOUT = "timeout"


class FaultInjector:
    """The current faults and their random streams; in memory (a restart clears them)."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        """Replace every fault and restart the random streams from the seed."""
        self.config = config
        self._submissions = random.Random(f"{config.seed}:submissions")
        self._callbacks = random.Random(f"{config.seed}:callbacks")

    def submission_fault(self) -> SubmissionFault:
        """The fate of the next submission: one draw per submission, whatever the rates."""
        draw = self._submissions.random()
        if draw < self.config.error_rate:
            return SubmissionFault.ERROR
        if draw < self.config.error_rate + self.config.timeout_rate:
            return SubmissionFault.TIMEOUT
        return SubmissionFault.NONE

    def callback_copies(self) -> int:
        """How many times to deliver the next callback (2 when duplicated)."""
        return 2 if self._callbacks.random() < self.config.duplicate_callback_rate else 1
