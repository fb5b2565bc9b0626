"""Generations of recorded histories: `make record-histories` archives, never deletes.

The current generation is every `<workflow>_<test>_<n>.json` in tests/replay/histories; an
archived one carries a `v<N>_` prefix. Archiving renames the current files into the next
generation, so the histories of the code that ran until now keep replaying (they are the
workflows still open in production) and the new recording cannot replace them. A generation
is deleted by hand, and only as docs/versioning.md allows.

`python -m tests.replay.generations` archives the current generation of the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

HISTORIES = Path(__file__).resolve().parent / "histories"
ARCHIVED = re.compile(r"^v(\d+)_")


def generation_of(path: Path) -> int | None:
    """The archived generation a history file belongs to; None for the current one."""
    match = ARCHIVED.match(path.name)
    return int(match.group(1)) if match else None


def archive_current(directory: Path = HISTORIES) -> list[Path]:
    """Move the current histories into the next generation; the archived paths, in order."""
    files = sorted(directory.glob("*.json"))
    current = [path for path in files if generation_of(path) is None]
    if not current:
        return []
    latest = max((generation_of(path) or 0 for path in files), default=0)
    archived = []
    for path in current:
        # above every existing generation, so never a name already taken
        target = path.with_name(f"v{latest + 1}_{path.name}")
        path.rename(target)
        archived.append(target)
    return archived


if __name__ == "__main__":
    moved = archive_current()
    generation = f" as generation v{generation_of(moved[0])}" if moved else ""
    print(f"archived {len(moved)} histories{generation}")
