"""The filter checks the ephemeral and presence streams apply in memory."""

from __future__ import annotations

from hearth.sync.streams.filtering import ephemeral_room_wanted, sender_wanted, type_wanted
from hearth.users.filters import EventFilter, RoomEventFilter


def test_types_with_globs_and_exclusions() -> None:
    assert type_wanted(None, "m.typing")
    assert type_wanted(EventFilter(), "m.typing")
    assert type_wanted(EventFilter(types=["m.*"]), "m.typing")
    assert not type_wanted(EventFilter(types=["m.receipt"]), "m.typing")
    assert not type_wanted(EventFilter(types=[]), "m.typing")
    assert not type_wanted(EventFilter(types=["m.*"], not_types=["*.typing"]), "m.typing")
    assert not type_wanted(EventFilter(types=["m.typ"]), "m.typing")  # whole type, not a prefix
    assert type_wanted(EventFilter(types=["m.t.ping"]), "m.t.ping")
    assert not type_wanted(EventFilter(types=["m.t.ping"]), "m.txping")  # '.' is literal


def test_senders_and_rooms() -> None:
    assert sender_wanted(None, "@a:x")
    assert sender_wanted(EventFilter(senders=["@a:x"]), "@a:x")
    assert not sender_wanted(EventFilter(senders=["@a:x"]), "@b:x")
    assert not sender_wanted(EventFilter(not_senders=["@a:x"]), "@a:x")
    assert ephemeral_room_wanted(None, "!r:x")
    assert ephemeral_room_wanted(RoomEventFilter(rooms=["!r:x"]), "!r:x")
    assert not ephemeral_room_wanted(RoomEventFilter(rooms=["!s:x"]), "!r:x")
    assert not ephemeral_room_wanted(RoomEventFilter(not_rooms=["!r:x"]), "!r:x")
