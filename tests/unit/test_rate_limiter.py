"""The per-key token buckets: per second for every request, per minute for screenings."""

from __future__ import annotations

import pytest

from api.limits import RateLimiter


def test_a_per_minute_limit_allows_its_burst_then_asks_to_wait_seconds() -> None:
    limiter = RateLimiter(3, per_seconds=60.0)
    assert [limiter.check("key", None) for _ in range(3)] == [None, None, None]
    wait = limiter.check("key", None)
    # one token comes back every 20 s at 3 a minute
    assert wait is not None and wait == pytest.approx(20.0, abs=0.5)
    # another key has its own bucket
    assert limiter.check("other", None) is None


def test_a_per_second_limit_refills_within_a_second() -> None:
    limiter = RateLimiter(2)
    assert limiter.check("key", None) is None and limiter.check("key", None) is None
    wait = limiter.check("key", None)
    assert wait is not None and wait <= 0.5 + 1e-6


def test_idle_buckets_are_forgotten_so_many_addresses_do_not_grow_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr("api.limits.time.monotonic", lambda: now[0])
    limiter = RateLimiter(3, per_seconds=60.0)
    monkeypatch.setattr(RateLimiter, "MAX_BUCKETS", 4)
    for address in ("a", "b", "c"):
        limiter.check(address, None)
    for _ in range(3):
        limiter.check("busy", None)
    assert limiter.peek("busy") is not None  # out of tokens
    now[0] += 61.0  # a, b, c and busy have all refilled
    limiter.check("new", None)
    assert set(limiter._buckets) == {"new"}
    assert limiter.peek("busy") is None  # forgetting a full bucket changed nothing
