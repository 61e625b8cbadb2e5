"""The error hierarchy raised by `hearth.core`.

Core code is pure: it never knows about HTTP. It raises one of these, each
carrying a human-readable ``reason``; the api/ layer maps them to Matrix error
codes (``M_BAD_JSON``, ``M_INVALID_PARAM``, ``M_FORBIDDEN``...). Every core error
derives from `CoreError` so a caller can catch "any malformed input" in one place
without swallowing genuine bugs (``KeyError``, ``TypeError``) along with it.
"""

from __future__ import annotations


class CoreError(Exception):
    """Base class for every error `hearth.core` raises on bad input."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class InvalidJSON(CoreError):
    """Bytes that are not acceptable JSON (bad UTF-8, duplicate keys, bad numbers)."""


class InvalidIdentifier(CoreError, ValueError):
    """A user ID, room ID, event ID, alias or server name that breaks the grammar."""


class InvalidPDU(CoreError):
    """A PDU that is malformed for its room version (shape, types, sizes, JSON)."""


class SignatureError(CoreError):
    """A required signature is missing, unverifiable or made with an expired key."""


class HashMismatch(CoreError):
    """An event's content hash does not match its content (so it must be redacted)."""


class EventTooLarge(InvalidPDU):
    """A PDU over 65536 bytes of canonical JSON (api/ maps this to M_TOO_LARGE)."""
