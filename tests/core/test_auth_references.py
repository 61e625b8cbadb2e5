"""Auth event selection (`auth_types_for_event`) and the state-independent checks
on the auth events an event cites (`check_auth_event_references`)."""

from __future__ import annotations

from typing import Any

import pytest

from hearth.core.auth import AuthError, auth_types_for_event, check_auth_event_references
from hearth.core.events import Event
from hearth.core.room_versions import V7, V8, V11, V12, RoomVersion
from tests.helpers.auth_rooms import ALICE, BOB, CAROL, AuthRoom, refs, versions

CREATE = ("m.room.create", "")
PL = ("m.room.power_levels", "")
JR = ("m.room.join_rules", "")


def _member(user: str) -> tuple[str, str]:
    return ("m.room.member", user)


def _with_create(rv: RoomVersion, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return keys if rv.room_id_from_create_event else keys | {CREATE}


@pytest.mark.parametrize("rv", versions())
def test_selection_for_a_message(rv: RoomVersion) -> None:
    room = AuthRoom(rv)
    event = room.event("m.room.message", BOB, {"body": "x"})
    assert auth_types_for_event(event) == _with_create(rv, {PL, _member(BOB)})


@pytest.mark.parametrize("rv", versions())
def test_selection_for_create_is_empty(rv: RoomVersion) -> None:
    assert auth_types_for_event(AuthRoom(rv).create) == set()


@pytest.mark.parametrize("rv", versions())
@pytest.mark.parametrize(
    ("membership", "content", "extra"),
    [
        ("join", {}, {JR}),
        ("invite", {}, {JR}),
        ("knock", {}, {JR}),
        ("leave", {}, set()),
        ("ban", {}, set()),
        ("invite", {"third_party_invite": {"signed": {"token": "tok"}}},
         {JR, ("m.room.third_party_invite", "tok")}),
        ("invite", {"third_party_invite": {"signed": {"token": 5}}}, {JR}),
        ("invite", {"third_party_invite": "junk"}, {JR}),
        # the authoriser's membership is only needed for joins, in v8+
        ("leave", {"join_authorised_via_users_server": CAROL}, set()),
    ],
)
def test_selection_for_membership(
    rv: RoomVersion, membership: str, content: dict[str, Any], extra: set[tuple[str, str]]
) -> None:
    room = AuthRoom(rv)
    event = room.event("m.room.member", ALICE, {"membership": membership, **content}, state_key=BOB)
    expected = _with_create(rv, {PL, _member(ALICE), _member(BOB)} | extra)
    assert auth_types_for_event(event) == expected


@pytest.mark.parametrize(("rv", "included"), [(V7, False), (V8, True), (V12, True)],
                         ids=["v7", "v8", "v12"])
def test_selection_for_restricted_join(rv: RoomVersion, included: bool) -> None:
    room = AuthRoom(rv)
    event = room.event("m.room.member", BOB, {"membership": "join",
                                              "join_authorised_via_users_server": CAROL}, state_key=BOB)
    assert (_member(CAROL) in auth_types_for_event(event)) is included


def test_selection_rejects_events_without_sender() -> None:
    room = AuthRoom(V11)
    event = Event({**room.event("m.room.message", ALICE, {}).pdu, "sender": None}, "$x", V11)
    with pytest.raises(AuthError):
        auth_types_for_event(event)


# --- check_auth_event_references ---------------------------------------------------------


def _by_id(room: AuthRoom, *extra: Event) -> dict[str, Event]:
    events = {e.event_id: e for e in room.state.values()}
    events.update({e.event_id: e for e in extra})
    return events


def _citing(room: AuthRoom, event: Event, ids: list[str]) -> Event:
    return Event({**event.pdu, "auth_events": refs(room.rv, ids)}, event.event_id, room.rv)


@pytest.mark.parametrize("rv", versions())
def test_references_as_selected_are_accepted(rv: RoomVersion) -> None:
    room = AuthRoom(rv)
    room.join(BOB)
    event = room.event("m.room.message", BOB, {"body": "x"})
    check_auth_event_references(event, _by_id(room))


@pytest.mark.parametrize("rv", versions())
def test_fewer_references_are_fine_but_create_is_required_until_v12(rv: RoomVersion) -> None:
    room = AuthRoom(rv)
    event = room.event("m.room.message", BOB, {"body": "x"})
    if rv.room_id_from_create_event:
        check_auth_event_references(_citing(room, event, []), _by_id(room))
    else:
        check_auth_event_references(_citing(room, event, [room.create.event_id]), _by_id(room))
        with pytest.raises(AuthError, match=r"no m.room.create"):
            check_auth_event_references(_citing(room, event, []), _by_id(room))


def test_v12_must_not_cite_the_create_event() -> None:
    room = AuthRoom(V12)
    event = room.event("m.room.message", ALICE, {"body": "x"})
    cited = [*(e.event_id for e in room.auth_events_for(event)), room.create.event_id]
    with pytest.raises(AuthError, match="create event must not be listed"):
        check_auth_event_references(_citing(room, event, cited), _by_id(room))


@pytest.mark.parametrize("rv", versions())
def test_missing_reference(rv: RoomVersion) -> None:
    room = AuthRoom(rv)
    event = room.event("m.room.message", ALICE, {"body": "x"})
    with pytest.raises(AuthError, match="missing"):
        check_auth_event_references(_citing(room, event, ["$nowhere"]), _by_id(room))


@pytest.mark.parametrize("rv", versions())
def test_unexpected_reference(rv: RoomVersion) -> None:
    room = AuthRoom(rv)
    event = room.event("m.room.message", ALICE, {"body": "x"})
    join_rules = room.state[JR]
    cited = [e.event_id for e in room.auth_events_for(event)] + [join_rules.event_id]
    with pytest.raises(AuthError, match="not needed"):
        check_auth_event_references(_citing(room, event, cited), _by_id(room))


@pytest.mark.parametrize("rv", versions())
def test_duplicate_reference(rv: RoomVersion) -> None:
    room = AuthRoom(rv)
    event = room.event("m.room.message", ALICE, {"body": "x"})
    old_pl = room.state[PL]
    room.set_power({"users": {} if rv.privileged_creators else {ALICE: 100}})
    cited = [e.event_id for e in room.auth_events_for(event)] + [old_pl.event_id]
    with pytest.raises(AuthError, match="duplicate"):
        check_auth_event_references(_citing(room, event, cited), _by_id(room, old_pl))
    # the same event twice is a duplicate too
    cited = [e.event_id for e in room.auth_events_for(event)] + [old_pl.event_id] * 2
    with pytest.raises(AuthError, match="duplicate"):
        check_auth_event_references(_citing(room, event, cited), _by_id(room, old_pl))


@pytest.mark.parametrize("rv", versions())
def test_reference_from_another_room(rv: RoomVersion) -> None:
    room = AuthRoom(rv)
    other = AuthRoom(rv)
    event = room.event("m.room.message", ALICE, {"body": "x"})
    cited = [e.event_id for e in room.auth_events_for(event) if e.type != "m.room.power_levels"]
    cited.append(other.state[PL].event_id)
    with pytest.raises(AuthError, match="another room"):
        check_auth_event_references(_citing(room, event, cited), _by_id(room, *other.state.values()))


@pytest.mark.parametrize("rv", versions())
def test_non_state_reference(rv: RoomVersion) -> None:
    room = AuthRoom(rv)
    message = room.event("m.room.message", ALICE, {"body": "x"})
    event = room.event("m.room.message", ALICE, {"body": "y"})
    cited = [e.event_id for e in room.auth_events_for(event)] + [message.event_id]
    with pytest.raises(AuthError, match="not a state event"):
        check_auth_event_references(_citing(room, event, cited), _by_id(room, message))


@pytest.mark.parametrize("rv", versions())
@pytest.mark.parametrize("auth_events", ["$x", 5, [5], [[]], [None]])
def test_malformed_auth_events_field(rv: RoomVersion, auth_events: Any) -> None:
    room = AuthRoom(rv)
    event = room.event("m.room.message", ALICE, {"body": "x"})
    bad = Event({**event.pdu, "auth_events": auth_events}, event.event_id, rv)
    with pytest.raises(AuthError, match="auth_events"):
        check_auth_event_references(bad, _by_id(room))


@pytest.mark.parametrize("rv", versions())
def test_create_event_is_not_checked(rv: RoomVersion) -> None:
    room = AuthRoom(rv)
    check_auth_event_references(room.create, {})


@pytest.mark.parametrize("rv", versions())
def test_membership_references(rv: RoomVersion) -> None:
    room = AuthRoom(rv, join_rule="public")
    room.member(BOB, "invite", sender=ALICE)
    event = room.event("m.room.member", BOB, {"membership": "join"}, state_key=BOB)
    check_auth_event_references(event, _by_id(room))
