"""Sync filters (filter.yaml).

    POST /v3/user/{userId}/filter              upload a filter, get its filter_id
    GET  /v3/user/{userId}/filter/{filterId}   download it again

(each also under /r0/). The body is checked against the spec's filter schema
(`hearth.users.filters.Filter`) and then stored exactly as sent.
"""

from __future__ import annotations

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.errors import json_response, read_json_object, validate
from hearth.api.keys import HS
from hearth.users.filters import Filter

routes = web.RouteTableDef()

_JSON = "application/json"


@routes.post("/v3/user/{user_id}/filter")
@routes.post("/r0/user/{user_id}/filter")
async def create_filter(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    filters = request.config_dict[HS].filters
    filters.check_owner(requester.user_id, request.match_info["user_id"])
    definition = await read_json_object(request)
    validate(definition, Filter)
    filter_id = await filters.create(requester.user_id, request.match_info["user_id"], definition)
    return json_response({"filter_id": filter_id})


@routes.get("/v3/user/{user_id}/filter/{filter_id}")
@routes.get("/r0/user/{user_id}/filter/{filter_id}")
async def get_filter(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    raw = await request.config_dict[HS].filters.get_json(
        requester.user_id, request.match_info["user_id"], request.match_info["filter_id"])
    # Stored as JSON text already: send it without decoding and encoding again.
    return web.Response(text=raw, content_type=_JSON)
