"""Sending events into rooms (room_send.yaml, room_state.yaml PUT).

    PUT /v3/rooms/{roomId}/send/{eventType}/{txnId}
    PUT /v3/rooms/{roomId}/state/{eventType}/{stateKey}
    PUT /v3/rooms/{roomId}/state/{eventType}[/]         (empty state key)

The auth rules decide who may send what; a refusal is M_FORBIDDEN with the
rule's reason. The transaction id makes a retried send return the first event.
"""

from __future__ import annotations

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.errors import json_response, read_json_object
from hearth.api.keys import HS
from hearth.core.ids import is_valid_room_id
from hearth.errors import MatrixError
from hearth.rooms.persist import TxnRecord

routes = web.RouteTableDef()


def room_id_param(request: web.Request) -> str:
    room_id = request.match_info["roomId"]
    if not is_valid_room_id(room_id):
        raise MatrixError(400, "M_INVALID_PARAM", f"{room_id!r} is not a room ID")
    return room_id


@routes.put("/v3/rooms/{roomId}/send/{eventType}/{txnId}")
@routes.put("/r0/rooms/{roomId}/send/{eventType}/{txnId}")
async def send_message(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    content = await read_json_object(request)
    txn = TxnRecord(requester.user_id, requester.device_id, request.match_info["txnId"])
    event_id = await request.config_dict[HS].room_sender.send(
        room_id, requester.user_id, request.match_info["eventType"], content, txn=txn
    )
    return json_response({"event_id": event_id})


@routes.put("/v3/rooms/{roomId}/state/{eventType}/{stateKey}")
@routes.put("/r0/rooms/{roomId}/state/{eventType}/{stateKey}")
@routes.put("/v3/rooms/{roomId}/state/{eventType}/")
@routes.put("/r0/rooms/{roomId}/state/{eventType}/")
@routes.put("/v3/rooms/{roomId}/state/{eventType}")
@routes.put("/r0/rooms/{roomId}/state/{eventType}")
async def send_state(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    content = await read_json_object(request)
    event_id = await request.config_dict[HS].room_sender.send(
        room_id,
        requester.user_id,
        request.match_info["eventType"],
        content,
        state_key=request.match_info.get("stateKey", ""),
    )
    return json_response({"event_id": event_id})
