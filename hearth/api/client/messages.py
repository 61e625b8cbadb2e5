"""Paginating room history (message_pagination.yaml, event_context.yaml,
room_event_by_timestamp.yaml, room_initial_sync.yaml).

    GET /v3/rooms/{roomId}/messages            (?from, ?to, ?dir=b|f, ?limit, ?filter)
    GET /v3/rooms/{roomId}/context/{eventId}   (?limit, ?filter)
    GET /v1/rooms/{roomId}/timestamp_to_event  (?ts, ?dir=f|b)
    GET /v3/rooms/{roomId}/initialSync         (?limit)

Pagination tokens are described in hearth/rooms/reading.py. `filter` is a
RoomEventFilter as JSON in the query string. `dir` defaults to `f` when
missing, as Synapse does, so clients written against it keep working.
"""

from __future__ import annotations

import json

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.client.room_send import room_id_param
from hearth.api.errors import json_response, parse_int, validate
from hearth.api.keys import HS
from hearth.errors import invalid_param, missing_param
from hearth.rooms.reading import MAX_LIMIT
from hearth.users.filters import RoomEventFilter

routes = web.RouteTableDef()


def _filter_param(request: web.Request) -> RoomEventFilter | None:
    raw = request.query.get("filter")
    if raw is None or raw == "":
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        raise invalid_param("filter must be a JSON RoomEventFilter") from None
    if not isinstance(data, dict):
        raise invalid_param("filter must be a JSON object")
    return validate(data, RoomEventFilter)


def _dir_param(request: web.Request, *, default: str | None) -> bool:
    """True for backwards."""
    value = request.query.get("dir", default)
    if value is None:
        raise missing_param("Missing query parameter: dir")
    if value not in ("b", "f"):
        raise invalid_param("dir must be 'b' or 'f'")
    return value == "b"


@routes.get("/v3/rooms/{roomId}/messages")
@routes.get("/r0/rooms/{roomId}/messages")
async def get_messages(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    backwards = _dir_param(request, default="f")
    limit = parse_int(request, "limit", default=10, minimum=0, maximum=MAX_LIMIT)
    assert limit is not None
    flt = _filter_param(request)
    body = await request.config_dict[HS].room_reader.messages(
        requester,
        room_id,
        from_token=request.query.get("from") or None,
        to_token=request.query.get("to") or None,
        backwards=backwards,
        limit=limit,
        flt=flt,
    )
    return json_response(body)


@routes.get("/v3/rooms/{roomId}/context/{eventId}")
@routes.get("/r0/rooms/{roomId}/context/{eventId}")
async def get_context(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    limit = parse_int(request, "limit", default=10, minimum=0, maximum=MAX_LIMIT)
    assert limit is not None
    body = await request.config_dict[HS].room_reader.context(
        requester, room_id, request.match_info["eventId"], limit=limit, flt=_filter_param(request)
    )
    return json_response(body)


@routes.get("/v1/rooms/{roomId}/timestamp_to_event")
async def get_timestamp_to_event(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    if "ts" not in request.query:
        raise missing_param("Missing query parameter: ts")
    ts = parse_int(request, "ts")
    assert ts is not None
    backwards = _dir_param(request, default=None)
    body = await request.config_dict[HS].room_reader.timestamp_to_event(
        requester, room_id, ts, forwards=not backwards
    )
    return json_response(body)


@routes.get("/v3/rooms/{roomId}/initialSync")
@routes.get("/r0/rooms/{roomId}/initialSync")
async def get_room_initial_sync(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    limit = parse_int(request, "limit", default=10, minimum=0, maximum=MAX_LIMIT)
    assert limit is not None
    body = await request.config_dict[HS].room_reader.initial_sync(requester, room_id, limit=limit)
    return json_response(body)
