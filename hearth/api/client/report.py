"""Reporting content to the server's admins (report_content.yaml).

    POST /v3/rooms/{roomId}/report/{eventId}   {"reason"?: str}
    POST /v3/rooms/{roomId}/report             {"reason": str}
    POST /v3/users/{userId}/report             {"reason": str}

An event report needs the reporter joined to the room and able to see the
event (404 M_NOT_FOUND otherwise, as for an unknown event).
"""

from __future__ import annotations

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.client.room_send import room_id_param
from hearth.api.errors import json_response, parse_body
from hearth.api.keys import HS
from hearth.core.ids import is_valid_user_id
from hearth.errors import invalid_param
from hearth.validation import Model

routes = web.RouteTableDef()


class EventReportBody(Model, strict=True, extra="allow"):
    # `score` was removed in v1.18; older clients still send it, so extra keys are allowed.
    reason: str | None = None


class ReportBody(Model, strict=True, extra="allow"):
    reason: str


@routes.post("/v3/rooms/{roomId}/report/{eventId}")
@routes.post("/r0/rooms/{roomId}/report/{eventId}")
async def report_event(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    body = await parse_body(request, EventReportBody)
    await request.config_dict[HS].reports.report_event(
        requester.user_id, room_id, request.match_info["eventId"], body.reason
    )
    return json_response({})


@routes.post("/v3/rooms/{roomId}/report")
async def report_room(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    body = await parse_body(request, ReportBody)
    await request.config_dict[HS].reports.report_room(requester.user_id, room_id, body.reason)
    return json_response({})


@routes.post("/v3/users/{userId}/report")
async def report_user(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    user_id = request.match_info["userId"]
    if not is_valid_user_id(user_id):
        raise invalid_param(f"{user_id[:100]!r} is not a user ID")
    body = await parse_body(request, ReportBody)
    await request.config_dict[HS].reports.report_user(requester.user_id, user_id, body.reason)
    return json_response({})
