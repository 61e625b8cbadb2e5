"""Auth rule 1 (m.room.create) for every room version."""

from __future__ import annotations

from typing import Any

import pytest

from hearth.core.auth import AuthError, check_auth_rules
from hearth.core.events import Event
from hearth.core.room_versions import V1, V10, V11, V12, RoomVersion
from tests.helpers.auth_rooms import ALICE, BOB, make_create, versions


def _create(rv: RoomVersion, **changes: Any) -> Event:
    event = make_create(rv)
    pdu = dict(event.pdu)
    content = dict(pdu["content"])
    for key, value in changes.pop("content", {}).items():
        if value is None:
            content.pop(key, None)
        else:
            content[key] = value
    pdu["content"] = content
    for key, value in changes.items():
        if value is None:
            pdu.pop(key, None)
        else:
            pdu[key] = value
    return Event(pdu, event.event_id, rv)


@pytest.mark.parametrize("rv", versions())
def test_plain_create_is_allowed(rv: RoomVersion) -> None:
    check_auth_rules(make_create(rv), [])


@pytest.mark.parametrize("rv", versions())
def test_create_with_prev_events_is_rejected(rv: RoomVersion) -> None:
    prev: Any = [["$x:a.example", {}]] if rv.identifier in ("1", "2") else ["$x"]
    with pytest.raises(AuthError, match=r"create: .*prev_events"):
        check_auth_rules(_create(rv, prev_events=prev), [])


@pytest.mark.parametrize("rv", versions())
def test_unknown_room_version_is_rejected(rv: RoomVersion) -> None:
    with pytest.raises(AuthError, match=r"create: unknown room_version"):
        check_auth_rules(_create(rv, content={"room_version": "99"}), [])
    with pytest.raises(AuthError, match=r"create: unknown room_version"):
        check_auth_rules(_create(rv, content={"room_version": 1}), [])


@pytest.mark.parametrize("rv", versions())
def test_room_version_may_be_absent(rv: RoomVersion) -> None:
    check_auth_rules(_create(rv, content={"room_version": None}), [])


@pytest.mark.parametrize("rv", versions(lambda rv: not rv.room_id_from_create_event))
def test_room_id_domain_must_match_sender(rv: RoomVersion) -> None:
    with pytest.raises(AuthError, match=r"create: the room ID's server"):
        check_auth_rules(_create(rv, room_id="!abc:elsewhere.example"), [])
    with pytest.raises(AuthError, match=r"create: the room ID's server"):
        check_auth_rules(_create(rv, room_id=None), [])


def test_v12_create_must_not_have_room_id() -> None:
    with pytest.raises(AuthError, match=r"create: .*must not have a room_id"):
        check_auth_rules(_create(V12, room_id="!abc:a.example"), [])


@pytest.mark.parametrize(
    ("rv", "allowed"),
    [(V1, False), (V10, False), (V11, True), (V12, True)],
    ids=["v1", "v10", "v11", "v12"],
)
def test_creator_property_required_until_v11(rv: RoomVersion, allowed: bool) -> None:
    event = _create(rv, content={"creator": None})
    if allowed:
        check_auth_rules(event, [])
    else:
        with pytest.raises(AuthError, match=r"create: content has no creator"):
            check_auth_rules(event, [])


@pytest.mark.parametrize(
    ("additional", "allowed"),
    [
        ([BOB], True),
        ([], True),
        ([BOB, "@weird localpart:b.example"], True),  # historical localparts are accepted
        ("@bob:b.example", False),
        ([BOB, 5], False),
        (["bob"], False),
        (["@bob"], False),
        (["@bob:bad_server!"], False),
        ([None], False),
    ],
)
def test_v12_additional_creators_must_be_user_ids(additional: Any, allowed: bool) -> None:
    event = _create(V12, content={"additional_creators": additional})
    if allowed:
        check_auth_rules(event, [])
    else:
        with pytest.raises(AuthError, match=r"additional_creators"):
            check_auth_rules(event, [])


@pytest.mark.parametrize("rv", versions(lambda rv: not rv.privileged_creators))
def test_additional_creators_is_ignored_before_v12(rv: RoomVersion) -> None:
    check_auth_rules(_create(rv, content={"additional_creators": "nonsense"}), [])


def test_create_sender_must_be_a_user_id() -> None:
    with pytest.raises(AuthError, match=r"sender"):
        check_auth_rules(_create(V11, sender="alice"), [])
    assert ALICE  # the default sender is fine
