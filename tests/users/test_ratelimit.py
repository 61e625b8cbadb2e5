"""The token-bucket limiter on a fake clock: burst, refill, per-key buckets, peek."""

from __future__ import annotations

import pytest

from hearth.config import RateLimit
from hearth.errors import MatrixError
from hearth.ratelimit import Ratelimiter
from tests.helpers.clock import FakeClock


def _limiter(clock: FakeClock, *, per_second: float = 1.0, burst: int = 3,
             enabled: bool = True) -> Ratelimiter:
    return Ratelimiter(RateLimit(per_second=per_second, burst=burst), clock, enabled=enabled)


def _refused(limiter: Ratelimiter, key: str) -> MatrixError:
    with pytest.raises(MatrixError) as exc:
        limiter.check(key)
    return exc.value


def test_burst_then_refused_with_retry_after() -> None:
    clock = FakeClock()
    limiter = _limiter(clock, per_second=0.5, burst=3)
    for _ in range(3):
        limiter.check("a")
    err = _refused(limiter, "a")
    assert (err.status, err.errcode) == (429, "M_LIMIT_EXCEEDED")
    assert err.to_json()["retry_after_ms"] == 2000
    assert err.headers["Retry-After"] == "2"


def test_refills_at_the_configured_rate() -> None:
    clock = FakeClock()
    limiter = _limiter(clock, per_second=1.0, burst=2)
    limiter.check("a")
    limiter.check("a")
    clock.advance(999)
    _refused(limiter, "a")
    clock.advance(1)
    limiter.check("a")
    _refused(limiter, "a")


def test_refill_never_exceeds_the_burst() -> None:
    clock = FakeClock()
    limiter = _limiter(clock, per_second=1.0, burst=2)
    clock.advance(3_600_000)
    limiter.check("a")
    limiter.check("a")
    _refused(limiter, "a")


def test_keys_have_their_own_buckets() -> None:
    clock = FakeClock()
    limiter = _limiter(clock, burst=1)
    limiter.check("a")
    _refused(limiter, "a")
    limiter.check("b")


def test_disabled_limiter_allows_everything() -> None:
    limiter = _limiter(FakeClock(), burst=1, enabled=False)
    for _ in range(100):
        limiter.check("a")
        limiter.peek("a")


def test_peek_does_not_take_a_token() -> None:
    clock = FakeClock()
    limiter = _limiter(clock, burst=2)
    for _ in range(10):
        limiter.peek("a")
    limiter.check("a")
    limiter.peek("a")
    limiter.check("a")
    with pytest.raises(MatrixError) as exc:
        limiter.peek("a")
    assert exc.value.errcode == "M_LIMIT_EXCEEDED"
    clock.advance(1000)
    limiter.peek("a")


def test_forgotten_full_buckets_start_full_again() -> None:
    clock = FakeClock()
    limiter = _limiter(clock, per_second=1.0, burst=1)
    limiter._MAX_KEYS = 2
    limiter.check("a")
    clock.advance(5000)
    limiter.check("b")
    limiter.check("c")  # over the key limit: "a" has refilled and is pruned
    limiter.check("a")
    _refused(limiter, "b")
