"""Event relationships and threads (relations.yaml, threads_list.yaml).

    GET /v1/rooms/{roomId}/relations/{eventId}              (?from, ?to, ?limit, ?dir, ?recurse)
    GET /v1/rooms/{roomId}/relations/{eventId}/{relType}
    GET /v1/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}
    GET /v1/rooms/{roomId}/threads                          (?include=all|participated, ?from, ?limit)

`dir` defaults to `b` (newest first). Tokens are those of /messages, so a
/messages or /sync token works as `from`. The behaviour is in
`hearth.rooms.relations`.
"""

from __future__ import annotations

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.client.room_send import room_id_param
from hearth.api.errors import json_response, parse_bool, parse_int
from hearth.api.keys import HS
from hearth.errors import invalid_param
from hearth.rooms.relations import DEFAULT_LIMIT, MAX_LIMIT

routes = web.RouteTableDef()


@routes.get("/v1/rooms/{roomId}/relations/{eventId}")
@routes.get("/v1/rooms/{roomId}/relations/{eventId}/{relType}")
@routes.get("/v1/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}")
async def get_relations(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    direction = request.query.get("dir", "b")
    if direction not in ("b", "f"):
        raise invalid_param("dir must be 'b' or 'f'")
    limit = parse_int(request, "limit", default=DEFAULT_LIMIT, minimum=0, maximum=MAX_LIMIT)
    assert limit is not None
    recurse = parse_bool(request, "recurse") if "recurse" in request.query else None
    body = await request.config_dict[HS].relations.relations(
        requester,
        room_id,
        request.match_info["eventId"],
        rel_type=request.match_info.get("relType"),
        event_type=request.match_info.get("eventType"),
        from_token=request.query.get("from") or None,
        to_token=request.query.get("to") or None,
        limit=limit,
        backwards=direction == "b",
        recurse=recurse,
    )
    return json_response(body)


@routes.get("/v1/rooms/{roomId}/threads")
async def get_threads(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    include = request.query.get("include", "all")
    if include not in ("all", "participated"):
        raise invalid_param("include must be 'all' or 'participated'")
    limit = parse_int(request, "limit", default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
    assert limit is not None
    body = await request.config_dict[HS].relations.threads(
        requester,
        room_id,
        participated=include == "participated",
        from_token=request.query.get("from") or None,
        limit=limit,
    )
    return json_response(body)
