"""Building new local events: prev_events, auth_events, depth, hashes, signature.

The caller holds the room's persist lock, so the forward extremities and the
current state read here are still current when the event is persisted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from signedjson.types import SigningKey

from hearth.clock import Clock
from hearth.core.auth import auth_types_for_event
from hearth.core.events import Event
from hearth.core.pdu import build_event
from hearth.core.room_versions import EventFormat, RoomVersion
from hearth.rooms.persist import EventPersister
from hearth.storage.db import Database
from hearth.storage.events import EventsStore
from hearth.storage.rooms import RoomInfo

MAX_PREV_EVENTS = 10
MAX_DEPTH = 2**63 - 1


class EventBuilder:
    def __init__(
        self,
        *,
        db: Database,
        events: EventsStore,
        persister: EventPersister,
        server_name: str,
        signing_key: SigningKey,
        clock: Clock,
    ) -> None:
        self._db = db
        self._events = events
        self._persister = persister
        self._server_name = server_name
        self._signing_key = signing_key
        self._clock = clock

    def build_create_event(
        self, room_version: RoomVersion, room_id: str | None, sender: str, content: Mapping[str, Any],
        *, origin_server_ts: int | None = None,
    ) -> Event:
        """The m.room.create event; v12 rooms take their ID from it (room_id None).

        `origin_server_ts` lets room creation move a v12 create event off a
        room ID that is already taken (its hash covers the timestamp).
        """
        fields: dict[str, Any] = {
            "type": "m.room.create",
            "state_key": "",
            "sender": sender,
            "content": dict(content),
            "origin_server_ts": self._clock.time_ms() if origin_server_ts is None else origin_server_ts,
            "depth": 1,
            "prev_events": [],
            "auth_events": [],
        }
        if room_id is not None:
            fields["room_id"] = room_id
        if room_version.event_format is EventFormat.V1:
            fields["origin"] = self._server_name
        return build_event(fields, room_version, self._server_name, self._signing_key)

    async def build(
        self,
        room: RoomInfo,
        *,
        sender: str,
        event_type: str,
        content: Mapping[str, Any],
        state_key: str | None = None,
        extra: Mapping[str, Any] | None = None,
        on: Event | None = None,
    ) -> Event:
        """A signed event on top of the room's forward extremities (or on `on`, not yet stored).

        `on` chains events the persister stores together (`persist_chain`): the
        room's state must be the same for it as for the room's head.
        """
        rv = room.room_version
        fields: dict[str, Any] = {
            "room_id": room.room_id,
            "sender": sender,
            "type": event_type,
            "content": dict(content),
            "origin_server_ts": self._clock.time_ms(),
        }
        if state_key is not None:
            fields["state_key"] = state_key
        if extra:
            fields.update(extra)
        if rv.event_format is EventFormat.V1:
            fields["origin"] = self._server_name
        # auth_types_for_event only reads type, sender, state_key and content.
        wanted = auth_types_for_event(Event({**fields, "prev_events": [], "auth_events": []}, "$", rv))
        async with self._db.read() as conn:
            head = await self._persister.head(conn, room)
            extremities = head.extremities[:MAX_PREV_EVENTS]
            auth = await self._persister.current_state_events(conn, room, wanted)
        auth_events = sorted(auth, key=lambda e: e.state_tuple)
        if on is not None:
            assert rv.event_format is not EventFormat.V1, "v1 references need the stored event"
            prev_events = [on.event_id]
            fields["depth"] = min(MAX_DEPTH, on.depth + 1)
        else:
            prev_events = [x.event_id for x in extremities]
            fields["depth"] = min(MAX_DEPTH, max((x.depth for x in extremities), default=0) + 1)
        if rv.event_format is EventFormat.V1:
            refs = await self._v1_refs(prev_events + [e.event_id for e in auth_events])
            fields["prev_events"] = [[p, refs[p]] for p in prev_events]
            fields["auth_events"] = [[e.event_id, refs[e.event_id]] for e in auth_events]
        else:
            fields["prev_events"] = prev_events
            fields["auth_events"] = [e.event_id for e in auth_events]
        return build_event(fields, rv, self._server_name, self._signing_key)

    async def _v1_refs(self, event_ids: list[str]) -> dict[str, dict[str, str]]:
        """Room versions 1-2 reference events as [event_id, {"sha256": hash}]."""
        async with self._db.read() as conn:
            found = await self._events.by_ids(conn, event_ids)
        return {eid: {"sha256": s.event.pdu["hashes"]["sha256"]} for eid, s in found.items()}
