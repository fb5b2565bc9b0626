"""`payments batches submit FILE`: send a payment batch file through the API and follow it
with a progress bar until every item has finished.

The file's form follows its name: `.json` (the JSON body), `.csv` (the CSV of DESIGN §10),
`.xml` (pain.001.001.09). The Idempotency-Key defaults to a digest of the file, so sending
the same file again (after a crash, a lost answer, a second click) replays the first answer
and never pays twice; pass `--idempotency-key` to send identical content as a new batch.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import httpx

CONTENT_TYPES = {".json": "application/json", ".csv": "text/csv", ".xml": "application/xml"}
FINISHED = frozenset({"completed", "canceled"})
# item statuses that are the end of the item
DONE_ITEM = frozenset({"settled", "failed", "rejected", "canceled", "returned"})
BAR_WIDTH = 30


def file_key(content: bytes) -> str:
    """The default Idempotency-Key of a file: the same file names the same batch."""
    return "batch-file-" + hashlib.sha256(content).hexdigest()[:40]


def progress_line(batch: dict[str, Any]) -> str:
    """One line: a bar of the items finished, then the counts by status."""
    counts: dict[str, int] = batch.get("counts", {})
    total = max(1, sum(counts.values()))
    done = sum(count for status, count in counts.items() if status in DONE_ITEM)
    filled = BAR_WIDTH * done // total
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    detail = " ".join(f"{status}={count}" for status, count in sorted(counts.items()))
    return f"[{bar}] {done}/{total} {batch['status']} {detail}"


def submit(
    path: Path,
    *,
    api_url: str,
    api_key: str,
    idempotency_key: str | None = None,
    skip_invalid: bool = False,
    poll_seconds: float = 1.0,
    follow: bool = True,
    out: TextIO = sys.stdout,
) -> int:
    """Send the file, then redraw the progress bar until the batch finishes; returns the exit
    status (0 completed, 1 refused or canceled)."""
    content = path.read_bytes()
    content_type = CONTENT_TYPES.get(path.suffix.lower())
    if content_type is None:
        print(f"error: {path.name}: name it .json, .csv or .xml", file=out)
        return 2
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Idempotency-Key": idempotency_key or file_key(content),
        "Content-Type": content_type,
    }
    params = {"on_invalid_item": "skip"} if skip_invalid else {}
    with httpx.Client(base_url=api_url, timeout=120) as http:
        started = time.monotonic()
        response = http.post("/v1/payment-batches", content=content, headers=headers, params=params)
        if response.status_code != 202:
            problem = response.json()
            print(
                f"refused ({response.status_code} {problem.get('code')}): {problem.get('detail')}",
                file=out,
            )
            for error in problem.get("errors") or []:
                where = f"line {error['line']}" if error.get("line") else f"item {error['index']}"
                print(f"  {where}: {error['field']}: {error['code']}: {error['detail']}", file=out)
            return 1
        batch = response.json()
        print(
            f"{batch['id']}: {batch['item_count']} items accepted in"
            f" {time.monotonic() - started:.2f}s ({batch['status']};"
            f" {batch['skipped_count']} skipped)",
            file=out,
        )
        for error in batch.get("skipped_items") or []:
            where = f"line {error['line']}" if error.get("line") else f"item {error['index']}"
            print(f"  skipped {where}: {error['field']}: {error['code']}", file=out)
        while follow and batch["status"] not in FINISHED:
            out.write("\r" + progress_line(batch))
            out.flush()
            time.sleep(poll_seconds)
            answer = http.get(f"/v1/payment-batches/{batch['id']}", headers=headers)
            answer.raise_for_status()
            batch = answer.json()
        out.write("\r" + progress_line(batch) + "\n")
    return 0 if batch["status"] in ("completed", "processing", "in_review") else 1
