"""The progress bar `payments ledger verify --full` and `audit verify --full` draw."""

from __future__ import annotations

from ops.cli import progress_bar


def test_the_bar_fills_with_the_rows_read() -> None:
    assert progress_bar(50, 200, "ledger entries") == (
        "[########......................]  25% ledger entries: 50/200 rows"
    )


def test_an_empty_or_grown_ledger_reads_as_complete_never_past_it() -> None:
    # nothing to read, or more rows than counted at the start (written during the run)
    assert progress_bar(0, 0, "audit chain").startswith("[" + "#" * 30 + "] 100%")
    assert progress_bar(250, 200, "ledger transfers").startswith("[" + "#" * 30 + "] 100%")
