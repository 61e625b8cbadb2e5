"""Time and randomness as injectable objects, so tests control them."""

from __future__ import annotations

import secrets
import string
import time
from typing import Protocol


class Clock(Protocol):
    def time_ms(self) -> int: ...

    def monotonic(self) -> float: ...


class SystemClock:
    def time_ms(self) -> int:
        return int(time.time() * 1000)

    def monotonic(self) -> float:
        return time.monotonic()


class IdGenerator:
    """Random identifiers: device IDs, session IDs, and 256-bit secrets."""

    _DEVICE_ALPHABET = string.ascii_uppercase

    def device_id(self) -> str:
        return "".join(secrets.choice(self._DEVICE_ALPHABET) for _ in range(10))

    def session_id(self) -> str:
        return secrets.token_urlsafe(18)

    def secret(self, prefix: str) -> str:
        """A bearer secret with 256 random bits and a recognisable prefix."""
        return prefix + secrets.token_urlsafe(32)
