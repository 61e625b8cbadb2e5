"""Account data (account-data.yaml).

    GET/PUT /v3/user/{userId}/account_data/{type}                   global account data
    GET/PUT /v3/user/{userId}/rooms/{roomId}/account_data/{type}    per-room account data

(each also under /r0/). The body of a PUT is the content, any JSON object.
Policy (own data only, server-managed types) is in `hearth.users.account_data`.
"""

from __future__ import annotations

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.errors import json_response, read_json_object
from hearth.api.keys import HS
from hearth.core.ids import is_valid_room_id
from hearth.errors import invalid_param
from hearth.storage.account_data import GLOBAL

routes = web.RouteTableDef()


def _room_id(request: web.Request) -> str:
    room_id = request.match_info.get("room_id")
    if room_id is None:
        return GLOBAL
    if not is_valid_room_id(room_id):
        raise invalid_param(f"{room_id[:300]!r} is not a valid room ID")
    return room_id


@routes.get("/v3/user/{user_id}/account_data/{type}")
@routes.get("/r0/user/{user_id}/account_data/{type}")
@routes.get("/v3/user/{user_id}/rooms/{room_id}/account_data/{type}")
@routes.get("/r0/user/{user_id}/rooms/{room_id}/account_data/{type}")
async def get_account_data(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    content = await request.config_dict[HS].account_data.get(
        requester.user_id, request.match_info["user_id"], request.match_info["type"],
        room_id=_room_id(request))
    return json_response(content)


@routes.put("/v3/user/{user_id}/account_data/{type}")
@routes.put("/r0/user/{user_id}/account_data/{type}")
@routes.put("/v3/user/{user_id}/rooms/{room_id}/account_data/{type}")
@routes.put("/r0/user/{user_id}/rooms/{room_id}/account_data/{type}")
async def put_account_data(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    user_id, type_ = request.match_info["user_id"], request.match_info["type"]
    room_id = _room_id(request)
    service = request.config_dict[HS].account_data
    service.check_writable(requester.user_id, user_id, type_)
    content = await read_json_object(request)
    await service.put(requester.user_id, user_id, type_, content, room_id=room_id)
    return json_response({})
