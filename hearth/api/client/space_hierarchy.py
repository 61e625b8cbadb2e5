"""Space hierarchy (space_hierarchy.yaml).

    GET /v1/rooms/{roomId}/hierarchy

Walks the `m.space.child` links of rooms this server knows, depth first; see
hearth.rooms.summary for the order, the visibility rules and pagination.
"""

from __future__ import annotations

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.client.room_send import room_id_param
from hearth.api.errors import json_response, parse_bool, parse_int
from hearth.api.keys import HS

routes = web.RouteTableDef()


@routes.get("/v1/rooms/{roomId}/hierarchy")
async def hierarchy(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    result = await request.config_dict[HS].space_hierarchy.page(
        requester.user_id,
        room_id,
        suggested_only=parse_bool(request, "suggested_only"),
        max_depth=parse_int(request, "max_depth", minimum=0),
        limit=parse_int(request, "limit", minimum=1),
        from_token=request.query.get("from"),
    )
    return json_response(result)
