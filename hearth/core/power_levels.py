"""Power levels: who may do what in a room, per room version.

Design note
-----------
Power levels are read far more often than they are written: every auth check
asks for the sender's level and the level an event type needs, and state
resolution sorts events by their senders' levels. So reading is lazy and
cheap: `PowerLevels` wraps the ``m.room.power_levels`` content and the room's
creators and parses only the values a caller actually asks for. Nothing is
copied or normalised up front.

Three rules shape the numbers:

* Defaults (client-server ``m.room.power_levels`` schema and the federation
  "Definitions"): ``users_default`` 0, ``events_default`` 0, ``state_default``
  50, ``invite`` 0, ``kick``/``ban``/``redact`` 50, notification keys 50. With no
  power levels event at all, the creator has 100 (v1-11) and everyone else 0.
* Value encoding: v1-9 also accept integers written as strings (the
  "stringy power levels" fragment); v1-5 also accept floats, truncated (the
  "floaty" fragment; from v6 canonical JSON forbids floats, so we reject them);
  v10+ accept only JSON integers. A JSON boolean is never a power level, even
  though Python's ``bool`` is an ``int``.
* v12: the room creators (create ``sender`` plus ``additional_creators``) have
  infinite power, expressed as ``math.inf`` so ordinary comparisons just work.

Values in an *accepted* power levels event that still fail to parse (only
possible in old rooms whose events were authorised elsewhere) fall back to the
default rather than wedging the room; new power levels events are validated
strictly by `hearth.core.auth`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Final

from hearth.core.events import Event
from hearth.core.room_versions import RoomVersion

CREATE: Final = "m.room.create"
POWER_LEVELS: Final = "m.room.power_levels"

USERS_DEFAULT: Final = 0
EVENTS_DEFAULT: Final = 0
STATE_DEFAULT: Final = 50
NOTIFICATION_DEFAULT: Final = 50
# v1-11: the creator's level while the room has no m.room.power_levels event.
CREATOR_DEFAULT: Final = 100

# The "named" levels of the federation spec's Definitions and their defaults.
ACTION_DEFAULTS: Final[Mapping[str, int]] = {"invite": 0, "kick": 50, "ban": 50, "redact": 50}

# Every top-level integer property of the content, with its default.
SCALAR_DEFAULTS: Final[Mapping[str, int]] = {
    "users_default": USERS_DEFAULT,
    "events_default": EVENTS_DEFAULT,
    "state_default": STATE_DEFAULT,
    **ACTION_DEFAULTS,
}

_EMPTY: Final[Mapping[str, Any]] = {}


def as_mapping(value: object) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else an empty one (exact-dict fast path:
    an ABC isinstance check costs more than the rest of a dict lookup)."""
    if type(value) is dict:
        return value
    return value if isinstance(value, Mapping) else _EMPTY


def content_of(event: Event) -> Mapping[str, Any]:
    """An event's content, or an empty mapping if it is not an object."""
    return as_mapping(event.pdu.get("content"))


# v1-9 stringy integers: optional ASCII whitespace, one sign, decimal digits.
_STRINGY_INT = re.compile(r"[ \t\n\r\f\v]*[+-]?[0-9]+[ \t\n\r\f\v]*", re.ASCII)


def parse_power_level(value: object, room_version: RoomVersion) -> int | None:
    """The integer a power level value stands for, or None if it is not one.

    Which encodings count depends on the room version (see module note); a
    caller decides whether None means "reject" (new events) or "use the
    default" (reading accepted state).
    """
    if type(value) is int:
        return value
    if room_version.enforce_int_power_levels or isinstance(value, bool):
        return None
    if isinstance(value, str):
        if _STRINGY_INT.fullmatch(value) is None:
            return None
        return int(value.strip(" \t\n\r\f\v"))
    if isinstance(value, float) and not room_version.strict_canonical_json:
        # "floaty" power levels (v1-5): truncate; infinities and NaN are invalid.
        if not math.isfinite(value):
            return None
        return int(value)
    return None


def creators(create: Event) -> set[str]:
    """The room's creators as the room version defines them.

    v1-10: ``content.creator``; v11: the create event's sender; v12: the sender
    plus ``content.additional_creators``. Malformed entries are skipped (the
    create event's own auth check rejects them in v12).
    """
    rv = create.room_version
    if not rv.implicit_room_creator:
        creator = create.content.get("creator")
        return {creator} if isinstance(creator, str) else set()
    sender = create.pdu.get("sender")
    result = {sender} if isinstance(sender, str) else set()
    if rv.privileged_creators:
        extra = create.content.get("additional_creators")
        if isinstance(extra, list):
            result.update(u for u in extra if isinstance(u, str))
    return result


class PowerLevels:
    """A lazily parsed view of a room's power levels at one point in its state.

    Built from the room's create event (for the creators) and its current
    ``m.room.power_levels`` event; either may be None. Cheap to construct:
    nothing is parsed until asked for.
    """

    __slots__ = ("_content", "_create", "_creators", "_rv", "has_event")

    def __init__(self, create: Event | None, power_levels: Event | None) -> None:
        self._create = create
        self.has_event = power_levels is not None
        content = content_of(power_levels) if power_levels is not None else _EMPTY
        self._content = content
        rv = power_levels.room_version if power_levels is not None else None
        if rv is None and create is not None:
            rv = create.room_version
        self._rv = rv
        self._creators: set[str] | None = None

    @property
    def content(self) -> Mapping[str, Any]:
        """The power levels content as sent (empty if there is no such event)."""
        return self._content

    def creators(self) -> set[str]:
        """The room's creators (empty without a create event)."""
        if self._creators is None:
            self._creators = creators(self._create) if self._create is not None else set()
        return self._creators

    def _value(self, raw: object, default: int) -> int:
        if raw is None or self._rv is None:
            return default
        parsed = parse_power_level(raw, self._rv)
        return default if parsed is None else parsed

    def _sub(self, key: str) -> Mapping[str, Any]:
        return as_mapping(self._content.get(key))

    def user_level(self, user_id: str) -> int | float:
        """The user's power level; ``math.inf`` for v12 creators."""
        rv = self._rv
        if rv is not None and rv.privileged_creators and user_id in self.creators():
            return math.inf
        if not self.has_event:
            return CREATOR_DEFAULT if user_id in self.creators() else USERS_DEFAULT
        users = self._sub("users")
        raw = users.get(user_id)
        if raw is not None:
            parsed = parse_power_level(raw, rv) if rv is not None else None
            if parsed is not None:
                return parsed
        return self._value(self._content.get("users_default"), USERS_DEFAULT)

    def event_level(self, event_type: str, is_state: bool) -> int:
        """The level needed to send an event of this type (the "required power level")."""
        raw = self._sub("events").get(event_type)
        if raw is not None and self._rv is not None:
            parsed = parse_power_level(raw, self._rv)
            if parsed is not None:
                return parsed
        if is_state:
            return self._value(self._content.get("state_default"), STATE_DEFAULT)
        return self._value(self._content.get("events_default"), EVENTS_DEFAULT)

    def level(self, action: str) -> int:
        """A named level: ``invite``, ``kick``, ``ban`` or ``redact`` (or any scalar key)."""
        return self._value(self._content.get(action), SCALAR_DEFAULTS.get(action, 0))

    def notification_level(self, key: str) -> int:
        """The level needed to trigger a notification kind, e.g. ``room`` for @room."""
        return self._value(self._sub("notifications").get(key), NOTIFICATION_DEFAULT)


def user_power_level(user_id: str, create: Event | None, power_levels: Event | None) -> int | float:
    """A user's power level: ``math.inf`` for v12 creators, 100 for the creator
    of a pre-v12 room without power levels, else ``users``/``users_default``."""
    return PowerLevels(create, power_levels).user_level(user_id)


def event_power_level(event_type: str, is_state: bool, power_levels: Event | None) -> int:
    """The level needed to send ``event_type`` (``events``, else ``state_default``
    or ``events_default``)."""
    return PowerLevels(None, power_levels).event_level(event_type, is_state)


def required_level(action: str, power_levels: Event | None) -> int:
    """The ``invite`` (default 0), ``kick``, ``ban`` or ``redact`` (default 50) level."""
    return PowerLevels(None, power_levels).level(action)


def notification_power_level(key: str, power_levels: Event | None) -> int:
    """The level for a ``notifications`` key such as ``room`` (default 50)."""
    return PowerLevels(None, power_levels).notification_level(key)


def _domain(identifier: str) -> str | None:
    _, sep, domain = identifier.partition(":")
    return domain if sep else None


def can_redact(
    redaction: Event, original: Event, create: Event | None, power_levels: Event | None
) -> bool:
    """Whether a redaction may be applied to ``original``.

    In v3+ this is the deferred "handling redactions" check done once both
    events are known: the redacter has the ``redact`` level, or is on the same
    server as the original's sender. In v1-2 it is the auth-time rule, which
    compares the domains of the two event IDs instead.
    """
    pl = PowerLevels(create, power_levels)
    sender = redaction.pdu.get("sender")
    if isinstance(sender, str) and pl.user_level(sender) >= pl.level("redact"):
        return True
    if redaction.room_version.deferred_redaction_checks:
        original_sender = original.pdu.get("sender")
        if not isinstance(sender, str) or not isinstance(original_sender, str):
            return False
        mine = _domain(sender)
        return mine is not None and mine == _domain(original_sender)
    mine = _domain(redaction.event_id)
    return mine is not None and mine == _domain(original.event_id)
