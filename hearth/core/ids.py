"""Matrix identifiers: parsing into small typed values, and validity predicates.

Design notes
------------
Each grammar in the appendices ("Identifier Grammar") has a ``parse_*`` function
that returns a frozen dataclass (whose ``str()`` is the identifier again) or
raises `InvalidIdentifier`, and an ``is_valid_*`` predicate. Services pass the
typed values around instead of re-splitting strings.

Two levels of strictness, because the spec has two:

- **Remote data** (events, federation requests) must be accepted in the
  *historical* grammar: a user ID localpart may be any non-surrogate code points
  except ``:`` and NUL, even empty. This is the default (``strict=False``).
- **New local users** must use the current grammar ``[a-z0-9._=\\-/+]+``:
  `is_valid_user_localpart`, or ``parse_user_id(s, strict=True)``.

Room and event IDs depend on the room version: before v12 a room ID is
``!opaque:domain``; in v12 it is ``!`` + the create event's reference hash
(43 characters of URL-safe unpadded base64). Event IDs are ``$opaque:domain``
in v1/v2, ``$`` + 43 characters of standard unpadded base64 in v3, and of
URL-safe unpadded base64 from v4. Functions that take an optional
``room_version`` accept any known form when it is omitted.

Every identifier is limited to 255 bytes of UTF-8, sigil and domain included.
Server names follow the grammar literally (a DNS name is 1-255 of
``[A-Za-z0-9.-]``); a dotted quad of numbers is read as an IPv4 literal, so its
octets must be 0-255; IPv6 literals are bracketed and checked with `ipaddress`.
Server names are case-sensitive and are never normalised here.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass

from hearth.core.errors import InvalidIdentifier
from hearth.core.room_versions import EventFormat, RoomVersion

MAX_ID_BYTES = 255

_SERVER_NAME = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]{2,45})\]|(?P<host>[A-Za-z0-9.\-]{1,255}))(?::(?P<port>[0-9]{1,5}))?",
    re.ASCII,
)
_IPV4 = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}", re.ASCII)
_STRICT_LOCALPART = re.compile(r"[a-z0-9._=\-/+]+", re.ASCII)
# Historical localparts (users, room ID opaque parts, aliases): anything but
# ":" , NUL and surrogates.
_LAX_LOCALPART = re.compile("[^:\x00\ud800-\udfff]*")
_HASH_ID_STANDARD = re.compile(r"[A-Za-z0-9+/]{43}", re.ASCII)
_HASH_ID_URLSAFE = re.compile(r"[A-Za-z0-9_\-]{43}", re.ASCII)
# Whole event IDs (sigil included) of the hash-based formats, for hot loops.
HASH_EVENT_ID_PATTERNS: dict[EventFormat, re.Pattern[str]] = {
    EventFormat.V3: re.compile(r"\$[A-Za-z0-9+/]{43}", re.ASCII),
    EventFormat.V4: re.compile(r"\$[A-Za-z0-9_\-]{43}", re.ASCII),
}


def within_id_limit(s: str) -> bool:
    """Whether ``s`` fits the 255-byte UTF-8 limit on identifiers, types and state keys."""
    if s.isascii():
        return len(s) <= MAX_ID_BYTES
    try:
        return len(s.encode("utf-8")) <= MAX_ID_BYTES
    except UnicodeError:
        return False


# --- server names -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerName:
    """A server name: host (IPv6 literals keep their brackets) and optional port."""

    host: str
    port: int | None = None

    def __str__(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def is_ip_literal(self) -> bool:
        return self.host.startswith("[") or _IPV4.fullmatch(self.host) is not None


def parse_server_name(s: str) -> ServerName:
    """Parse a server name per the appendices grammar."""
    if not isinstance(s, str):
        raise InvalidIdentifier("server name must be a string")
    m = _SERVER_NAME.fullmatch(s)
    if m is None:
        raise InvalidIdentifier(f"invalid server name {s[:300]!r}")
    ipv6, host, port = m.group("ipv6", "host", "port")
    if ipv6 is not None:
        try:
            ipaddress.IPv6Address(ipv6)
        except ValueError:
            raise InvalidIdentifier(f"invalid IPv6 literal in server name {s!r}") from None
        host = f"[{ipv6}]"
    elif _IPV4.fullmatch(host) and any(int(octet) > 255 for octet in host.split(".")):
        raise InvalidIdentifier(f"invalid IPv4 literal in server name {s!r}")
    return ServerName(host, int(port) if port is not None else None)


@functools.lru_cache(maxsize=4096)
def _server_name_ok(s: str) -> bool:
    # Cached: a handful of servers appear in every sender, room ID and event ID.
    try:
        parse_server_name(s)
    except InvalidIdentifier:
        return False
    return True


def is_valid_server_name(s: str) -> bool:
    return isinstance(s, str) and _server_name_ok(s)


def _split_if_valid(s: object, sigil: str) -> tuple[str, str] | None:
    """The non-raising twin of `_split_sigiled`, for the ``is_valid_*`` fast paths."""
    if not isinstance(s, str) or not s.startswith(sigil) or not within_id_limit(s):
        return None
    localpart, sep, domain = s[1:].partition(":")
    if not sep or not _server_name_ok(domain):
        return None
    return localpart, domain


# --- user IDs -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserID:
    """``@localpart:domain``; ``domain`` is the server name as written."""

    localpart: str
    domain: str

    def __str__(self) -> str:
        return f"@{self.localpart}:{self.domain}"

    @property
    def is_compliant(self) -> bool:
        """Whether the localpart meets the current (non-historical) grammar."""
        return is_valid_user_localpart(self.localpart)


def is_valid_user_localpart(localpart: str) -> bool:
    """The strict grammar, required when creating new local users."""
    return isinstance(localpart, str) and _STRICT_LOCALPART.fullmatch(localpart) is not None


def parse_user_id(s: str, *, strict: bool = False) -> UserID:
    """Parse a user ID; ``strict`` rejects historical (non-compliant) localparts."""
    localpart, domain = _split_sigiled(s, "@", "user ID")
    if strict:
        if not is_valid_user_localpart(localpart):
            raise InvalidIdentifier(f"user ID localpart {localpart[:300]!r} has disallowed characters")
    elif not _LAX_LOCALPART.fullmatch(localpart):
        raise InvalidIdentifier("user ID localpart contains NUL or a surrogate")
    return UserID(localpart, domain)


def is_valid_user_id(s: str, *, strict: bool = False) -> bool:
    parts = _split_if_valid(s, "@")
    if parts is None:
        return False
    return (_STRICT_LOCALPART if strict else _LAX_LOCALPART).fullmatch(parts[0]) is not None


def _split_sigiled(s: str, sigil: str, what: str) -> tuple[str, str]:
    """Split ``<sigil>localpart:domain`` and check the domain and total length."""
    if not isinstance(s, str):
        raise InvalidIdentifier(f"{what} must be a string")
    if not s.startswith(sigil):
        raise InvalidIdentifier(f"{what} {s[:300]!r} must start with {sigil!r}")
    if not within_id_limit(s):
        raise InvalidIdentifier(f"{what} is longer than {MAX_ID_BYTES} bytes")
    localpart, sep, domain = s[1:].partition(":")
    if not sep:
        raise InvalidIdentifier(f"{what} {s!r} has no ':domain' part")
    if not is_valid_server_name(domain):
        raise InvalidIdentifier(f"{what} {s!r} has an invalid server name")
    return localpart, domain


# --- room IDs, aliases, event IDs ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoomID:
    """``!opaque:domain`` (v1-v11) or ``!hash`` with ``domain`` None (v12+)."""

    opaque: str
    domain: str | None = None

    def __str__(self) -> str:
        return f"!{self.opaque}" if self.domain is None else f"!{self.opaque}:{self.domain}"


def parse_room_id(s: str, room_version: RoomVersion | None = None) -> RoomID:
    """Parse a room ID; with ``room_version``, only that version's form is accepted."""
    if not isinstance(s, str) or not s.startswith("!"):
        raise InvalidIdentifier(f"room ID {str(s)[:300]!r} must be a string starting with '!'")
    hash_form = ":" not in s
    if room_version is not None and hash_form != room_version.room_id_from_create_event:
        raise InvalidIdentifier(f"room ID {s[:300]!r} has the wrong form for room version "
                                f"{room_version.identifier}")
    if hash_form:
        if not _HASH_ID_URLSAFE.fullmatch(s, 1):
            raise InvalidIdentifier(f"room ID {s[:300]!r} is not '!' + a URL-safe base64 hash")
        return RoomID(s[1:])
    opaque, domain = _split_sigiled(s, "!", "room ID")
    if not _LAX_LOCALPART.fullmatch(opaque):
        raise InvalidIdentifier("room ID contains NUL or a surrogate")
    return RoomID(opaque, domain)


def is_valid_room_id(s: str, room_version: RoomVersion | None = None) -> bool:
    if not isinstance(s, str) or not s.startswith("!"):
        return False
    hash_form = ":" not in s
    if room_version is not None and hash_form != room_version.room_id_from_create_event:
        return False
    if hash_form:
        return _HASH_ID_URLSAFE.fullmatch(s, 1) is not None
    parts = _split_if_valid(s, "!")
    return parts is not None and _LAX_LOCALPART.fullmatch(parts[0]) is not None


@dataclass(frozen=True, slots=True)
class RoomAlias:
    """``#localpart:domain``."""

    localpart: str
    domain: str

    def __str__(self) -> str:
        return f"#{self.localpart}:{self.domain}"


def parse_room_alias(s: str) -> RoomAlias:
    localpart, domain = _split_sigiled(s, "#", "room alias")
    if not _LAX_LOCALPART.fullmatch(localpart):
        raise InvalidIdentifier("room alias contains NUL or a surrogate")
    return RoomAlias(localpart, domain)


def is_valid_room_alias(s: str) -> bool:
    parts = _split_if_valid(s, "#")
    return parts is not None and _LAX_LOCALPART.fullmatch(parts[0]) is not None


@dataclass(frozen=True, slots=True)
class EventID:
    """``$opaque:domain`` (v1/v2) or ``$hash`` with ``domain`` None (v3+)."""

    opaque: str
    domain: str | None = None

    def __str__(self) -> str:
        return f"${self.opaque}" if self.domain is None else f"${self.opaque}:{self.domain}"


def parse_event_id(s: str, room_version: RoomVersion | None = None) -> EventID:
    """Parse an event ID; with ``room_version``, only that version's format is accepted."""
    if not isinstance(s, str) or not s.startswith("$"):
        raise InvalidIdentifier(f"event ID {str(s)[:300]!r} must be a string starting with '$'")
    fmt = room_version.event_format if room_version is not None else None
    if ":" in s:
        if fmt is not None and fmt is not EventFormat.V1:
            raise InvalidIdentifier(f"event ID {s[:300]!r} has a domain, not allowed in room "
                                    f"version {room_version.identifier if room_version else ''}")
        opaque, domain = _split_sigiled(s, "$", "event ID")
        if not _LAX_LOCALPART.fullmatch(opaque):
            raise InvalidIdentifier("event ID contains NUL or a surrogate")
        return EventID(opaque, domain)
    if fmt is EventFormat.V1:
        raise InvalidIdentifier(f"event ID {s[:300]!r} has no ':domain' part")
    if fmt is EventFormat.V3:
        ok = _HASH_ID_STANDARD.fullmatch(s, 1) is not None
    elif fmt is EventFormat.V4:
        ok = _HASH_ID_URLSAFE.fullmatch(s, 1) is not None
    else:
        ok = _HASH_ID_STANDARD.fullmatch(s, 1) is not None or _HASH_ID_URLSAFE.fullmatch(s, 1) is not None
    if not ok:
        raise InvalidIdentifier(f"event ID {s[:300]!r} is not '$' + a 43-character base64 hash")
    return EventID(s[1:])


def is_valid_event_id(s: str, room_version: RoomVersion | None = None) -> bool:
    if not isinstance(s, str) or not s.startswith("$"):
        return False
    fmt = room_version.event_format if room_version is not None else None
    if ":" in s:
        if fmt is not None and fmt is not EventFormat.V1:
            return False
        parts = _split_if_valid(s, "$")
        return parts is not None and _LAX_LOCALPART.fullmatch(parts[0]) is not None
    if fmt is EventFormat.V4:
        return _HASH_ID_URLSAFE.fullmatch(s, 1) is not None
    if fmt is EventFormat.V3:
        return _HASH_ID_STANDARD.fullmatch(s, 1) is not None
    if fmt is EventFormat.V1:
        return False
    return _HASH_ID_STANDARD.fullmatch(s, 1) is not None or _HASH_ID_URLSAFE.fullmatch(s, 1) is not None


def domain_of(identifier: object) -> str:
    """The server name after the first ``:`` of a user ID, alias or v1 room/event ID."""
    if not isinstance(identifier, str):
        raise InvalidIdentifier("identifier must be a string")
    _, sep, domain = identifier.partition(":")
    if not sep or not is_valid_server_name(domain):
        raise InvalidIdentifier(f"identifier {identifier[:300]!r} has no valid domain")
    return domain
