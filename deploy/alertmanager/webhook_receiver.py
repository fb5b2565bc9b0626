"""The compose stack's alert receiver: Alertmanager's webhook, written to stdout.

Alertmanager (deploy/alertmanager/alertmanager.yml) posts each notification here, to
`/critical` or `/warning` by the route the alert took. Each alert becomes one JSON line
(`docker compose logs alert-receiver`): the route, firing or resolved, the alert's name,
severity, summary and runbook. In production point the two webhook URLs at the paging system
(PagerDuty, Opsgenie, a chat bridge) instead; this service stands in for it so the route is
exercised end to end, and tests/component/test_prometheus_rules.py runs this very file as
the receiver of a real Alertmanager.

Standard library only: it runs in a stock Python image with the file mounted, apart from the
platform's image and its settings.

    python webhook_receiver.py --host 0.0.0.0 --port 9095
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Alertmanager's notifications are a few KiB; refuse what no notification needs
MAX_BODY = 1 << 20
# notifications of different routes are handled in threads at once: a line is written whole,
# or two of them could interleave into one (print writes the text and its newline apart)
_STDOUT = threading.Lock()


def alert_lines(route: str, notification: dict[str, Any]) -> list[str]:
    """One JSON line per alert of an Alertmanager webhook notification (version 4)."""
    lines = []
    for alert in notification.get("alerts", []):
        labels = alert.get("labels", {})
        annotations = alert.get("annotations", {})
        lines.append(
            json.dumps(
                {
                    "route": route,
                    "receiver": notification.get("receiver"),
                    "status": alert.get("status"),
                    "alertname": labels.get("alertname"),
                    "severity": labels.get("severity"),
                    "labels": labels,
                    "summary": annotations.get("summary"),
                    "runbook_url": annotations.get("runbook_url"),
                    "starts_at": alert.get("startsAt"),
                },
                sort_keys=True,
            )
        )
    return lines


class Handler(BaseHTTPRequestHandler):
    """POST /<route>: a notification; GET /healthz: liveness."""

    def do_GET(self) -> None:
        """Answer the compose healthcheck."""
        self._answer(200 if self.path == "/healthz" else 404)

    def do_POST(self) -> None:
        """Print each alert of the notification, then acknowledge it."""
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY:
            self._answer(413 if length > MAX_BODY else 400)
            return
        try:
            notification = json.loads(self.rfile.read(length))
        except ValueError:
            self._answer(400)
            return
        if not isinstance(notification, dict):
            self._answer(400)
            return
        lines = alert_lines(self.path.strip("/"), notification)
        with _STDOUT:
            sys.stdout.write("".join(line + "\n" for line in lines))
            sys.stdout.flush()
        # 2xx tells Alertmanager the notification arrived; anything else makes it retry
        self._answer(200)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Access lines go to stderr, apart from the alerts on stdout."""
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def main(argv: list[str] | None = None) -> int:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9095)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    # the bound port (with --port 0, the one the system chose) for whoever started us
    print(f"listening on {args.host}:{server.server_address[1]}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
