"""Fault injection, deterministic by seed.

Each kind of decision draws from its own `random.Random` seeded from the configured seed, so
the sequence of 503s depends only on the seed and the order of submissions, never on how
callbacks interleave with them.

Some faults are ambiguous on purpose: the bank keeps a submission and then times out
(`timeout_rate`) or answers 503 (`error_after_store_rate`), or never delivers the final
callback (`drop_final_callback_rate`). The platform cannot tell those from a submission that
never arrived; it must ask the bank (pacs.028 status request, the ACH file's status) before
sending again. Status requests have their own fault, `status_request_error_rate`, so a test
can make that answer unknown too; no submission fault touches them.
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
    # keep the submission (SEPA message, ACH file), then answer 503 as if it had not
    error_after_store_rate: Rate = 0.0
    # never deliver the final callback of a message (SEPA ACSC/RJCT pacs.002) or file (ACH
    # settlement notice); the status stays readable by status request and GET
    drop_final_callback_rate: Rate = 0.0
    # answer a SEPA status request (pacs.028) with 503
    status_request_error_rate: Rate = 0.0

    @model_validator(mode="after")
    def _rates_fit(self) -> Self:
        # the three share one draw per submission, so together they cannot exceed certainty
        if self.error_rate + self.timeout_rate + self.error_after_store_rate > 1:
            raise ValueError("error_rate + timeout_rate + error_after_store_rate must not exceed 1")
        return self


class SubmissionFault(StrEnum):
    """What happens to one submission."""

    NONE = "none"
    ERROR = "error"  # 503, nothing kept
    TIMEOUT = "timeout"  # kept, then the answer hangs
    ERROR_AFTER_STORE = "error_after_store"  # kept, then 503


class FaultInjector:
    """The current faults and their random streams; in memory (a restart clears them)."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        """Replace every fault and restart the random streams from the seed."""
        self.config = config
        self._submissions = random.Random(f"{config.seed}:submissions")
        self._callbacks = random.Random(f"{config.seed}:callbacks")
        # own streams: turning these on shifts none of the sequences above
        self._drops = random.Random(f"{config.seed}:drops")
        self._status_requests = random.Random(f"{config.seed}:status_requests")

    def submission_fault(self) -> SubmissionFault:
        """The fate of the next submission: one draw per submission, whatever the rates."""
        draw = self._submissions.random()
        if draw < self.config.error_rate:
            return SubmissionFault.ERROR
        if draw < self.config.error_rate + self.config.timeout_rate:
            return SubmissionFault.TIMEOUT
        # after the older kinds, so their sequences are the same with this one on or off
        if draw < (
            self.config.error_rate + self.config.timeout_rate + self.config.error_after_store_rate
        ):
            return SubmissionFault.ERROR_AFTER_STORE
        return SubmissionFault.NONE

    def callback_copies(self) -> int:
        """How many times to deliver the next callback (2 when duplicated)."""
        return 2 if self._callbacks.random() < self.config.duplicate_callback_rate else 1

    def final_callback_copies(self) -> int:
        """How many times to deliver a final callback: 0 when dropped, else as
        `callback_copies`."""
        # both streams are drawn every time, so drops never shift the duplicate sequence
        dropped = self._drops.random() < self.config.drop_final_callback_rate
        copies = self.callback_copies()
        return 0 if dropped else copies

    def status_request_fails(self) -> bool:
        """Whether to answer the next status request with 503."""
        return self._status_requests.random() < self.config.status_request_error_rate
