"""Token-bucket rate limiting, per key (an address or a user), in memory.

A bucket holds up to `burst` tokens and refills at `per_second`; an action
takes one token or is refused with the time until one is back, which becomes
`M_LIMIT_EXCEEDED` with `retry_after_ms`.
"""

from __future__ import annotations

import math

from hearth.clock import Clock
from hearth.config import RateLimit, RateLimitsConfig
from hearth.errors import limit_exceeded


class Ratelimiter:
    _MAX_KEYS = 100_000

    def __init__(self, limit: RateLimit, clock: Clock, *, enabled: bool = True) -> None:
        self._rate = limit.per_second
        self._burst = float(limit.burst)
        self._clock = clock
        self._enabled = enabled
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)

    def check(self, key: str) -> None:
        """Take one token for `key`, or raise M_LIMIT_EXCEEDED."""
        if not self._enabled:
            return
        now = self._clock.monotonic()
        tokens, last = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens < 1.0:
            raise limit_exceeded(math.ceil((1.0 - tokens) / self._rate * 1000))
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self._MAX_KEYS:
            self._prune(now)

    def peek(self, key: str) -> None:
        """Raise M_LIMIT_EXCEEDED if `key` has no token left, without taking one.

        For limits on failures: check before trying, `check` only when the try fails.
        """
        if not self._enabled or key not in self._buckets:
            return
        now = self._clock.monotonic()
        tokens, last = self._buckets[key]
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens < 1.0:
            raise limit_exceeded(math.ceil((1.0 - tokens) / self._rate * 1000))

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled completely: they hold no information."""
        full_after = self._burst / self._rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}


class Ratelimiters:
    """The server's named limiters, built from config."""

    def __init__(self, config: RateLimitsConfig, clock: Clock) -> None:
        on = config.enabled
        self.login_per_address = Ratelimiter(config.login_per_address, clock, enabled=on)
        self.login_per_account = Ratelimiter(config.login_per_account, clock, enabled=on)
        self.failed_login_per_account = Ratelimiter(config.failed_login_per_account, clock, enabled=on)
        self.registration_per_address = Ratelimiter(config.registration_per_address, clock, enabled=on)
