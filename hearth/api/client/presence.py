"""Presence (presence.yaml).

    GET /v3/presence/{userId}/status    yours, or of a user sharing a room with you (403 otherwise)
    PUT /v3/presence/{userId}/status    yours only: `presence` and optional `status_msg`

(each also under /r0/). Rules and the effect of time are in `hearth.users.presence`.
"""

from __future__ import annotations

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.errors import json_response, parse_body
from hearth.api.keys import HS
from hearth.core.ids import is_valid_user_id
from hearth.errors import forbidden, invalid_param
from hearth.validation import Model

routes = web.RouteTableDef()


class PresenceBody(Model, strict=True):
    presence: str
    status_msg: str | None = None


def _user_id(request: web.Request) -> str:
    user_id = request.match_info["userId"]
    if not is_valid_user_id(user_id):
        raise invalid_param(f"{user_id[:300]!r} is not a user ID")
    return user_id


@routes.get("/v3/presence/{userId}/status")
@routes.get("/r0/presence/{userId}/status")
async def get_presence(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    user_id = _user_id(request)
    return json_response(await request.config_dict[HS].presence.get_status(requester.user_id, user_id))


@routes.put("/v3/presence/{userId}/status")
@routes.put("/r0/presence/{userId}/status")
async def put_presence(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    user_id = _user_id(request)
    if user_id != requester.user_id:
        raise forbidden("Cannot set the presence of another user")
    body = await parse_body(request, PresenceBody)
    presence = request.config_dict[HS].presence
    await presence.set_status(requester.user_id, user_id, body.presence, body.status_msg)
    return json_response({})
