"""Auth rules for m.room.power_levels events across room versions: what a sender
may change, notifications (v6+), value encodings (stringy v1-9, floaty v1-5,
integers only v10+) and v12's creators."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from hearth.core.auth import AuthError
from hearth.core.room_versions import KNOWN_ROOM_VERSIONS, V1, V9, V10, V12, RoomVersion
from tests.helpers.auth_rooms import ALICE, BOB, CAROL, DAVE, AuthRoom, versions

REMOVE = object()

Allowed = bool | Callable[[RoomVersion], bool]


def stringy(rv: RoomVersion) -> bool:
    return not rv.enforce_int_power_levels


def floaty(rv: RoomVersion) -> bool:
    return not rv.strict_canonical_json


def pre_notifications(rv: RoomVersion) -> bool:
    return not rv.limit_notifications_power_levels


def base_content(rv: RoomVersion) -> dict[str, Any]:
    users: dict[str, Any] = {BOB: 50, CAROL: 20, DAVE: 50}
    if not rv.privileged_creators:
        users[ALICE] = 100
    return {
        "users": users,
        "users_default": 0,
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 0,
        "events": {"m.room.name": 50, "m.room.power_levels": 50, "m.room.tombstone": 100},
        "notifications": {"room": 50, "high": 100},
    }


def _apply(content: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Apply {"key": value} / {"map.key": value} changes; REMOVE deletes."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in content.items()}
    for path, value in changes.items():
        head, sep, rest = path.partition(".")
        if sep and head in ("users", "events", "notifications"):
            target, key = out.setdefault(head, {}), rest
        else:
            target, key = out, path
        if value is REMOVE:
            target.pop(key, None)
        else:
            target[key] = value
    return out


@dataclass
class Case:
    id: str
    change: Mapping[str, Any]
    allowed: Allowed
    before: Mapping[str, Any] = field(default_factory=dict)  # changes to the current event
    sender: str = BOB
    match: str | None = None

    def expected(self, rv: RoomVersion) -> bool:
        return self.allowed(rv) if callable(self.allowed) else self.allowed


CASES = [
    Case("no change", {}, True),
    # top-level levels
    Case("lower ban", {"ban": 40}, True),
    Case("raise ban to own level", {"ban": 50}, True),
    Case("raise ban above own level", {"ban": 51}, False, match="cannot set ban"),
    Case("lower a level above own", {"kick": 40}, False, before={"kick": 60}, match="cannot change kick"),
    Case("remove a level at own", {"redact": REMOVE}, True),
    Case("remove a level above own", {"redact": REMOVE}, False, before={"redact": 60}),
    Case("add users_default", {"users_default": 10}, True, before={"users_default": REMOVE}),
    Case("add users_default above own", {"users_default": 60}, False, before={"users_default": REMOVE}),
    Case("add state_default above own", {"state_default": 51}, False),
    # events
    Case("lower an event level", {"events.m.room.name": 10}, True),
    Case("change an event level above own", {"events.m.room.tombstone": 10}, False,
         match="tombstone"),
    Case("remove an event level above own", {"events.m.room.tombstone": REMOVE}, False),
    Case("remove an event level at own", {"events.m.room.name": REMOVE}, True),
    Case("add an event level at own", {"events.m.room.topic": 50}, True),
    Case("add an event level above own", {"events.m.room.topic": 51}, False),
    Case("remove whole events map", {"events": REMOVE}, False),
    # notifications: checked from v6
    Case("lower a notification level", {"notifications.room": 0}, True),
    Case("raise a notification level above own", {"notifications.room": 60}, pre_notifications,
         match="notifications"),
    Case("change a notification level above own", {"notifications.high": 0}, pre_notifications),
    Case("remove a notification level above own", {"notifications.high": REMOVE}, pre_notifications),
    Case("add a notification level above own", {"notifications.other": 60}, pre_notifications),
    # users
    Case("promote a lower user", {"users." + CAROL: 40}, True),
    Case("promote a lower user to own level", {"users." + CAROL: 50}, True),
    Case("promote a lower user above own level", {"users." + CAROL: 51}, False,
         match="cannot raise"),
    Case("demote a lower user", {"users." + CAROL: 0}, True),
    Case("remove a lower user", {"users." + CAROL: REMOVE}, True),
    Case("demote an equal user", {"users." + DAVE: 0}, False, match="cannot change the level"),
    Case("remove an equal user", {"users." + DAVE: REMOVE}, False, match="cannot remove"),
    Case("demote self", {"users." + BOB: 10}, True),
    Case("remove self", {"users." + BOB: REMOVE}, True),
    Case("promote self", {"users." + BOB: 51}, False),
    Case("add a user at own level", {"users.@new:x.example": 50}, True),
    Case("add a user above own level", {"users.@new:x.example": 51}, False),
    # malformed users
    Case("users key not a user ID", {"users.bob": 0}, False, match="not a user ID"),
    Case("users key without server", {"users.@bob": 0}, False, match="not a user ID"),
    Case("users key with bad server", {"users.@bob:bad server": 0}, False, match="not a user ID"),
    Case("users not an object", {"users": [BOB]}, False, match="users is not an object"),
    Case("users value null", {"users." + CAROL: None}, False),
    # encodings
    Case("stringy scalar", {"ban": "40"}, stringy),
    Case("stringy scalar with whitespace and sign", {"ban": " +40 "}, stringy),
    Case("stringy scalar with leading zeros", {"ban": "0040"}, stringy),
    Case("stringy scalar above own", {"ban": "60"}, False),
    Case("stringy event level", {"events.m.room.name": "10"}, stringy),
    Case("stringy user level", {"users." + CAROL: "10"}, stringy),
    Case("stringy notification level", {"notifications.room": "10"}, stringy),
    Case("string that is not an integer", {"ban": "4o"}, False),
    Case("string float", {"ban": "40.5"}, False),
    Case("string exponent", {"ban": "4e1"}, False),
    Case("unicode digits", {"ban": "٤٠"}, False),
    Case("float scalar", {"ban": 40.7}, floaty),
    Case("float user level", {"users." + CAROL: 10.5}, floaty),
    Case("float above own truncates", {"ban": 50.9}, floaty),
    Case("infinite float", {"ban": float("inf")}, False),
    Case("boolean scalar", {"ban": True}, False),
    Case("boolean user level", {"users." + CAROL: False}, False),
    Case("null scalar", {"ban": None}, stringy),  # absent in v1-9 reading; v10 requires integers
    Case("object scalar", {"ban": {"x": 1}}, False),
    Case("events not an object", {"events": [1]}, False),
    Case("notifications not an object", {"notifications": 5}, pre_notifications),
    # unchanged values in another encoding do not count as changes
    Case("same value re-encoded", {"kick": 60}, stringy, before={"kick": "60"}),
    # unchanged users entries are not re-validated, so equal-but-retyped ones must be
    Case("boolean replacing an equal integer", {"users." + CAROL: True}, False,
         before={"users." + CAROL: 1}),
    Case("float replacing an equal integer", {"users." + CAROL: 20.0}, floaty),
]


def _room(rv: RoomVersion, before: Mapping[str, Any]) -> AuthRoom:
    room = AuthRoom(rv, power_levels=_apply(base_content(rv), before))
    for user in (BOB, CAROL, DAVE):
        room.join(user)
    return room


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@pytest.mark.parametrize("rv", list(KNOWN_ROOM_VERSIONS.values()),
                         ids=[f"v{v}" for v in KNOWN_ROOM_VERSIONS])
def test_power_levels_change(rv: RoomVersion, case: Case) -> None:
    room = _room(rv, case.before)
    current = room.state[("m.room.power_levels", "")].content
    new = _apply(dict(current), case.change)
    event = room.event("m.room.power_levels", case.sender, new, state_key="")
    if case.expected(rv):
        room.check(event)
    else:
        with pytest.raises(AuthError, match=case.match):
            room.check(event)


@pytest.mark.parametrize("rv", versions())
def test_sender_needs_the_power_levels_event_level(rv: RoomVersion) -> None:
    room = _room(rv, {"events.m.room.power_levels": 60})
    with pytest.raises(AuthError, match="too low"):
        room.send("m.room.power_levels", BOB, base_content(rv), state_key="")


@pytest.mark.parametrize("rv", versions())
def test_first_power_levels_event_is_allowed(rv: RoomVersion) -> None:
    room = AuthRoom(rv, power_levels=None)
    room.send("m.room.power_levels", ALICE, {"users": {DAVE: 1000}, "ban": 0}, state_key="")


@pytest.mark.parametrize("rv", versions())
def test_first_power_levels_event_still_checks_users(rv: RoomVersion) -> None:
    room = AuthRoom(rv, power_levels=None)
    with pytest.raises(AuthError, match="not a user ID"):
        room.send("m.room.power_levels", ALICE, {"users": {"dave": 10}}, state_key="")


@pytest.mark.parametrize(
    ("rv", "allowed"), [(V1, True), (V9, True), (V10, False), (V12, False)],
    ids=["v1", "v9", "v10", "v12"],
)
def test_first_power_levels_event_with_unreadable_level(rv: RoomVersion, allowed: bool) -> None:
    """v1-9 check nothing but ``users`` before "no previous power levels: allow"."""
    room = AuthRoom(rv, power_levels=None)
    event = room.event("m.room.power_levels", ALICE, {"ban": "fifty"}, state_key="")
    if allowed:
        room.check(event)
    else:
        with pytest.raises(AuthError, match="ban is not an integer"):
            room.check(event)


def test_creator_has_100_until_power_levels_exist_before_v12() -> None:
    room = AuthRoom(V10, power_levels=None)
    room.join(BOB)
    # level 100 is enough for a state event (state_default 50) ...
    room.send("m.room.name", ALICE, {"name": "x"}, state_key="")
    with pytest.raises(AuthError, match="too low"):
        room.send("m.room.name", BOB, {"name": "x"}, state_key="")
    # ... and once power levels exist, the creator is just a listed user
    room.send("m.room.power_levels", ALICE, {"users": {ALICE: 100}}, state_key="")
    with pytest.raises(AuthError, match="cannot set ban"):
        room.send("m.room.power_levels", ALICE, {"users": {ALICE: 100}, "ban": 101}, state_key="")


# --- v12 creators ----------------------------------------------------------------------


@pytest.mark.parametrize("listed", [ALICE, BOB])
def test_v12_power_levels_may_not_list_creators(listed: str) -> None:
    room = AuthRoom(V12, create_content={"additional_creators": [BOB]}, power_levels=None)
    with pytest.raises(AuthError, match="creators may not be listed"):
        room.send("m.room.power_levels", ALICE, {"users": {listed: 100}}, state_key="")
    room.send("m.room.power_levels", ALICE, {"users": {CAROL: 100}}, state_key="")


@pytest.mark.parametrize("rv", versions(lambda rv: not rv.privileged_creators))
def test_creators_may_be_listed_before_v12(rv: RoomVersion) -> None:
    room = AuthRoom(rv, power_levels=None)
    room.send("m.room.power_levels", ALICE, {"users": {ALICE: 100}}, state_key="")


def test_v12_creator_has_infinite_power() -> None:
    room = AuthRoom(V12, create_content={"additional_creators": [BOB]})
    room.join(BOB)
    content = {"users": {CAROL: 10**15}, "ban": 10**15, "events": {"m.room.tombstone": 10**15}}
    room.send("m.room.power_levels", BOB, content, state_key="")
    room.send("m.room.power_levels", ALICE, {"users": {}}, state_key="")


def test_v12_non_creator_cannot_touch_creators() -> None:
    room = AuthRoom(V12, power_levels={"users": {BOB: 100}})
    room.join(BOB)
    with pytest.raises(AuthError, match="creators may not be listed"):
        room.send("m.room.power_levels", BOB, {"users": {BOB: 100, ALICE: 0}}, state_key="")


def test_pre_v12_top_user_can_demote_the_creator() -> None:
    room = AuthRoom(V1, power_levels={"users": {ALICE: 100, BOB: 101}})
    room.join(BOB)
    room.send("m.room.power_levels", BOB, {"users": {ALICE: 0, BOB: 101}}, state_key="")
