"""Typing notifications (typing.yaml).

    PUT /v3/rooms/{roomId}/typing/{userId}    (also under /r0/)

Body: `typing` (required) and `timeout` in milliseconds (default 30 s, at
most 120 s). Only for yourself, in a room you are joined to; the state lives
in `hearth.rooms.typing`.
"""

from __future__ import annotations

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.client.room_send import room_id_param
from hearth.api.errors import json_response, parse_body
from hearth.api.keys import HS
from hearth.errors import forbidden
from hearth.validation import Model

routes = web.RouteTableDef()


class TypingBody(Model, strict=True):
    typing: bool
    timeout: int | None = None


@routes.put("/v3/rooms/{roomId}/typing/{userId}")
@routes.put("/r0/rooms/{roomId}/typing/{userId}")
async def put_typing(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    user_id = request.match_info["userId"]
    if user_id != requester.user_id:
        raise forbidden("Cannot set the typing state of another user")
    body = await parse_body(request, TypingBody)
    hs = request.config_dict[HS]
    await hs.typing.set_typing(requester.user_id, user_id, room_id, body.typing, body.timeout)
    if body.typing:
        await hs.presence.bump_active(requester.user_id)
    return json_response({})
