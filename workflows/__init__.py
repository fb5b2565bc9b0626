"""Deterministic orchestration only: the payment workflow and its input/output types."""
