"""The power level helpers: value parsing per room version, defaults, creators
and v12's infinite creator power, and the deferred redaction check."""

from __future__ import annotations

import math
from typing import Any

import pytest

from hearth.core.events import Event
from hearth.core.power_levels import (
    PowerLevels,
    can_redact,
    creators,
    event_power_level,
    notification_power_level,
    parse_power_level,
    required_level,
    user_power_level,
)
from hearth.core.room_versions import V1, V2, V3, V5, V6, V9, V10, V11, V12, RoomVersion
from tests.helpers.auth_rooms import ALICE, BOB, CAROL, make_create


def _pl(rv: RoomVersion, content: dict[str, Any]) -> Event:
    pdu = {"type": "m.room.power_levels", "state_key": "", "sender": ALICE, "room_id": "!r:a.example",
           "content": content}
    return Event(pdu, "$pl", rv)


@pytest.mark.parametrize(
    ("value", "v1", "v6", "v10"),
    [
        (50, 50, 50, 50),
        (-7, -7, -7, -7),
        (0, 0, 0, 0),
        ("50", 50, 50, None),
        ("  +50\t", 50, 50, None),
        ("-0050", -50, -50, None),
        ("5 0", None, None, None),
        ("", None, None, None),
        ("+", None, None, None),
        ("50.0", None, None, None),
        ("1_000", None, None, None),
        ("١٢", None, None, None),  # non-ASCII digits
        ("\u00a050", None, None, None),  # non-ASCII whitespace
        (50.9, 50, None, None),
        (-50.9, -50, None, None),
        (5.114698e4, 51146, None, None),
        (float("inf"), None, None, None),
        (float("nan"), None, None, None),
        (True, None, None, None),
        (None, None, None, None),
        ([50], None, None, None),
        ({"a": 1}, None, None, None),
    ],
)
def test_parse_power_level(value: Any, v1: int | None, v6: int | None, v10: int | None) -> None:
    assert parse_power_level(value, V1) == v1
    assert parse_power_level(value, V5) == v1
    assert parse_power_level(value, V6) == v6
    assert parse_power_level(value, V9) == v6
    assert parse_power_level(value, V10) == v10
    assert parse_power_level(value, V12) == v10


def test_creators_per_version() -> None:
    v1 = make_create(V1, ALICE)
    assert creators(v1) == {ALICE}
    # before v11 the creator is content.creator, whoever sent it
    odd = Event({**v1.pdu, "content": {"creator": BOB}}, v1.event_id, V1)
    assert creators(odd) == {BOB}
    assert creators(Event({**v1.pdu, "content": {}}, v1.event_id, V1)) == set()
    v11 = make_create(V11, ALICE, content={"creator": BOB, "additional_creators": [CAROL]})
    assert creators(v11) == {ALICE}
    v12 = make_create(V12, ALICE, content={"additional_creators": [BOB, CAROL, 5]})
    assert creators(v12) == {ALICE, BOB, CAROL}


@pytest.mark.parametrize("rv", [V1, V6, V10, V11], ids=["v1", "v6", "v10", "v11"])
def test_user_levels_before_v12(rv: RoomVersion) -> None:
    create = make_create(rv, ALICE)
    assert user_power_level(ALICE, create, None) == 100
    assert user_power_level(BOB, create, None) == 0
    assert user_power_level(BOB, None, None) == 0
    pl = _pl(rv, {"users": {BOB: 30}, "users_default": 5})
    assert user_power_level(BOB, create, pl) == 30
    assert user_power_level(CAROL, create, pl) == 5
    # with a power levels event the creator is an ordinary user
    assert user_power_level(ALICE, create, pl) == 5
    assert user_power_level(ALICE, create, _pl(rv, {})) == 0


def test_user_levels_v12() -> None:
    create = make_create(V12, ALICE, content={"additional_creators": [BOB]})
    pl = _pl(V12, {"users": {CAROL: 30}, "users_default": 5})
    for power_levels in (None, pl):
        assert user_power_level(ALICE, create, power_levels) == math.inf
        assert user_power_level(BOB, create, power_levels) == math.inf
    assert user_power_level(CAROL, create, pl) == 30
    assert user_power_level(CAROL, create, None) == 0
    assert user_power_level("@other:x", create, pl) == 5


def test_stringy_and_unreadable_values_in_state() -> None:
    pl = _pl(V9, {"users": {BOB: "30", CAROL: "junk"}, "users_default": "7"})
    assert user_power_level(BOB, None, pl) == 30
    assert user_power_level(CAROL, None, pl) == 7  # unreadable: falls back to the default
    pl10 = _pl(V10, {"users": {BOB: "30"}, "users_default": "7", "ban": "1"})
    assert user_power_level(BOB, None, pl10) == 0
    assert required_level("ban", pl10) == 50
    assert user_power_level(BOB, None, _pl(V1, {"users": "nope"})) == 0


@pytest.mark.parametrize("rv", [V1, V10, V12], ids=["v1", "v10", "v12"])
def test_event_levels(rv: RoomVersion) -> None:
    assert event_power_level("m.room.name", True, None) == 50
    assert event_power_level("m.room.message", False, None) == 0
    pl = _pl(rv, {"events": {"m.room.name": 20, "m.room.message": 5}, "state_default": 40,
                  "events_default": 3})
    assert event_power_level("m.room.name", True, pl) == 20
    assert event_power_level("m.room.message", False, pl) == 5
    assert event_power_level("m.room.topic", True, pl) == 40
    assert event_power_level("m.custom", False, pl) == 3
    # the events map is by type, whatever kind of event it is
    assert event_power_level("m.room.name", False, pl) == 20
    assert event_power_level("m.room.topic", True, _pl(rv, {"events": "nope"})) == 50


@pytest.mark.parametrize(("action", "default"), [("invite", 0), ("kick", 50), ("ban", 50), ("redact", 50)])
def test_required_levels(action: str, default: int) -> None:
    assert required_level(action, None) == default
    assert required_level(action, _pl(V11, {})) == default
    assert required_level(action, _pl(V11, {action: 12})) == 12


def test_notification_levels() -> None:
    assert notification_power_level("room", None) == 50
    assert notification_power_level("room", _pl(V11, {"notifications": {"room": 10}})) == 10
    assert notification_power_level("room", _pl(V11, {"notifications": {"other": 10}})) == 50
    assert notification_power_level("room", _pl(V11, {"notifications": []})) == 50
    assert notification_power_level("room", _pl(V1, {"notifications": {"room": "20"}})) == 20


def test_power_levels_view_is_lazy_and_reusable() -> None:
    create = make_create(V12, ALICE)
    view = PowerLevels(create, _pl(V12, {"users": {BOB: 10}, "kick": 20}))
    assert view.has_event
    assert view.user_level(ALICE) == math.inf
    assert view.user_level(BOB) == 10
    assert view.level("kick") == 20
    assert view.creators() == {ALICE}
    assert not PowerLevels(None, None).has_event


def _ev(rv: RoomVersion, event_id: str, sender: str, etype: str = "m.room.message") -> Event:
    return Event({"type": etype, "sender": sender, "room_id": "!r:a.example", "content": {}}, event_id, rv)


@pytest.mark.parametrize("rv", [V3, V10, V11], ids=["v3", "v10", "v11"])
def test_can_redact_v3_plus_uses_sender_domains(rv: RoomVersion) -> None:
    create = make_create(rv, ALICE)
    pl = _pl(rv, {"users": {ALICE: 100}})
    original = _ev(rv, "$orig", BOB)
    assert can_redact(_ev(rv, "$r1", BOB, "m.room.redaction"), original, create, pl)
    assert can_redact(_ev(rv, "$r2", "@bob2:b.example", "m.room.redaction"), original, create, pl)
    assert not can_redact(_ev(rv, "$r3", CAROL, "m.room.redaction"), original, create, pl)
    assert can_redact(_ev(rv, "$r4", ALICE, "m.room.redaction"), original, create, pl)


def test_can_redact_v12_creator() -> None:
    create = make_create(V12, ALICE)
    pl = _pl(V12, {"redact": 10**9})
    assert can_redact(_ev(V12, "$r", ALICE, "m.room.redaction"), _ev(V12, "$o", BOB), create, pl)


@pytest.mark.parametrize("rv", [V1, V2], ids=["v1", "v2"])
def test_can_redact_v1_v2_uses_event_id_domains(rv: RoomVersion) -> None:
    create = make_create(rv, ALICE)
    pl = _pl(rv, {"users": {ALICE: 100}})
    original = _ev(rv, "$orig:b.example", CAROL)
    # by event ID domain, whoever the senders are
    assert can_redact(_ev(rv, "$r:b.example", CAROL, "m.room.redaction"), original, create, pl)
    assert not can_redact(_ev(rv, "$r:c.example", CAROL, "m.room.redaction"), original, create, pl)
    assert can_redact(_ev(rv, "$r:a.example", ALICE, "m.room.redaction"), original, create, pl)
