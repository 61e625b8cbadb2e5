"""Receipts (receipts.yaml).

    POST /v3/rooms/{roomId}/receipt/{receiptType}/{eventId}    (also under /r0/)

`receiptType` is m.read, m.read.private or m.fully_read (the read marker, as
POST /read_markers would set it). The body may carry `thread_id` ("main" or a
thread root's event ID); an empty body is taken as `{}` for older clients.
Rules (membership, the event, threads) are in `hearth.rooms.receipts`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.client.room_send import room_id_param
from hearth.api.errors import json_response, read_json_object
from hearth.api.keys import HS
from hearth.errors import invalid_param

routes = web.RouteTableDef()

MAX_EVENT_ID_LENGTH = 255


async def optional_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, `{}` when there is none."""
    if not (await request.read()).strip():
        return {}
    return await read_json_object(request)


def event_id_param(request: web.Request) -> str:
    event_id = request.match_info["eventId"]
    if not event_id.startswith("$") or len(event_id) > MAX_EVENT_ID_LENGTH:
        raise invalid_param("eventId is not an event ID")
    return event_id


@routes.post("/v3/rooms/{roomId}/receipt/{receiptType}/{eventId}")
@routes.post("/r0/rooms/{roomId}/receipt/{receiptType}/{eventId}")
async def post_receipt(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    event_id = event_id_param(request)
    body = await optional_json_object(request)
    thread_id = body.get("thread_id")
    if "thread_id" in body and (not isinstance(thread_id, str) or not thread_id):
        raise invalid_param("thread_id field must be a non-empty string")
    hs = request.config_dict[HS]
    await hs.receipts.send_receipt(
        requester.user_id, room_id, request.match_info["receiptType"], event_id, thread_id
    )
    await hs.presence.bump_active(requester.user_id)
    return json_response({})
