"""User directory search (users.yaml).

    POST /v3/user_directory/search     {"search_term": "...", "limit": 10}

Who can be found, and how results are ranked, is in `hearth.users.directory`.
"""

from __future__ import annotations

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.errors import json_response, parse_body
from hearth.api.keys import HS
from hearth.errors import invalid_param
from hearth.users.directory import DEFAULT_LIMIT, MAX_LIMIT
from hearth.validation import Model

routes = web.RouteTableDef()


class UserSearchBody(Model, strict=True, extra="allow"):
    search_term: str
    limit: int = DEFAULT_LIMIT


@routes.post("/v3/user_directory/search")
@routes.post("/r0/user_directory/search")
async def search_users(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    body = await parse_body(request, UserSearchBody)
    if body.limit < 0:
        raise invalid_param("limit must not be negative")
    result = await request.config_dict[HS].user_directory.search(
        requester.user_id, body.search_term, min(body.limit, MAX_LIMIT)
    )
    return json_response(result)
