"""Redacting events (redaction.yaml).

    PUT /v3/rooms/{roomId}/redact/{eventId}/{txnId}   {"reason": ...}

Own events need the m.room.redaction event level; other users' events need
the room's redact level (server admins may redact local users' events).
Anything else is M_FORBIDDEN. A repeated txnId returns the first redaction.
"""

from __future__ import annotations

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.client.room_send import room_id_param
from hearth.api.errors import json_response, read_json_object, validate
from hearth.api.keys import HS
from hearth.errors import invalid_param
from hearth.validation import Model

routes = web.RouteTableDef()


class RedactBody(Model, strict=True, extra="allow"):
    reason: str | None = None


def event_id_param(request: web.Request) -> str:
    event_id = request.match_info["eventId"]
    if not event_id.startswith("$") or len(event_id) > 255 or "\x1e" in event_id:
        raise invalid_param(f"{event_id[:100]!r} is not an event ID")
    return event_id


@routes.put("/v3/rooms/{roomId}/redact/{eventId}/{txnId}")
@routes.put("/r0/rooms/{roomId}/redact/{eventId}/{txnId}")
async def redact(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    event_id = event_id_param(request)
    body = validate(await read_json_object(request), RedactBody)
    redaction_id = await request.config_dict[HS].redactor.redact(
        room_id, requester.user_id, requester.device_id, event_id,
        reason=body.reason, txn_id=request.match_info["txnId"],
    )
    return json_response({"event_id": redaction_id})
