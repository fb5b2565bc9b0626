"""Watch-list refresh and the customer re-screening it triggers."""

# no `from __future__ import annotations`: the workflow sandbox resolves string annotations
# in sys.modules[cls.__module__], which only holds the modules a workflow imported itself
from dataclasses import dataclass, field


@dataclass
class ListRefreshInput:
    """Load the watch lists from the sources the worker's settings name."""

    # Since 2026-12-07 (#17) a source is a setting only: whoever can start a workflow must
    # not choose the list everyone is screened against. A refresh naming one here is
    # refused (audited, alerted) and loads nothing. The fields stay so that histories and
    # schedules written before decode unchanged (docs/versioning.md: never remove a field).
    sanctions_source: str = ""
    pep_source: str = ""
    # customers per page of the re-screening a version change starts
    rescreen_page_size: int = 200


@dataclass
class ListRefreshResult:
    """The current versions, which lists changed, the re-screening started for them, and
    the new versions refused."""

    versions: dict[str, str] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)
    rescreen_workflow_id: str = ""
    # list kind ("sanctions", "pep") -> why its new version was refused (RefusalReason); a
    # refused list keeps its current version, which `versions` reports
    refused: dict[str, str] = field(default_factory=dict)


@dataclass
class RescreenInput:
    """Re-screen every customer after a list update, a page at a time (continue-as-new
    carries the cursor and the running totals)."""

    list_versions: dict[str, str] = field(default_factory=dict)
    after_id: str = ""
    page_size: int = 200
    pages_per_run: int = 25
    screened: int = 0
    flagged: int = 0
    # fixed by the first run: idempotency keys of the audit entries of this re-screening
    run_key: str = ""


@dataclass
class RescreenPageInput:
    """One page of customers (ids after `after_id`) to screen again."""

    run_key: str
    after_id: str
    page_size: int


@dataclass
class RescreenPageResult:
    """What a page found; `done` when it was the last page."""

    last_id: str
    screened: int = 0
    flagged: int = 0
    list_versions: dict[str, str] = field(default_factory=dict)
    done: bool = False


@dataclass
class RescreenResult:
    """Totals of a finished re-screening."""

    screened: int = 0
    flagged: int = 0
    list_versions: dict[str, str] = field(default_factory=dict)
