"""Build rooms out of plain `Event`s for auth-rule and power-level tests.

No hashing or signing: an event is its PDU dict plus a made-up event ID, which
is all the auth rules look at. `AuthRoom` keeps a (type, state_key) -> Event map
and checks new events against it through the same path a server uses (select
the auth events, then `check_auth_rules`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import pytest

from hearth.core.auth import auth_types_for_event, check_auth_rules
from hearth.core.events import Event, StateKey
from hearth.core.room_versions import KNOWN_ROOM_VERSIONS, EventFormat, RoomVersion

ALICE = "@alice:a.example"  # the creator
BOB = "@bob:b.example"
CAROL = "@carol:c.example"
DAVE = "@dave:a.example"

ALL_VERSIONS = list(KNOWN_ROOM_VERSIONS.values())

_ids = itertools.count(1)

_DEFAULT = object()


def domain(user_id: str) -> str:
    return user_id.split(":", 1)[1]


def versions(predicate: Any = None) -> list[Any]:
    """Room versions as pytest params (id "v7"), optionally filtered."""
    return [
        pytest.param(rv, id=f"v{rv.identifier}")
        for rv in ALL_VERSIONS
        if predicate is None or predicate(rv)
    ]


def new_event_id(rv: RoomVersion, sender: str) -> str:
    n = next(_ids)
    if rv.event_format is EventFormat.V1:
        return f"${n}:{domain(sender)}"
    return f"$ev{n}x" + "A" * 8


def refs(rv: RoomVersion, ids: list[str]) -> list[Any]:
    """prev_events/auth_events in the room version's format."""
    if rv.event_format is EventFormat.V1:
        return [[i, {"sha256": "abc"}] for i in ids]
    return list(ids)


def make_create(
    rv: RoomVersion, creator: str = ALICE, *, content: Mapping[str, Any] | None = None
) -> Event:
    """A create event as /createRoom would send it for this room version."""
    body: dict[str, Any] = {"room_version": rv.identifier}
    if not rv.implicit_room_creator:
        body["creator"] = creator
    if content is not None:
        body.update(content)
    pdu: dict[str, Any] = {
        "type": "m.room.create",
        "sender": creator,
        "state_key": "",
        "content": body,
        "prev_events": [],
        "auth_events": [],
        "depth": 1,
        "origin_server_ts": 0,
    }
    if rv.room_id_from_create_event:
        event_id = f"$create{next(_ids)}" + "B" * 20
    else:
        event_id = new_event_id(rv, creator)
        pdu["room_id"] = f"!room{next(_ids)}:{domain(creator)}"
    return Event(pdu, event_id, rv)


class AuthRoom:
    """A room's state as a plain map, plus builders for events in it."""

    def __init__(
        self,
        rv: RoomVersion,
        *,
        creator: str = ALICE,
        create_content: Mapping[str, Any] | None = None,
        power_levels: Any = _DEFAULT,
        join_rule: str | None = "invite",
    ) -> None:
        self.rv = rv
        self.creator = creator
        self.state: dict[StateKey, Event] = {}
        self.create = make_create(rv, creator, content=create_content)
        self.room_id = self.create.room_id
        self.last_id = self.create.event_id
        self.put(self.create)
        self.put(self.event("m.room.member", creator, {"membership": "join"}, state_key=creator))
        if power_levels is _DEFAULT:
            power_levels = {"users": {} if rv.privileged_creators else {creator: 100}}
        if power_levels is not None:
            self.put(self.event("m.room.power_levels", creator, power_levels, state_key=""))
        if join_rule is not None:
            self.put(self.event("m.room.join_rules", creator, {"join_rule": join_rule}, state_key=""))

    def event(
        self,
        etype: str,
        sender: str,
        content: Mapping[str, Any],
        *,
        state_key: str | None = None,
        prev: list[str] | None = None,
        signed_by: list[str] | None = None,
        **extra: Any,
    ) -> Event:
        """A new event in this room (not added to the state)."""
        pdu: dict[str, Any] = {
            "type": etype,
            "sender": sender,
            "room_id": self.room_id,
            "content": dict(content),
            "prev_events": refs(self.rv, prev if prev is not None else [self.last_id]),
            "auth_events": [],
            "depth": 2,
            "origin_server_ts": 0,
            "signatures": {s: {"ed25519:1": "sig"} for s in (signed_by or [domain(sender)])},
        }
        if state_key is not None:
            pdu["state_key"] = state_key
        pdu.update(extra)
        event = Event(pdu, new_event_id(self.rv, sender), self.rv)
        pdu["auth_events"] = refs(self.rv, [e.event_id for e in self.auth_events_for(event)])
        return event

    def put(self, event: Event) -> Event:
        """Make ``event`` current state without checking it."""
        self.state[event.state_tuple] = event
        self.last_id = event.event_id
        return event

    def member(self, user: str, membership: str, sender: str | None = None, **content: Any) -> Event:
        """Put a membership event straight into the state."""
        return self.put(
            self.event("m.room.member", sender or user, {"membership": membership, **content},
                       state_key=user)
        )

    def auth_events_for(self, event: Event) -> list[Event]:
        """The current state the event's auth event selection picks."""
        keys = auth_types_for_event(event)
        return [self.state[k] for k in keys if k in self.state]

    def check(self, event: Event, **kwargs: Any) -> None:
        """Auth ``event`` against the current state, as a server would.

        In v12 the create event is not an auth event, so it is passed alongside.
        """
        auth = self.auth_events_for(event)
        if self.rv.room_id_from_create_event:
            auth.append(self.create)
        check_auth_rules(event, auth, **kwargs)

    def send(self, etype: str, sender: str, content: Mapping[str, Any], **kwargs: Any) -> Event:
        """Build, check and (for state) apply an event; AuthError propagates."""
        event = self.event(etype, sender, content, **kwargs)
        self.check(event)
        if event.is_state():
            self.put(event)
        return event

    def join(self, user: str) -> Event:
        """Force ``user`` to be joined (no auth check)."""
        return self.member(user, "join")

    def set_power(self, content: Mapping[str, Any]) -> Event:
        """Replace the power levels without checking."""
        return self.put(self.event("m.room.power_levels", self.creator, content, state_key=""))

    def set_join_rule(self, rule: str, **content: Any) -> Event:
        return self.put(
            self.event("m.room.join_rules", self.creator, {"join_rule": rule, **content}, state_key="")
        )
