"""Review tokens: proof that a four-eyes decision came through the platform's own door.

A `review` update is a Temporal call; anyone who can reach Temporal could send one with a
made-up reviewer. So the API (or the `payments` CLI) mints a token for the authenticated
principal: an HMAC over what was decided, on which workflow, by whom, until when. The
workflow has it checked by an activity (the secret stays in the worker, never in a history)
and refuses a review whose token is missing, altered, expired or minted for someone else.

Several secrets may be configured (rotation): the first mints, any verifies.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

VERSION = "rv1"


def principal_id(tenant_id: str, name: str) -> str:
    """The identity four-eyes compares: a principal is a name within its tenant."""
    return f"{tenant_id}:{name}"


def _mac(secret: str, subject: str, decision: str, principal: str, expires_at: int) -> str:
    # a unit separator cannot occur in ids, decisions or principal names, so no two different
    # claims serialise to the same message
    message = "\x1f".join(("review", subject, decision, principal, str(expires_at)))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def mint(secret: str, *, subject: str, decision: str, principal: str, expires_at: int) -> str:
    """A token for `principal` deciding `decision` on the workflow `subject`, valid until the
    Unix time `expires_at`."""
    return f"{VERSION}.{expires_at}.{_mac(secret, subject, decision, principal, expires_at)}"


def refusal(
    secrets: Sequence[str],
    token: str,
    *,
    subject: str,
    decision: str,
    principal: str,
    now: float,
) -> str | None:
    """Why `token` does not prove this decision (None: it does)."""
    if not token:
        return "no review token: reviews go through the API or the payments CLI"
    version, _, rest = token.partition(".")
    expiry, _, mac = rest.partition(".")
    if version != VERSION or not expiry.isdigit() or not mac:
        return "malformed review token"
    expires_at = int(expiry)
    if not any(
        hmac.compare_digest(mac, _mac(secret, subject, decision, principal, expires_at))
        for secret in secrets
    ):
        return "review token does not match this payment, decision and reviewer"
    if now > expires_at:
        return "review token expired"
    return None
