"""Hypothesis: on malformed events and malformed room state the auth functions
raise AuthError and nothing else (no KeyError, TypeError, ValueError...)."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hearth.core.auth import (
    AuthError,
    auth_types_for_event,
    check_auth_event_references,
    check_auth_rules,
)
from hearth.core.events import Event
from hearth.core.room_versions import KNOWN_ROOM_VERSIONS
from tests.helpers.auth_rooms import ALICE, BOB, CAROL, AuthRoom

USERS = [ALICE, BOB, CAROL, "@", "@x", "bob", "", "@\ud800:a.example", "@a:b:c"]
KEYS = [
    "membership", "third_party_invite", "signed", "mxid", "token", "signatures",
    "join_authorised_via_users_server", "users", "users_default", "events", "events_default",
    "state_default", "ban", "kick", "redact", "invite", "notifications", "room", "join_rule",
    "creator", "room_version", "additional_creators", "m.federate", "public_key", "public_keys",
    "redacts", "ed25519:0", "id.example", ALICE, BOB, "m.room.name", "m.room.power_levels",
]
WORDS = [
    "join", "invite", "leave", "ban", "knock", "public", "restricted", "knock_restricted", "private",
    "50", " 50 ", "-1", "1e3", "tok", "AAAA", "a.example", "b.example", "12", "1",
    *USERS,
]
TYPES = [
    "m.room.create", "m.room.member", "m.room.power_levels", "m.room.join_rules",
    "m.room.third_party_invite", "m.room.aliases", "m.room.redaction", "m.room.message", "m.room.name",
]

leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(WORDS)
    | st.text(max_size=6)
)
# Bounded nesting without st.recursive, which is several times slower to draw.
key = st.sampled_from(KEYS) | st.text(max_size=4)
nested = st.lists(leaf, max_size=3) | st.dictionaries(key, leaf, max_size=3)
json_value = (
    leaf
    | nested
    | st.lists(nested, max_size=2)
    | st.dictionaries(key, nested | leaf, max_size=3)
)
content = st.dictionaries(st.sampled_from(KEYS), json_value, max_size=4) | json_value
anything = st.sampled_from(WORDS) | json_value


def _pick(draw: st.DrawFn, specific: list[Any]) -> Any:
    """A well-formed choice for this room, or anything at all (strategies built
    once at module level: building them per draw dominates the run time)."""
    if draw(st.booleans()):
        return draw(st.sampled_from(specific))
    return draw(anything)


@st.composite
def pdus(draw: st.DrawFn, room: AuthRoom) -> dict[str, Any]:
    create_id = room.create.event_id
    choices: dict[str, list[Any]] = {
        "type": TYPES,
        "sender": USERS,
        "state_key": ["", *USERS, "tok", "a.example"],
        "room_id": [room.room_id, "!other:a.example"],
        "prev_events": [[], [create_id], [[create_id, {}]]],
        "auth_events": [[], [e.event_id for e in room.state.values()]],
        "redacts": [create_id, "$x:a.example"],
    }
    pdu: dict[str, Any] = {}
    for key, specific in choices.items():
        if draw(st.integers(0, 9)) < 8:  # mostly present
            pdu[key] = _pick(draw, specific)
    if draw(st.integers(0, 9)) < 8:
        pdu["content"] = draw(content)
    if draw(st.booleans()):
        pdu["signatures"] = draw(json_value)
    return pdu


@st.composite
def cases(draw: st.DrawFn) -> tuple[AuthRoom, Event]:
    rv = draw(st.sampled_from(list(KNOWN_ROOM_VERSIONS.values())))
    room = AuthRoom(rv, join_rule=draw(st.sampled_from(["invite", "public", "knock", "restricted"])))
    room.join(BOB)
    # corrupt some of the room state too
    for key in draw(st.lists(st.sampled_from(sorted(room.state)), max_size=3, unique=True)):
        old = room.state[key]
        room.state[key] = Event({**old.pdu, "content": draw(content)}, old.event_id, rv)
    if draw(st.booleans()):
        pdu = {"type": "m.room.third_party_invite", "sender": ALICE, "state_key": "tok",
               "room_id": room.room_id, "content": draw(content)}
        room.put(Event(pdu, "$tpi", rv))
    if draw(st.booleans()):
        pdu = {"type": "m.room.member", "sender": CAROL, "state_key": CAROL,
               "room_id": room.room_id, "content": draw(content)}
        room.put(Event(pdu, "$carol", rv))
    return room, Event(draw(pdus(room)), "$fuzz", rv)


def _only_auth_errors(room: AuthRoom, event: Event) -> None:
    state = list(room.state.values())
    for call in (
        lambda: check_auth_rules(event, state),
        lambda: auth_types_for_event(event),
        lambda: check_auth_event_references(event, {e.event_id: e for e in state}),
        lambda: check_auth_rules(event, state, require_authoriser_signature=False),
    ):
        try:
            call()
        except AuthError as e:
            assert isinstance(e.reason, str) and e.reason


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_malformed_events_only_raise_auth_error(case: tuple[AuthRoom, Event]) -> None:
    _only_auth_errors(*case)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=10), json_value, max_size=8),
       st.sampled_from(list(KNOWN_ROOM_VERSIONS.values())))
def test_arbitrary_pdus_only_raise_auth_error(pdu: dict[str, Any], rv: Any) -> None:
    room = AuthRoom(rv)
    _only_auth_errors(room, Event(pdu, "$any", rv))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["type", "state_key", "room_id", "content", "sender"]),
                                anything, max_size=5), max_size=4),
       st.sampled_from(list(KNOWN_ROOM_VERSIONS.values())))
def test_malformed_auth_events_only_raise_auth_error(pdus_: list[dict[str, Any]], rv: Any) -> None:
    room = AuthRoom(rv)
    room.join(BOB)
    event = room.event("m.room.message", BOB, {"body": "x"})
    junk = [Event(p, f"$junk{i}", rv) for i, p in enumerate(pdus_)]
    with contextlib.suppress(AuthError):
        check_auth_rules(event, [*room.state.values(), *junk])
    cited = Event({**event.pdu, "auth_events": [e.event_id for e in junk]}, event.event_id, rv)
    with contextlib.suppress(AuthError):
        check_auth_event_references(cited, {e.event_id: e for e in junk})
