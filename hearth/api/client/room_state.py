"""Reading room state, members and single events (rooms.yaml).

    GET /v3/rooms/{roomId}/state
    GET /v3/rooms/{roomId}/state/{eventType}/{stateKey}   (?format=content|event)
    GET /v3/rooms/{roomId}/state/{eventType}[/]           (empty state key)
    GET /v3/rooms/{roomId}/members                         (?at, ?membership, ?not_membership)
    GET /v3/rooms/{roomId}/joined_members
    GET /v3/rooms/{roomId}/event/{eventId}

Joined users read the current state; users who left read the state as of
their leave; others get M_FORBIDDEN unless the room is world-readable. A
single event the user may not see is 404, like one that does not exist.
"""

from __future__ import annotations

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.client.room_send import room_id_param
from hearth.api.errors import json_response
from hearth.api.keys import HS
from hearth.errors import invalid_param

routes = web.RouteTableDef()


@routes.get("/v3/rooms/{roomId}/state")
@routes.get("/r0/rooms/{roomId}/state")
async def get_state(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    return json_response(await request.config_dict[HS].room_reader.room_state(requester, room_id))


@routes.get("/v3/rooms/{roomId}/state/{eventType}/{stateKey}")
@routes.get("/r0/rooms/{roomId}/state/{eventType}/{stateKey}")
@routes.get("/v3/rooms/{roomId}/state/{eventType}/")
@routes.get("/r0/rooms/{roomId}/state/{eventType}/")
@routes.get("/v3/rooms/{roomId}/state/{eventType}")
@routes.get("/r0/rooms/{roomId}/state/{eventType}")
async def get_state_event(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    fmt = request.query.get("format", "content")
    if fmt not in ("content", "event"):
        raise invalid_param("format must be 'content' or 'event'")
    event = await request.config_dict[HS].room_reader.state_event(
        requester, room_id, request.match_info["eventType"], request.match_info.get("stateKey", "")
    )
    return json_response(event if fmt == "event" else event["content"])


@routes.get("/v3/rooms/{roomId}/members")
@routes.get("/r0/rooms/{roomId}/members")
async def get_members(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    chunk = await request.config_dict[HS].room_reader.members(
        requester,
        room_id,
        at=request.query.get("at"),
        membership=request.query.get("membership"),
        not_membership=request.query.get("not_membership"),
    )
    return json_response({"chunk": chunk})


@routes.get("/v3/rooms/{roomId}/joined_members")
@routes.get("/r0/rooms/{roomId}/joined_members")
async def get_joined_members(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    joined = await request.config_dict[HS].room_reader.joined_members(requester, room_id)
    return json_response({"joined": joined})


@routes.get("/v3/rooms/{roomId}/event/{eventId}")
@routes.get("/r0/rooms/{roomId}/event/{eventId}")
async def get_event(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    event = await request.config_dict[HS].room_reader.event(requester, room_id, request.match_info["eventId"])
    return json_response(event)
