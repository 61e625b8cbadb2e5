"""The event (PDU) model shared by every part of Hearth.

An `Event` wraps the PDU JSON exactly as it is signed and federated, plus the
facts that are not in the JSON itself: its event ID (computed for room versions
3+) and its room version. It is read-only: auth rules, state resolution and the
room server all read the same object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hearth.core.room_versions import EventFormat, RoomVersion

StateKey = tuple[str, str]  # (event type, state key)


class Event:
    __slots__ = ("_pdu", "event_id", "room_version")

    def __init__(self, pdu: Mapping[str, Any], event_id: str, room_version: RoomVersion) -> None:
        self._pdu: Mapping[str, Any] = pdu
        self.event_id = event_id
        self.room_version = room_version

    def __repr__(self) -> str:
        return f"<Event {self.event_id} {self.type} {self.state_key!r}>"

    @property
    def pdu(self) -> Mapping[str, Any]:
        """The PDU JSON as signed (without a computed event_id for v3+)."""
        return self._pdu

    def get(self, key: str, default: Any = None) -> Any:
        return self._pdu.get(key, default)

    @property
    def type(self) -> str:
        return str(self._pdu["type"])

    @property
    def sender(self) -> str:
        return str(self._pdu["sender"])

    @property
    def room_id(self) -> str:
        room_id = self._pdu.get("room_id")
        if room_id is None and self.room_version.room_id_from_create_event and self.type == "m.room.create":
            # v12: the create event has no room_id; the room ID is "!" + its hash.
            return "!" + self.event_id[1:]
        return str(room_id)

    @property
    def content(self) -> Mapping[str, Any]:
        content = self._pdu.get("content")
        return content if isinstance(content, Mapping) else {}

    @property
    def state_key(self) -> str | None:
        sk = self._pdu.get("state_key")
        return sk if isinstance(sk, str) else None

    def is_state(self) -> bool:
        return self.state_key is not None

    @property
    def state_tuple(self) -> StateKey:
        """(type, state_key); only meaningful for state events."""
        return (self.type, self.state_key or "")

    @property
    def depth(self) -> int:
        return int(self._pdu.get("depth", 0))

    @property
    def origin_server_ts(self) -> int:
        return int(self._pdu.get("origin_server_ts", 0))

    @property
    def membership(self) -> str | None:
        m = self.content.get("membership")
        return m if isinstance(m, str) else None

    @property
    def redacts(self) -> str | None:
        """The event a redaction targets: in content from v11, top level before."""
        source = self.content if self.room_version.redacts_in_content else self._pdu
        r = source.get("redacts")
        return r if isinstance(r, str) else None

    @property
    def prev_event_ids(self) -> list[str]:
        return _event_refs(self._pdu.get("prev_events", []), self.room_version)

    @property
    def auth_event_ids(self) -> list[str]:
        return _event_refs(self._pdu.get("auth_events", []), self.room_version)


def _event_refs(refs: Any, room_version: RoomVersion) -> list[str]:
    """Event IDs from a prev_events/auth_events list; v1/v2 use [id, hashes] pairs."""
    if room_version.event_format is EventFormat.V1:
        return [r[0] for r in refs]
    return list(refs)
