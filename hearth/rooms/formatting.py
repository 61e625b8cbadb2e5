"""Events as clients see them (the ClientEvent format).

Clients get `event_id`, `room_id`, `type`, `sender`, `content`,
`origin_server_ts`, `state_key` for state events, and `unsigned` with `age`,
the `transaction_id` for the device that sent it, and for a redacted event the
redacted content plus `redacted_because`. The PDU's federation fields (hashes,
signatures, auth/prev events, depth) are not for clients.
"""

from __future__ import annotations

from typing import Any

from hearth.core.events import Event
from hearth.core.redaction import redact


def client_event(
    event: Event,
    *,
    now_ms: int,
    redaction: Event | None = None,
    transaction_id: str | None = None,
    include_room_id: bool = True,
) -> dict[str, Any]:
    pdu = redact(event.pdu, event.room_version) if redaction is not None else event.pdu
    out: dict[str, Any] = {
        "event_id": event.event_id,
        "type": event.type,
        "sender": event.sender,
        "content": pdu.get("content", {}),
        "origin_server_ts": event.origin_server_ts,
    }
    if include_room_id:
        out["room_id"] = event.room_id
    if event.state_key is not None:
        out["state_key"] = event.state_key
    if event.type == "m.room.redaction" and event.redacts is not None:
        out["redacts"] = event.redacts  # top level too, for clients of older versions
    unsigned: dict[str, Any] = {"age": max(0, now_ms - event.origin_server_ts)}
    if transaction_id is not None:
        unsigned["transaction_id"] = transaction_id
    if redaction is not None:
        unsigned["redacted_because"] = client_event(redaction, now_ms=now_ms, include_room_id=include_room_id)
    out["unsigned"] = unsigned
    return out
