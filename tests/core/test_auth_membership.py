"""Auth rules for m.room.member: join, invite, leave/kick/unban, ban, knock and
restricted joins, table-driven across every room version."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from hearth.core.auth import AuthError, check_auth_rules_in_state
from hearth.core.events import Event
from hearth.core.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from tests.helpers.auth_rooms import ALICE, BOB, CAROL, DAVE, AuthRoom, domain, make_create

Allowed = bool | Callable[[RoomVersion], bool]


def knock(rv: RoomVersion) -> bool:
    return rv.knock_join_rule


def restricted(rv: RoomVersion) -> bool:
    return rv.restricted_join_rule


def knock_restricted(rv: RoomVersion) -> bool:
    return rv.knock_restricted_join_rule


def v12(rv: RoomVersion) -> bool:
    return rv.privileged_creators


@dataclass
class Case:
    id: str
    sender: str
    target: str
    membership: str
    allowed: Allowed
    before: Mapping[str, str] = field(default_factory=dict)  # user -> membership (joined: "join")
    join_rule: str | None = "invite"
    levels: Mapping[str, Any] = field(default_factory=dict)  # extra power levels content
    users: Mapping[str, int] = field(default_factory=dict)  # extra users entries
    content: Mapping[str, Any] = field(default_factory=dict)
    match: str | None = None

    def expected(self, rv: RoomVersion) -> bool:
        return self.allowed(rv) if callable(self.allowed) else self.allowed


CASES = [
    # --- join ------------------------------------------------------------------------
    Case("join public", BOB, BOB, "join", True, join_rule="public"),
    Case("join invite-only uninvited", BOB, BOB, "join", False, match="not invited"),
    Case("join invite-only invited", BOB, BOB, "join", True, before={BOB: "invite"}),
    Case("join when already joined", BOB, BOB, "join", True, before={BOB: "join"}),
    Case("join banned from public", BOB, BOB, "join", False, before={BOB: "ban"},
         join_rule="public", match="banned"),
    Case("join for someone else", ALICE, BOB, "join", False, join_rule="public",
         match="another user"),
    Case("join private rule", BOB, BOB, "join", False, join_rule="private", match="does not allow"),
    Case("join unknown rule", BOB, BOB, "join", False, join_rule="bogus", match="does not allow"),
    Case("join no join rules invited", BOB, BOB, "join", True, before={BOB: "invite"}, join_rule=None),
    Case("join no join rules uninvited", BOB, BOB, "join", False, join_rule=None),
    Case("join knock rule invited", BOB, BOB, "join", knock, before={BOB: "invite"}, join_rule="knock"),
    Case("join knock rule knocked", BOB, BOB, "join", False, before={BOB: "knock"}, join_rule="knock"),
    Case("join restricted invited", BOB, BOB, "join", restricted, before={BOB: "invite"},
         join_rule="restricted"),
    Case("join restricted authorised", BOB, BOB, "join", restricted, before={CAROL: "join"},
         join_rule="restricted", content={"join_authorised_via_users_server": CAROL}),
    Case("join restricted no authoriser", BOB, BOB, "join", False, join_rule="restricted"),
    Case("join restricted authoriser not joined", BOB, BOB, "join", False, before={CAROL: "invite"},
         join_rule="restricted", content={"join_authorised_via_users_server": CAROL}),
    Case("join restricted authoriser cannot invite", BOB, BOB, "join", False, before={CAROL: "join"},
         join_rule="restricted", levels={"invite": 10},
         content={"join_authorised_via_users_server": CAROL}),
    Case("join restricted authoriser with invite level", BOB, BOB, "join", restricted,
         before={CAROL: "join"}, join_rule="restricted", levels={"invite": 10}, users={CAROL: 10},
         content={"join_authorised_via_users_server": CAROL}),
    Case("join restricted banned", BOB, BOB, "join", False, before={CAROL: "join", BOB: "ban"},
         join_rule="restricted", content={"join_authorised_via_users_server": CAROL}, match="banned"),
    Case("join knock_restricted authorised", BOB, BOB, "join", knock_restricted, before={CAROL: "join"},
         join_rule="knock_restricted", content={"join_authorised_via_users_server": CAROL}),
    Case("join knock_restricted invited", BOB, BOB, "join", knock_restricted, before={BOB: "invite"},
         join_rule="knock_restricted"),
    # --- invite ----------------------------------------------------------------------
    Case("invite by member", ALICE, BOB, "invite", True),
    Case("invite by default-level member", CAROL, BOB, "invite", True, before={CAROL: "join"}),
    Case("invite by non-member", CAROL, BOB, "invite", False, match="not joined"),
    Case("invite by invited user", CAROL, BOB, "invite", False, before={CAROL: "invite"},
         match="not joined"),
    Case("invite of joined user", ALICE, BOB, "invite", False, before={BOB: "join"},
         match="already join"),
    Case("invite of banned user", ALICE, BOB, "invite", False, before={BOB: "ban"},
         match="already ban"),
    Case("re-invite of invited user", ALICE, BOB, "invite", True, before={BOB: "invite"}),
    Case("invite of user who left", ALICE, BOB, "invite", True, before={BOB: "leave"}),
    Case("invite of knocking user", ALICE, BOB, "invite", True, before={BOB: "knock"}),
    Case("invite below invite level", CAROL, BOB, "invite", False, before={CAROL: "join"},
         levels={"invite": 50}, match="invite level"),
    # --- leave -----------------------------------------------------------------------
    Case("leave when joined", BOB, BOB, "leave", True, before={BOB: "join"}),
    Case("leave (reject) invite", BOB, BOB, "leave", True, before={BOB: "invite"}),
    Case("leave (rescind) knock", BOB, BOB, "leave", knock, before={BOB: "knock"}),
    Case("leave when not in room", BOB, BOB, "leave", False, match="cannot leave"),
    Case("leave when banned", BOB, BOB, "leave", False, before={BOB: "ban"}, match="cannot leave"),
    Case("leave when already left", BOB, BOB, "leave", False, before={BOB: "leave"}),
    # --- kick ------------------------------------------------------------------------
    Case("kick by admin", ALICE, BOB, "leave", True, before={BOB: "join"}),
    Case("kick by default user", CAROL, BOB, "leave", False, before={BOB: "join", CAROL: "join"},
         match="may not kick"),
    Case("kick by non-member", CAROL, BOB, "leave", False, before={BOB: "join"}, users={CAROL: 100},
         match="not joined"),
    Case("kick of equal level", CAROL, BOB, "leave", False, before={BOB: "join", CAROL: "join"},
         users={CAROL: 50, BOB: 50}, match="may not kick"),
    Case("kick of lower level", CAROL, BOB, "leave", True, before={BOB: "join", CAROL: "join"},
         users={CAROL: 51, BOB: 50}),
    Case("kick level raised", CAROL, BOB, "leave", False, before={BOB: "join", CAROL: "join"},
         users={CAROL: 60}, levels={"kick": 70}),
    Case("kick invitee (revoke invite)", ALICE, BOB, "leave", True, before={BOB: "invite"}),
    Case("kick of user not in room", ALICE, BOB, "leave", True),
    # a user above the creator's old 100 can kick them, except in v12 (creators are infinite)
    Case("kick creator", CAROL, ALICE, "leave", lambda rv: not v12(rv), before={CAROL: "join"},
         users={CAROL: 101}),
    # --- unban -----------------------------------------------------------------------
    Case("unban by admin", ALICE, BOB, "leave", True, before={BOB: "ban"}),
    Case("unban needs ban level", CAROL, BOB, "leave", False, before={BOB: "ban", CAROL: "join"},
         users={CAROL: 60}, levels={"ban": 70, "kick": 50}, match="ban level"),
    Case("unban needs kick level too", CAROL, BOB, "leave", False, before={BOB: "ban", CAROL: "join"},
         users={CAROL: 60}, levels={"ban": 50, "kick": 70}, match="may not kick"),
    Case("unban with both levels", CAROL, BOB, "leave", True, before={BOB: "ban", CAROL: "join"},
         users={CAROL: 60}, levels={"ban": 50, "kick": 50}),
    # --- ban -------------------------------------------------------------------------
    Case("ban by admin", ALICE, BOB, "ban", True, before={BOB: "join"}),
    Case("ban of absent user", ALICE, BOB, "ban", True),
    Case("ban by default user", CAROL, BOB, "ban", False, before={CAROL: "join"}, match="may not ban"),
    Case("ban by non-member", CAROL, BOB, "ban", False, users={CAROL: 100}, match="not joined"),
    Case("ban of equal level", CAROL, BOB, "ban", False, before={CAROL: "join"},
         users={CAROL: 50, BOB: 50}, match="may not ban"),
    Case("ban of lower level", CAROL, BOB, "ban", True, before={CAROL: "join"},
         users={CAROL: 50, BOB: 49}),
    Case("ban self", ALICE, ALICE, "ban", False, match="may not ban"),
    Case("ban creator", CAROL, ALICE, "ban", lambda rv: not v12(rv), before={CAROL: "join"},
         users={CAROL: 101}),
    # --- knock -----------------------------------------------------------------------
    Case("knock", BOB, BOB, "knock", knock, join_rule="knock"),
    Case("knock on invite-only", BOB, BOB, "knock", False, match="knock"),
    Case("knock on public", BOB, BOB, "knock", False, join_rule="public", match="knock"),
    Case("knock on knock_restricted", BOB, BOB, "knock", knock_restricted, join_rule="knock_restricted"),
    Case("knock on restricted", BOB, BOB, "knock", False, join_rule="restricted"),
    Case("knock for someone else", ALICE, BOB, "knock", False, join_rule="knock"),
    Case("knock when joined", BOB, BOB, "knock", False, before={BOB: "join"}, join_rule="knock"),
    Case("knock when invited", BOB, BOB, "knock", False, before={BOB: "invite"}, join_rule="knock"),
    Case("knock when banned", BOB, BOB, "knock", False, before={BOB: "ban"}, join_rule="knock"),
    Case("knock again", BOB, BOB, "knock", knock, before={BOB: "knock"}, join_rule="knock"),
    Case("knock after leaving", BOB, BOB, "knock", knock, before={BOB: "leave"}, join_rule="knock"),
    # --- malformed -------------------------------------------------------------------
    Case("unknown membership", ALICE, BOB, "nonsense", False, match="unknown membership"),
]


def _room(rv: RoomVersion, case: Case) -> AuthRoom:
    users: dict[str, int] = {} if rv.privileged_creators else {ALICE: 100}
    users.update(case.users)
    room = AuthRoom(rv, power_levels={"users": users, **case.levels}, join_rule=case.join_rule)
    for user, membership in case.before.items():
        room.member(user, membership, sender=user if membership in ("join", "leave", "knock") else ALICE)
    return room


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@pytest.mark.parametrize("rv", list(KNOWN_ROOM_VERSIONS.values()),
                         ids=[f"v{v}" for v in KNOWN_ROOM_VERSIONS])
def test_membership(rv: RoomVersion, case: Case) -> None:
    room = _room(rv, case)
    signed_by = [domain(case.sender)]
    authoriser = case.content.get("join_authorised_via_users_server")
    if isinstance(authoriser, str):
        signed_by.append(domain(authoriser))
    event = room.event("m.room.member", case.sender, {"membership": case.membership, **case.content},
                       state_key=case.target, signed_by=signed_by)
    if case.expected(rv):
        room.check(event)
    else:
        with pytest.raises(AuthError, match=case.match):
            room.check(event)


# --- the creator's first join ------------------------------------------------------------


def _bare_room(rv: RoomVersion, creator_in_content: str = ALICE) -> tuple[Event, dict[Any, Event]]:
    create = make_create(rv, ALICE)
    if not rv.implicit_room_creator:
        pdu = {**create.pdu, "content": {**create.content, "creator": creator_in_content}}
        create = Event(pdu, create.event_id, rv)
    return create, {("m.room.create", ""): create}


def _join(rv: RoomVersion, create: Event, user: str, prev: list[str]) -> Event:
    from tests.helpers.auth_rooms import refs

    pdu = {"type": "m.room.member", "sender": user, "state_key": user, "room_id": create.room_id,
           "content": {"membership": "join"}, "prev_events": refs(rv, prev), "auth_events": []}
    return Event(pdu, "$join", rv)


@pytest.mark.parametrize("rv", list(KNOWN_ROOM_VERSIONS.values()),
                         ids=[f"v{v}" for v in KNOWN_ROOM_VERSIONS])
def test_creator_join_right_after_create(rv: RoomVersion) -> None:
    create, state = _bare_room(rv)
    check_auth_rules_in_state(_join(rv, create, ALICE, [create.event_id]), state)
    # anyone else, or the creator later on, needs a join rule
    with pytest.raises(AuthError):
        check_auth_rules_in_state(_join(rv, create, BOB, [create.event_id]), state)
    with pytest.raises(AuthError):
        check_auth_rules_in_state(_join(rv, create, ALICE, [create.event_id, "$other"]), state)
    with pytest.raises(AuthError):
        check_auth_rules_in_state(_join(rv, create, ALICE, ["$other"]), state)


@pytest.mark.parametrize("rv", list(KNOWN_ROOM_VERSIONS.values()),
                         ids=[f"v{v}" for v in KNOWN_ROOM_VERSIONS])
def test_creator_is_content_creator_until_v11(rv: RoomVersion) -> None:
    """v1-10 use content.creator; v11+ use the create event's sender."""
    create, state = _bare_room(rv, creator_in_content=DAVE)
    join_dave = _join(rv, create, DAVE, [create.event_id])
    join_alice = _join(rv, create, ALICE, [create.event_id])
    if rv.implicit_room_creator:
        check_auth_rules_in_state(join_alice, state)
        with pytest.raises(AuthError):
            check_auth_rules_in_state(join_dave, state)
    else:
        check_auth_rules_in_state(join_dave, state)
        with pytest.raises(AuthError):
            check_auth_rules_in_state(join_alice, state)


def test_v12_additional_creator_is_not_the_first_joiner() -> None:
    rv = KNOWN_ROOM_VERSIONS["12"]
    create = make_create(rv, ALICE, content={"additional_creators": [BOB]})
    state = {("m.room.create", ""): create}
    with pytest.raises(AuthError):
        check_auth_rules_in_state(_join(rv, create, BOB, [create.event_id]), state)


# --- join_authorised_via_users_server signatures (v8+) -----------------------------------


RESTRICTED = [v for v in KNOWN_ROOM_VERSIONS.values() if v.restricted_join_rule]


@pytest.mark.parametrize("rv", RESTRICTED, ids=[f"v{v.identifier}" for v in RESTRICTED])
def test_authorised_join_must_carry_authorising_server_signature(rv: RoomVersion) -> None:
    room = AuthRoom(rv, join_rule="restricted")
    room.join(CAROL)
    content = {"membership": "join", "join_authorised_via_users_server": CAROL}
    unsigned = room.event("m.room.member", BOB, content, state_key=BOB, signed_by=[domain(BOB)])
    with pytest.raises(AuthError, match="not signed"):
        room.check(unsigned)
    # a make_join template is checked before the authorising server signs it
    room.check(unsigned, require_authoriser_signature=False)
    signed = room.event("m.room.member", BOB, content, state_key=BOB,
                        signed_by=[domain(BOB), domain(CAROL)])
    room.check(signed)


@pytest.mark.parametrize("rv", RESTRICTED, ids=[f"v{v.identifier}" for v in RESTRICTED])
@pytest.mark.parametrize("value", [5, None, "carol", "@carol"])
def test_malformed_authoriser_is_rejected(rv: RoomVersion, value: object) -> None:
    room = AuthRoom(rv, join_rule="restricted")
    event = room.event("m.room.member", BOB, {"membership": "join",
                                              "join_authorised_via_users_server": value}, state_key=BOB)
    with pytest.raises(AuthError, match="join_authorised_via_users_server"):
        room.check(event)


@pytest.mark.parametrize("rv", RESTRICTED, ids=[f"v{v.identifier}" for v in RESTRICTED])
def test_authoriser_signature_required_on_any_membership(rv: RoomVersion) -> None:
    """The v8+ rule is written for every membership, not just joins."""
    room = AuthRoom(rv, join_rule="public")
    room.join(BOB)
    content = {"membership": "leave", "join_authorised_via_users_server": CAROL}
    with pytest.raises(AuthError, match="not signed"):
        room.check(room.event("m.room.member", BOB, content, state_key=BOB))
    room.check(room.event("m.room.member", BOB, content, state_key=BOB,
                          signed_by=[domain(BOB), domain(CAROL)]))


def test_authoriser_key_is_ignored_before_v8() -> None:
    rv = KNOWN_ROOM_VERSIONS["7"]
    room = AuthRoom(rv, join_rule="public")
    room.check(room.event("m.room.member", BOB, {"membership": "join",
                                                 "join_authorised_via_users_server": 5}, state_key=BOB))


# --- malformed member events ---------------------------------------------------------------


@pytest.mark.parametrize("rv", list(KNOWN_ROOM_VERSIONS.values()),
                         ids=[f"v{v}" for v in KNOWN_ROOM_VERSIONS])
def test_member_event_needs_state_key_and_membership(rv: RoomVersion) -> None:
    room = AuthRoom(rv, join_rule="public")
    with pytest.raises(AuthError, match="state_key"):
        room.check(room.event("m.room.member", BOB, {"membership": "join"}))
    with pytest.raises(AuthError, match="no membership"):
        room.check(room.event("m.room.member", BOB, {}, state_key=BOB))
    with pytest.raises(AuthError, match="no membership"):
        room.check(room.event("m.room.member", BOB, {"membership": ["join"]}, state_key=BOB))


def test_v12_creators_keep_power_without_power_levels_entry() -> None:
    """v12: an additional creator can kick and ban with an empty users map."""
    rv = KNOWN_ROOM_VERSIONS["12"]
    room = AuthRoom(rv, create_content={"additional_creators": [BOB]},
                    power_levels={"users": {}, "kick": 1000, "ban": 1000})
    room.join(BOB)
    room.join(CAROL)
    room.send("m.room.member", BOB, {"membership": "leave"}, state_key=CAROL)
    room.send("m.room.member", BOB, {"membership": "ban"}, state_key=CAROL)
    # but one creator cannot kick another (both infinite)
    with pytest.raises(AuthError, match="may not kick"):
        room.send("m.room.member", BOB, {"membership": "leave"}, state_key=ALICE)
