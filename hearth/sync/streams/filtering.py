"""The parts of a sync filter that ephemeral and presence streams apply in memory.

`types` / `not_types` may use `*` for any run of characters; an exclusion
wins, and an empty inclusion list matches nothing (as for room events).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hearth.users.filters import EventFilter, Filter, RoomEventFilter


def _glob(patterns: Sequence[str]) -> re.Pattern[str]:
    return re.compile("|".join(".*".join(re.escape(p) for p in pat.split("*")) for pat in patterns))


def type_wanted(part: EventFilter | None, event_type: str) -> bool:
    """Whether a filter part lets events of `event_type` through at all."""
    if part is None:
        return True
    if part.not_types and _glob(part.not_types).fullmatch(event_type):
        return False
    if part.types is None:
        return True
    return bool(part.types) and _glob(part.types).fullmatch(event_type) is not None


def sender_wanted(part: EventFilter | None, sender: str) -> bool:
    if part is None:
        return True
    if part.not_senders and sender in part.not_senders:
        return False
    return part.senders is None or sender in part.senders


def ephemeral_filter(flt: Filter) -> RoomEventFilter | None:
    return flt.room.ephemeral if flt.room is not None else None


def ephemeral_room_wanted(part: RoomEventFilter | None, room_id: str) -> bool:
    """`room.ephemeral.rooms` / `not_rooms` (the top-level room lists are applied by sync)."""
    if part is None:
        return True
    if part.not_rooms and room_id in part.not_rooms:
        return False
    return part.rooms is None or room_id in part.rooms
