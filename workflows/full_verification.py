"""The full verification of the ledger or of the audit chain: every row, in chunks (#23).

The hourly check is incremental (what was written since the last checkpoint); reading the
whole history is this workflow's, on demand (`payments ledger verify --full`, `payments
audit verify --full`). It never runs as one query under a timeout: an activity reads a few
chunks, each a keyset range in a snapshot of its own, and heartbeats the state after each
(the cursor, the running balances or the chain's last hash), so a retry on another worker
resumes from the last chunk reported; the workflow keeps the state between activities and
continues as new every few of them, so its history stays small however long the ledger is.
The `progress` query answers where it stands. One runs at a time per kind: its id is fixed.
When every chunk passes, the last activity makes the final checks and writes a checkpoint;
at the first problem it reports the row and writes none.
"""

from __future__ import annotations

from dataclasses import replace

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.models.verification import (
        FullVerifyChunksInput,
        FullVerifyFinishInput,
        FullVerifyInput,
        FullVerifyResult,
        FullVerifyState,
    )
    from workflows.steps import FINISH_FULL_VERIFICATION, VERIFY_FULL_CHUNKS


def full_verification_id(kind: str) -> str:
    """The one full verification of `kind` (ledger or audit): starting it again while it runs
    attaches to it."""
    return f"full-verification-{kind}"


@workflow.defn(name="FullVerification")
class FullVerificationWorkflow:
    """Verifies a whole ledger or audit chain, chunk by chunk, resumably."""

    def __init__(self) -> None:
        self._state = FullVerifyState()

    @workflow.query(name="progress")
    def progress(self) -> FullVerifyState:
        """Where the verification stands (rows read of rows there were, phase, problems)."""
        return self._state

    @workflow.run
    async def run(self, request: FullVerifyInput) -> FullVerifyResult:
        """Read chunks until the end or a problem; then finish (a checkpoint when sound)."""
        info = workflow.info()
        self._state = request.state or FullVerifyState(
            kind=request.kind, run_key=f"{info.workflow_id}/{info.run_id}"
        )
        for _ in range(max(1, request.activities_per_run)):
            self._state = await VERIFY_FULL_CHUNKS.run(
                FullVerifyChunksInput(
                    self._state, request.chunk_size, max(1, request.chunks_per_activity)
                )
            )
            if self._state.finished:
                # the checkpoint when sound; either way what the chunks kept is cleared
                return await FINISH_FULL_VERIFICATION.run(
                    FullVerifyFinishInput(self._state, request.actor)
                )
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(replace(request, state=self._state))
