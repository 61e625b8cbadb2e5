"""Auth rules for non-membership events: the create/room checks, m.federate,
aliases (v1-5), the sender-joined rule, third-party invite events, required
power levels, @-state keys and redactions (v1-2 vs v3+)."""

from __future__ import annotations

import pytest

from hearth.core.auth import AuthError, check_auth_rules, check_auth_rules_in_state
from hearth.core.events import Event
from hearth.core.room_versions import V1, V2, V3, V5, V6, V11, V12, RoomVersion
from tests.helpers.auth_rooms import ALICE, BOB, CAROL, DAVE, AuthRoom, make_create, versions


@pytest.mark.parametrize("rv", versions())
def test_message_from_joined_member_is_allowed(rv: RoomVersion) -> None:
    room = AuthRoom(rv)
    room.join(BOB)
    room.send("m.room.message", BOB, {"body": "hello"})


@pytest.mark.parametrize("rv", versions())
@pytest.mark.parametrize("membership", [None, "invite", "leave", "ban", "knock"])
def test_sender_must_be_joined(rv: RoomVersion, membership: str | None) -> None:
    room = AuthRoom(rv)
    if membership is not None:
        room.member(BOB, membership, sender=ALICE)
    with pytest.raises(AuthError, match=r"sender: .* not joined"):
        room.send("m.room.message", BOB, {"body": "hello"})


@pytest.mark.parametrize("rv", versions())
def test_missing_create_event_is_rejected(rv: RoomVersion) -> None:
    room = AuthRoom(rv)
    event = room.event("m.room.message", ALICE, {"body": "x"})
    auth = [e for e in room.auth_events_for(event) if e.type != "m.room.create"]
    with pytest.raises(AuthError, match=r"no m.room.create"):
        check_auth_rules(event, auth)


@pytest.mark.parametrize("rv", versions())
def test_create_event_of_another_room_is_rejected(rv: RoomVersion) -> None:
    room = AuthRoom(rv)
    other = AuthRoom(rv)
    event = room.event("m.room.message", ALICE, {"body": "x"})
    auth = [e for e in room.auth_events_for(event) if e.type != "m.room.create"] + [other.create]
    with pytest.raises(AuthError, match=r"create event|room ID"):
        check_auth_rules(event, auth)


@pytest.mark.parametrize("rv", versions())
def test_auth_event_of_another_room_is_rejected(rv: RoomVersion) -> None:
    room = AuthRoom(rv)
    event = room.event("m.room.message", ALICE, {"body": "x"})
    foreign = Event({**room.state[("m.room.member", ALICE)].pdu, "room_id": "!other:a.example"},
                    "$foreign", rv)
    state = dict(room.state)
    state[("m.room.member", ALICE)] = foreign
    with pytest.raises(AuthError, match=r"another room"):
        check_auth_rules_in_state(event, state)


def test_v12_room_id_must_be_the_create_event_id() -> None:
    room = AuthRoom(V12)
    event = room.event("m.room.message", ALICE, {"body": "x"}, room_id="!somethingelse")
    with pytest.raises(AuthError, match=r"room ID"):
        check_auth_rules_in_state(event, room.state)
    # the room ID sigil matters too
    event = room.event("m.room.message", ALICE, {"body": "x"}, room_id="$" + room.room_id[1:])
    with pytest.raises(AuthError, match=r"room ID"):
        check_auth_rules_in_state(event, room.state)


@pytest.mark.parametrize("rv", versions())
def test_duplicate_state_in_auth_events_is_rejected(rv: RoomVersion) -> None:
    room = AuthRoom(rv)
    event = room.event("m.room.message", ALICE, {"body": "x"})
    pl = room.state[("m.room.power_levels", "")]
    twin = Event(dict(pl.pdu), "$twin", rv)
    auth = [*room.auth_events_for(event), twin, room.create]
    with pytest.raises(AuthError, match=r"duplicate"):
        check_auth_rules(event, auth)


@pytest.mark.parametrize("rv", versions())
def test_non_state_auth_event_is_rejected(rv: RoomVersion) -> None:
    room = AuthRoom(rv)
    message = room.event("m.room.message", ALICE, {"body": "x"})
    event = room.event("m.room.message", ALICE, {"body": "y"})
    with pytest.raises(AuthError, match=r"not a state event"):
        check_auth_rules(event, [*room.auth_events_for(event), message])


# --- m.federate --------------------------------------------------------------------------


@pytest.mark.parametrize("rv", versions())
@pytest.mark.parametrize(
    ("federate", "sender", "allowed"),
    [
        (False, BOB, False),
        (False, DAVE, True),  # same server as the creator
        (True, BOB, True),
        ("false", BOB, True),  # only the JSON boolean false counts
        (None, BOB, True),
    ],
)
def test_m_federate(rv: RoomVersion, federate: object, sender: str, allowed: bool) -> None:
    content = {} if federate is None else {"m.federate": federate}
    room = AuthRoom(rv, create_content=content)
    room.join(sender)
    event = room.event("m.room.message", sender, {"body": "x"})
    if allowed:
        room.check(event)
    else:
        with pytest.raises(AuthError, match=r"m.federate"):
            room.check(event)


@pytest.mark.parametrize("rv", versions())
def test_m_federate_false_also_blocks_remote_joins(rv: RoomVersion) -> None:
    room = AuthRoom(rv, create_content={"m.federate": False}, join_rule="public")
    with pytest.raises(AuthError, match=r"m.federate"):
        room.send("m.room.member", BOB, {"membership": "join"}, state_key=BOB)
    room.send("m.room.member", DAVE, {"membership": "join"}, state_key=DAVE)


# --- m.room.aliases ------------------------------------------------------------------


@pytest.mark.parametrize("rv", versions(lambda rv: rv.special_case_aliases_auth))
def test_aliases_special_case_v1_to_v5(rv: RoomVersion) -> None:
    room = AuthRoom(rv)
    # no membership needed, only the server name as state key
    room.send("m.room.aliases", BOB, {"aliases": ["#a:b.example"]}, state_key="b.example")
    with pytest.raises(AuthError, match=r"aliases: state_key"):
        room.send("m.room.aliases", BOB, {"aliases": []}, state_key="a.example")
    with pytest.raises(AuthError, match=r"aliases: .*state_key"):
        room.send("m.room.aliases", BOB, {"aliases": []})


@pytest.mark.parametrize("rv", versions(lambda rv: not rv.special_case_aliases_auth))
def test_aliases_are_ordinary_state_from_v6(rv: RoomVersion) -> None:
    room = AuthRoom(rv)
    with pytest.raises(AuthError, match=r"not joined"):
        room.send("m.room.aliases", BOB, {"aliases": []}, state_key="b.example")
    room.join(BOB)
    with pytest.raises(AuthError, match=r"power level is too low"):
        room.send("m.room.aliases", BOB, {"aliases": []}, state_key="b.example")
    room.send("m.room.aliases", ALICE, {"aliases": []}, state_key="b.example")


# --- m.room.third_party_invite ---------------------------------------------------------------


@pytest.mark.parametrize("rv", versions())
@pytest.mark.parametrize(("invite_level", "allowed"), [(0, True), (10, False)])
def test_third_party_invite_event_needs_invite_level(
    rv: RoomVersion, invite_level: int, allowed: bool
) -> None:
    users = {} if rv.privileged_creators else {ALICE: 100}
    # the event type's own level is ignored: the invite level decides
    room = AuthRoom(rv, power_levels={"users": users, "invite": invite_level,
                                      "events": {"m.room.third_party_invite": 100}})
    room.join(BOB)
    event = room.event("m.room.third_party_invite", BOB, {"display_name": "x"}, state_key="tok")
    if allowed:
        room.check(event)
    else:
        with pytest.raises(AuthError, match=r"third_party_invite"):
            room.check(event)


# --- required power level and @-state keys -----------------------------------------------


@pytest.mark.parametrize("rv", versions())
@pytest.mark.parametrize(
    ("etype", "state_key", "level", "allowed"),
    [
        ("m.room.message", None, 0, True),
        ("m.room.message", None, 10, True),
        ("m.room.message", None, 11, False),
        ("m.room.name", "", 10, True),
        ("m.room.name", "", 11, False),
        ("m.custom", "", 10, False),  # state_default 50
        ("m.custom", None, 10, True),  # events_default 0
    ],
)
def test_required_power_level(
    rv: RoomVersion, etype: str, state_key: str | None, level: int, allowed: bool
) -> None:
    users = {BOB: 10} if rv.privileged_creators else {ALICE: 100, BOB: 10}
    room = AuthRoom(rv, power_levels={
        "users": users, "events": {"m.room.message": level, "m.room.name": level},
    })
    room.join(BOB)
    event = room.event(etype, BOB, {"body": "x"}, state_key=state_key)
    if allowed:
        room.check(event)
    else:
        with pytest.raises(AuthError, match=r"too low"):
            room.check(event)


@pytest.mark.parametrize("rv", versions())
def test_without_power_levels_only_the_creator_sends_state(rv: RoomVersion) -> None:
    room = AuthRoom(rv, power_levels=None, join_rule=None)
    room.join(BOB)
    room.send("m.room.name", ALICE, {"name": "x"}, state_key="")
    room.send("m.room.message", BOB, {"body": "x"})
    with pytest.raises(AuthError, match=r"too low"):
        room.send("m.room.name", BOB, {"name": "x"}, state_key="")


@pytest.mark.parametrize("rv", versions())
def test_at_state_keys_belong_to_their_user(rv: RoomVersion) -> None:
    users = {} if rv.privileged_creators else {ALICE: 100}
    room = AuthRoom(rv, power_levels={"users": users, "state_default": 0})
    room.join(BOB)
    room.send("m.custom", BOB, {}, state_key=BOB)
    with pytest.raises(AuthError, match=r"state_key"):
        room.send("m.custom", BOB, {}, state_key="@")  # not a user ID, but starts with @
    with pytest.raises(AuthError, match=r"state_key"):
        room.send("m.custom", BOB, {}, state_key=CAROL)
    with pytest.raises(AuthError, match=r"state_key"):
        room.send("m.custom", ALICE, {}, state_key=BOB)  # not even the creator
    room.send("m.custom", BOB, {}, state_key="bob")


@pytest.mark.parametrize("rv", versions())
def test_non_string_state_key_is_rejected(rv: RoomVersion) -> None:
    room = AuthRoom(rv)
    event = room.event("m.room.name", ALICE, {}, state_key="")
    bad = Event({**event.pdu, "state_key": 5}, event.event_id, rv)
    with pytest.raises(AuthError, match=r"state_key"):
        check_auth_rules_in_state(bad, room.state)
    bad = Event({**event.pdu, "state_key": None}, event.event_id, rv)
    with pytest.raises(AuthError, match=r"state_key"):
        check_auth_rules_in_state(bad, room.state)


# --- redactions ---------------------------------------------------------------------


@pytest.mark.parametrize("rv", [V1, V2], ids=["v1", "v2"])
def test_v1_v2_redaction_rule(rv: RoomVersion) -> None:
    room = AuthRoom(rv)
    room.join(BOB)
    own = room.send("m.room.message", BOB, {"body": "x"})
    other = room.send("m.room.message", ALICE, {"body": "x"})
    room.send("m.room.redaction", BOB, {}, redacts=own.event_id)
    with pytest.raises(AuthError, match=r"redaction"):
        room.send("m.room.redaction", BOB, {}, redacts=other.event_id)
    with pytest.raises(AuthError, match=r"redaction"):
        room.send("m.room.redaction", BOB, {})
    room.send("m.room.redaction", ALICE, {}, redacts=own.event_id)  # has the redact level


@pytest.mark.parametrize("rv", versions(lambda rv: rv.deferred_redaction_checks))
def test_redactions_are_deferred_from_v3(rv: RoomVersion) -> None:
    room = AuthRoom(rv)
    room.join(BOB)
    other = room.send("m.room.message", ALICE, {"body": "x"})
    if rv.redacts_in_content:
        room.send("m.room.redaction", BOB, {"redacts": other.event_id})
    else:
        room.send("m.room.redaction", BOB, {}, redacts=other.event_id)


@pytest.mark.parametrize("rv", [V3, V5, V6, V11, V12], ids=["v3", "v5", "v6", "v11", "v12"])
def test_redaction_event_level_still_applies(rv: RoomVersion) -> None:
    users = {} if rv.privileged_creators else {ALICE: 100}
    room = AuthRoom(rv, power_levels={"users": users, "events": {"m.room.redaction": 20}})
    room.join(BOB)
    with pytest.raises(AuthError, match=r"too low"):
        room.send("m.room.redaction", BOB, {"redacts": "$x"}, redacts="$x")


# --- the v12 create event is needed though not listed ---------------------------------


def test_v12_needs_create_passed_alongside() -> None:
    room = AuthRoom(V12)
    event = room.event("m.room.message", ALICE, {"body": "x"})
    assert all(e.type != "m.room.create" for e in room.auth_events_for(event))
    with pytest.raises(AuthError, match=r"no m.room.create"):
        check_auth_rules(event, room.auth_events_for(event))
    check_auth_rules(event, [*room.auth_events_for(event), room.create])


def test_create_from_helper_has_expected_room_id() -> None:
    create = make_create(V12)
    assert create.room_id == "!" + create.event_id[1:]
    assert "room_id" not in create.pdu
