"""Room summaries (room_summary.yaml).

    GET /v1/room_summary/{roomIdOrAlias}

An access token is optional: without one only rooms anyone may preview
(public or knockable join rule, or world_readable history) are described, and
`membership` is left out. Rooms this server is not in would need the
federation hierarchy API (`via`); until then they are 404 M_NOT_FOUND, as are
rooms the requester may not see.
"""

from __future__ import annotations

from aiohttp import web

from hearth.api.client.directory import optional_requester
from hearth.api.errors import json_response
from hearth.api.keys import HS
from hearth.core.ids import is_valid_room_alias, is_valid_room_id
from hearth.errors import invalid_param, not_found

routes = web.RouteTableDef()


@routes.get("/v1/room_summary/{roomIdOrAlias}")
async def room_summary(request: web.Request) -> web.Response:
    requester = await optional_requester(request)
    hs = request.config_dict[HS]
    target = request.match_info["roomIdOrAlias"]
    if target.startswith("#"):
        if not is_valid_room_alias(target):
            raise invalid_param(f"{target!r} is not a room alias")
        room_id = await hs.aliases.resolve(target)
        if room_id is None:
            raise not_found(f"Room alias {target} not found")
    elif is_valid_room_id(target):
        room_id = target
    else:
        raise invalid_param(f"{target!r} is not a room ID or alias")
    summary = await hs.room_summaries.summary(requester.user_id if requester else None, room_id)
    return json_response(summary)
