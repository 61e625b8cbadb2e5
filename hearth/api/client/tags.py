"""Room tags (tags.yaml).

    GET    /v3/user/{userId}/rooms/{roomId}/tags
    PUT    /v3/user/{userId}/rooms/{roomId}/tags/{tag}     body: the tag object, e.g. {"order": 0.25}
    DELETE /v3/user/{userId}/rooms/{roomId}/tags/{tag}

(each also under /r0/). Only for the requester's own user ID (403 otherwise);
the storage as `m.tag` room account data is in `hearth.users.tags`.
"""

from __future__ import annotations

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.errors import json_response, read_json_object
from hearth.api.keys import HS
from hearth.core.ids import is_valid_room_id
from hearth.errors import invalid_param

routes = web.RouteTableDef()


def _room_id(request: web.Request) -> str:
    room_id = request.match_info["room_id"]
    if not is_valid_room_id(room_id):
        raise invalid_param(f"{room_id[:300]!r} is not a valid room ID")
    return room_id


@routes.get("/v3/user/{user_id}/rooms/{room_id}/tags")
@routes.get("/r0/user/{user_id}/rooms/{room_id}/tags")
async def get_tags(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    tags = await request.config_dict[HS].tags.get(
        requester.user_id, request.match_info["user_id"], _room_id(request)
    )
    return json_response(tags)


@routes.put("/v3/user/{user_id}/rooms/{room_id}/tags/{tag}")
@routes.put("/r0/user/{user_id}/rooms/{room_id}/tags/{tag}")
async def put_tag(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = _room_id(request)
    body = await read_json_object(request)
    await request.config_dict[HS].tags.put(
        requester.user_id, request.match_info["user_id"], room_id, request.match_info["tag"], body
    )
    return json_response({})


@routes.delete("/v3/user/{user_id}/rooms/{room_id}/tags/{tag}")
@routes.delete("/r0/user/{user_id}/rooms/{room_id}/tags/{tag}")
async def delete_tag(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    await request.config_dict[HS].tags.delete(
        requester.user_id, request.match_info["user_id"], _room_id(request), request.match_info["tag"]
    )
    return json_response({})
