"""A small in-memory room DAG builder for the state resolution tests.

Events are real `Event` objects with real ``prev_events``/``auth_events``
references (chosen by the spec's auth events selection from the state before
each event) but short readable IDs (``$pa``) and no signatures or hashes:
state resolution never looks at either. The state after each event is kept,
and an event with several ``prev_events`` gets the resolution of their states,
just as the room server would compute it.

A new room holds: create (alice), alice joins, power levels (alice 100),
join rules public, then bob, charlie and zara join. In room version 12 alice,
as creator, has infinite power and is left out of ``users`` automatically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hearth.core.events import Event, StateKey
from hearth.core.room_versions import EventFormat, RoomVersion
from hearth.core.state_res import resolve_state

ALICE = "@alice:a.test"
BOB = "@bob:b.test"
CHARLIE = "@charlie:c.test"
ZARA = "@zara:z.test"
EVELYN = "@evelyn:e.test"

CREATE = "m.room.create"
MEMBER = "m.room.member"
POWER_LEVELS = "m.room.power_levels"
JOIN_RULES = "m.room.join_rules"
TOPIC = "m.room.topic"
NAME = "m.room.name"

PL_KEY: StateKey = (POWER_LEVELS, "")
JR_KEY: StateKey = (JOIN_RULES, "")
TOPIC_KEY: StateKey = (TOPIC, "")


def member_key(user: str) -> StateKey:
    return (MEMBER, user)


class RoomBuilder:
    """Builds one room's event DAG, tracking the state after every event."""

    def __init__(self, room_version: RoomVersion, *, members: Sequence[str] = (BOB, CHARLIE, ZARA)) -> None:
        self.rv = room_version
        self.events: dict[str, Event] = {}
        self.state_after: dict[str, dict[StateKey, str]] = {}
        self.head = ""  # the last event added ("" before the create event)
        self._ts = 1_000
        self.room_id = "!room:a.test"
        create_content: dict[str, Any] = {"room_version": room_version.identifier}
        if not room_version.implicit_room_creator:
            create_content["creator"] = ALICE
        self.create = self.send("create", CREATE, ALICE, create_content, state_key="", prev=[])
        if room_version.room_id_from_create_event:
            self.room_id = "!" + self.create[1:]
        self.send("ima", MEMBER, ALICE, {"membership": "join"}, state_key=ALICE)
        self.power_levels("ipower", ALICE, {})
        self.join_rules("ijr", ALICE, "public")
        for user in members:
            self.member("im" + user[1], user, "join")
        self.base = self.head

    # -- raw events ----------------------------------------------------------

    def event_id(self, name: str) -> str:
        if self.rv.event_format is EventFormat.V1:
            return f"${name}:a.test"
        return f"${name}"

    def _ref(self, event_id: str) -> Any:
        if self.rv.event_format is EventFormat.V1:
            return [event_id, {"sha256": "aGFzaA"}]
        return event_id

    def state_before(self, prev: Sequence[str]) -> dict[StateKey, str]:
        if not prev:
            return {}
        if len(prev) == 1:
            return dict(self.state_after[prev[0]])
        return resolve_state(self.rv, [self.state_after[p] for p in prev], self.events)

    def _auth_keys(self, etype: str, sender: str, content: Mapping[str, Any],
                   state_key: str | None) -> list[StateKey]:
        """The auth events selection of the federation spec."""
        if etype == CREATE:
            return []
        keys: list[StateKey] = [PL_KEY, member_key(sender)]
        if not self.rv.room_id_from_create_event:
            keys.insert(0, (CREATE, ""))
        if etype == MEMBER and state_key is not None:
            keys.append(member_key(state_key))
            membership = content.get("membership")
            if membership in ("join", "invite", "knock"):
                keys.append(JR_KEY)
            tpi = content.get("third_party_invite")
            if membership == "invite" and isinstance(tpi, Mapping):
                keys.append(("m.room.third_party_invite", tpi["signed"]["token"]))
            via = content.get("join_authorised_via_users_server")
            if membership == "join" and isinstance(via, str):
                keys.append(member_key(via))
        return keys

    def send(
        self,
        name: str,
        etype: str,
        sender: str,
        content: Mapping[str, Any],
        *,
        state_key: str | None = None,
        prev: Sequence[str] | None = None,
        ts: int | None = None,
        auth: Sequence[str] | None = None,
    ) -> str:
        """Add an event after ``prev`` (default: the last event added); returns its ID."""
        if prev is None:
            prev = [self.head] if self.head else []
        before = self.state_before(prev)
        if auth is None:
            auth_ids: list[str] = []
            for key in self._auth_keys(etype, sender, content, state_key):
                eid = before.get(key)
                if eid is not None and eid not in auth_ids:
                    auth_ids.append(eid)
        else:
            auth_ids = list(auth)
        if ts is None:
            self._ts += 1
            ts = self._ts
        depth = max((self.events[p].depth for p in prev), default=0) + 1
        pdu: dict[str, Any] = {
            "type": etype,
            "sender": sender,
            "content": dict(content),
            "origin_server_ts": ts,
            "depth": depth,
            "prev_events": [self._ref(p) for p in prev],
            "auth_events": [self._ref(a) for a in auth_ids],
            "hashes": {"sha256": "aGFzaA"},
            "signatures": {},
        }
        if not (etype == CREATE and self.rv.room_id_from_create_event):
            pdu["room_id"] = self.room_id
        if self.rv.event_format is EventFormat.V1:
            pdu["event_id"] = self.event_id(name)
            pdu["origin"] = sender.split(":", 1)[1]
        if state_key is not None:
            pdu["state_key"] = state_key
        event_id = self.event_id(name)
        if event_id in self.events:
            raise ValueError(f"duplicate event name {name}")
        event = Event(pdu, event_id, self.rv)
        self.events[event_id] = event
        after = dict(before)
        if state_key is not None:
            after[(etype, state_key)] = event_id
        self.state_after[event_id] = after
        self.head = event_id
        return event_id

    # -- typed helpers -------------------------------------------------------

    def member(self, name: str, user: str, membership: str, *, sender: str | None = None,
               **kw: Any) -> str:
        content: dict[str, Any] = {"membership": membership}
        content.update(kw.pop("content", {}))
        return self.send(name, MEMBER, sender or user, content, state_key=user, **kw)

    def power_levels(self, name: str, sender: str, users: Mapping[str, int], **kw: Any) -> str:
        """Power levels with ``users`` (alice at 100 unless given; dropped in v12)."""
        all_users = {ALICE: 100, **users}
        if self.rv.privileged_creators:
            all_users.pop(ALICE, None)
        content: dict[str, Any] = {"users": all_users, "users_default": 0, "state_default": 50,
                                   "events_default": 0, "ban": 50, "kick": 50, "redact": 50,
                                   "invite": 0}
        content.update(kw.pop("content", {}))
        return self.send(name, POWER_LEVELS, sender, content, state_key="", **kw)

    def join_rules(self, name: str, sender: str, rule: str, **kw: Any) -> str:
        return self.send(name, JOIN_RULES, sender, {"join_rule": rule}, state_key="", **kw)

    def topic(self, name: str, sender: str, topic: str | None = None, **kw: Any) -> str:
        return self.send(name, TOPIC, sender, {"topic": topic or name}, state_key="", **kw)

    # -- resolution ----------------------------------------------------------

    def resolve(self, *heads: str) -> dict[StateKey, str]:
        """The state where the given branches meet (resolution of their states)."""
        return resolve_state(self.rv, [self.state_after[h] for h in heads], self.events)

    def resolve_sets(self, state_sets: Sequence[Mapping[StateKey, str]]) -> dict[StateKey, str]:
        return resolve_state(self.rv, state_sets, self.events)
