"""Stored events as one client sees them: the one way every endpoint serves events.

`EventSerializer.serialize` turns a batch of `StoredEvent`s into ClientEvent
JSON for one requester, with a fixed number of queries per batch (never one
per event):

- redacted events get their redacted content and `unsigned.redacted_because`
  (the redaction events are loaded in one query);
- `unsigned.transaction_id` only for the device that sent the event (one
  query on `event_txn_ids`, and only for the requester's own events);
- `unsigned.age` from the injected clock;
- with a `Viewer`: `unsigned.membership`, the requester's membership at the
  event, which the visibility check has already worked out;
- with `prev_content=True` (timelines): `unsigned.replaces_state` and, when
  the requester may see the replaced event, `unsigned.prev_content`;
- anything the registered unsigned hooks add (e.g. `m.relations`
  aggregations): each hook gets the whole batch and returns
  {event_id: {unsigned key: value}}.

Transaction ids are scoped per endpoint (the spec's "same path" rule). A
/send transaction id is stored as given; other endpoints that create events
store a scoped id made by `scoped_txn_id`, which this module turns back into
the client's own id when serving the event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from hearth.clock import Clock
from hearth.core.events import Event, StateKey
from hearth.core.redaction import redact
from hearth.rooms.formatting import client_event
from hearth.rooms.visibility import Viewer
from hearth.storage.db import DbConnection
from hearth.storage.events import EventsStore, StoredEvent
from hearth.storage.state import StateStore
from hearth.storage.timeline import TimelineStore

UnsignedHook = Callable[
    [DbConnection, Sequence[StoredEvent], str | None], Awaitable[Mapping[str, Mapping[str, Any]]]
]

_SCOPE_MARK = "\x1e"


def scoped_txn_id(scope: str, txn_id: str) -> str:
    """A transaction id for an endpoint other than /send (e.g. "redact/<room>/<event>")."""
    return f"{_SCOPE_MARK}{scope}{_SCOPE_MARK}{txn_id}"


def client_txn_id(stored: str) -> str:
    """The id the client chose, from a stored (possibly scoped) transaction id."""
    if stored.startswith(_SCOPE_MARK):
        return stored[1:].split(_SCOPE_MARK, 1)[-1]
    return stored


class EventSerializer:
    def __init__(
        self, *, events: EventsStore, state: StateStore, timeline: TimelineStore, clock: Clock
    ) -> None:
        self._events = events
        self._state = state
        self._timeline = timeline
        self._clock = clock
        self._hooks: list[UnsignedHook] = []

    def add_unsigned_hook(self, hook: UnsignedHook) -> None:
        """Add fields to `unsigned` for every event served (called once per batch)."""
        self._hooks.append(hook)

    async def serialize(
        self,
        conn: DbConnection,
        events: Sequence[StoredEvent],
        *,
        user_id: str | None = None,
        device_id: str | None = None,
        viewer: Viewer | None = None,
        prev_content: bool = False,
        include_room_id: bool = True,
    ) -> list[dict[str, Any]]:
        """ClientEvent JSON for `events`, in order, as `user_id` on `device_id` sees them."""
        if not events:
            return []
        now = self._clock.time_ms()
        redactions = await self._redactions(conn, events)
        txns: dict[str, str] = {}
        if user_id is not None and device_id is not None:
            own = [s.event_id for s in events if s.event.sender == user_id]
            if own:
                txns = await self._timeline.txn_ids(conn, user_id, device_id, own)
        previous: dict[str, tuple[str, dict[str, Any] | None]] = {}
        if prev_content:
            previous = await self._previous(conn, events, viewer)
        extra: list[Mapping[str, Mapping[str, Any]]] = [
            await hook(conn, events, user_id) for hook in self._hooks
        ]
        out = []
        for stored in events:
            event_id = stored.event_id
            txn = txns.get(event_id)
            body = client_event(
                stored.event,
                now_ms=now,
                redaction=redactions.get(stored.redacted_by) if stored.redacted_by else None,
                transaction_id=client_txn_id(txn) if txn is not None else None,
                include_room_id=include_room_id,
            )
            unsigned = body["unsigned"]
            if viewer is not None:
                membership = viewer.membership_at(stored)
                if membership is not None:
                    unsigned["membership"] = membership
            prev = previous.get(event_id)
            if prev is not None:
                unsigned["replaces_state"] = prev[0]
                if prev[1] is not None:
                    unsigned["prev_content"] = prev[1]
            for added in extra:
                fields = added.get(event_id)
                if fields:
                    unsigned.update(fields)
            out.append(body)
        return out

    async def _redactions(self, conn: DbConnection, events: Sequence[StoredEvent]) -> dict[str, Event]:
        ids = {s.redacted_by for s in events if s.redacted_by is not None}
        if not ids:
            return {}
        found = await self._events.by_ids(conn, ids)
        return {eid: s.event for eid, s in found.items()}

    async def _previous(
        self, conn: DbConnection, events: Sequence[StoredEvent], viewer: Viewer | None
    ) -> dict[str, tuple[str, dict[str, Any] | None]]:
        """{event_id: (replaced event id, its content if the viewer may see it)} for state events."""
        state_events = [(s, s.state_before_nid) for s in events if s.event.is_state() and s.state_before_nid]
        if not state_events:
            return {}
        keys: set[StateKey] = {s.event.state_tuple for s, _ in state_events}
        key_nids = await self._state.key_nids(conn, keys, create=False)
        entries = await self._timeline.entries_at(
            conn, {before for _, before in state_events}, set(key_nids.values())
        )
        replaced: dict[str, int] = {}
        for stored, before in state_events:
            key_nid = key_nids.get(stored.event.state_tuple)
            found = entries.get(before, {})
            if key_nid is not None and key_nid in found:
                replaced[stored.event_id] = found[key_nid]
        if not replaced:
            return {}
        prevs = await self._events.by_nids(conn, replaced.values())
        visible: set[int] = set()
        if viewer is not None:
            visible = {s.event_nid for s in await viewer.filter(conn, list(prevs.values()))}
        out: dict[str, tuple[str, dict[str, Any] | None]] = {}
        for event_id, nid in replaced.items():
            prev = prevs.get(nid)
            if prev is None:
                continue
            content: dict[str, Any] | None = None
            if nid in visible:
                pdu = redact(prev.event.pdu, prev.event.room_version) if prev.redacted_by else prev.event.pdu
                content = dict(pdu.get("content") or {})
            out[event_id] = (prev.event_id, content)
        return out
