"""Pushers (pusher.yaml).

    GET  /v3/pushers          the requester's pushers
    POST /v3/pushers/set      create, update or (kind null) delete a pusher

(each also under /r0/). Validation and delivery are in `hearth.push.pusher`.
"""

from __future__ import annotations

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.errors import json_response, read_json_object
from hearth.api.keys import HS

routes = web.RouteTableDef()


@routes.get("/v3/pushers")
@routes.get("/r0/pushers")
async def get_pushers(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    return json_response({"pushers": await request.config_dict[HS].pushers.pushers_of(requester.user_id)})


@routes.post("/v3/pushers/set")
@routes.post("/r0/pushers/set")
async def set_pusher(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    body = await read_json_object(request)
    await request.config_dict[HS].pushers.set(requester.user_id, requester.device_id, body)
    return json_response({})
