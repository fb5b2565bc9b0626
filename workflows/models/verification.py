"""The full verification of the ledger or the audit chain, in chunks (issue #23)."""

# no `from __future__ import annotations`: the workflow sandbox resolves string annotations
# in sys.modules[cls.__module__], which only holds the modules a workflow imported itself
from dataclasses import dataclass, field
from typing import Any

GENESIS_HASH = "0" * 64


@dataclass
class FullVerifyState:
    """Where a full verification stands, carried from chunk to chunk, through heartbeats and
    continue-as-new: the cursor and running state of its phase, what it has read of how
    much, and the problems it found (it stops at the first chunk with any)."""

    kind: str = "ledger"  # ledger or audit
    # the run (its first workflow run): what its chunks verified is kept under it
    run_key: str = ""
    # ledger: entries, then transfers, then done; audit: chain, then done
    phase: str = ""
    # ledger entries: the last entry checked and its account's balances after it
    account_id: str = ""
    version: int = 0
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0
    # ledger transfers: the last transfer checked
    transfer_id: str = ""
    # audit: the chain being read ("" the platform's, else a tenant's), its last record
    # verified and that record's hash; the chains still to read; every chain's head verified
    audit_chain: str = ""
    audit_seq: int = 0
    audit_hash: str = GENESIS_HASH
    audit_chains: list[str] = field(default_factory=list)
    audit_heads: dict[str, list[Any]] = field(default_factory=dict)
    # what was read: entries, accounts, transfers (ledger) or records (audit)
    entries: int = 0
    accounts: int = 0
    transfers: int = 0
    records: int = 0
    chunks: int = 0
    # the progress bar: rows read (entries and transfers, or records) of those there were
    # when the verification started
    rows_done: int = 0
    rows_total: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """True once every chunk was read or a problem was found."""
        return self.phase == "done" or bool(self.problems)

    def describe(self) -> str:
        """What was read, for the command's report."""
        if self.kind == "audit":
            platform = self.audit_heads.get("", [self.audit_seq])[0]
            what = f"{self.records} entries up to entry {platform}"
            if len(self.audit_heads) > 1:
                what += f" and {len(self.audit_heads) - 1} tenant chains"
        else:
            what = f"{self.accounts} accounts, {self.entries} entries, {self.transfers} transfers"
        return f"{what}, in {self.chunks} chunks"


@dataclass
class FullVerifyInput:
    """Verify the whole ledger or audit chain, `chunk_size` rows per chunk; each activity
    reads up to `chunks_per_activity` chunks (heartbeating after each), each run up to
    `activities_per_run` activities before continuing as new with `state`."""

    kind: str = "ledger"
    chunk_size: int = 5_000
    chunks_per_activity: int = 10
    activities_per_run: int = 20
    actor: str = "full-verification"
    state: FullVerifyState | None = None


@dataclass
class FullVerifyChunksInput:
    """The chunks one activity reads, from `state` (or from its last heartbeat on a retry)."""

    state: FullVerifyState
    chunk_size: int
    max_chunks: int


@dataclass
class FullVerifyFinishInput:
    """Close a verification whose chunks all passed: the last checks and the checkpoint."""

    state: FullVerifyState
    actor: str


@dataclass
class FullVerifyResult:
    """The outcome: what was read, the problems, and the checkpoint written when sound."""

    kind: str = "ledger"
    ok: bool = False
    checked: str = ""
    rows: int = 0
    problems: list[str] = field(default_factory=list)
    checkpoint_id: int | None = None
