"""`make dev` on a data directory from an older checkout: the dev server's SQLite file keeps
the search attributes it was created with, so the stack adds the ones added since."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from ops.devstack import Stack, binary, port_open, wait_for
from tests.conftest import make_settings
from workflows.search_attributes import ALL


def test_a_temporal_db_from_an_older_checkout_gets_the_new_search_attributes(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    host, port = settings.temporal.address.rsplit(":", 1)
    common = ["--address", settings.temporal.address, "--namespace", settings.temporal.namespace]
    # an older checkout's dev server created the file knowing one attribute only
    older = subprocess.Popen(
        [
            binary("temporal"),
            "server",
            "start-dev",
            "--ip",
            host,
            "--port",
            port,
            "--db-filename",
            str(tmp_path / "temporal.db"),
            "--namespace",
            settings.temporal.namespace,
            "--headless",
            "--search-attribute=PaymentStatus=Keyword",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for("older dev server", lambda: port_open(host, int(port)), 60)
    finally:
        older.terminate()
        older.wait(30)

    stack = Stack(settings, web_ui=False)
    try:
        stack.start_temporal()
        listed = subprocess.run(
            [binary("temporal"), "operator", "search-attribute", "list", *common, "-o", "json"],
            capture_output=True,
            check=True,
            timeout=30,
        )
    finally:
        stack.stop_all()
    registered = json.loads(listed.stdout)["customAttributes"]
    assert {key.name for key in ALL} <= set(registered)
    assert registered["ReviewEscalated"] == "INDEXED_VALUE_TYPE_BOOL"
