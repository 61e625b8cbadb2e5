"""Send-to-device messaging (to_device.yaml).

    PUT /v3/sendToDevice/{eventType}/{txnId}     (also under /r0/)

The body is `{"messages": {user_id: {device_id or "*": content}}}`. Its shape
is checked here (objects all the way down, user IDs well formed); who gets
what, and the txn id, are `hearth.users.to_device`'s business.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.errors import json_response, parse_body
from hearth.api.keys import HS
from hearth.core.ids import is_valid_user_id
from hearth.validation import Model, field_validator

routes = web.RouteTableDef()


class SendToDeviceBody(Model, strict=True):
    messages: dict[str, dict[str, dict[str, Any]]]

    @field_validator("messages")
    @classmethod
    def _user_ids(cls, value: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
        for user_id in value:
            if not is_valid_user_id(user_id):
                raise ValueError(f"{user_id[:300]!r} is not a user ID")
        return value


@routes.put("/v3/sendToDevice/{eventType}/{txnId}")
@routes.put("/r0/sendToDevice/{eventType}/{txnId}")
async def send_to_device(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    body = await parse_body(request, SendToDeviceBody)
    await request.config_dict[HS].to_device.send(
        requester.user_id,
        requester.device_id,
        request.match_info["eventType"],
        request.match_info["txnId"],
        body.messages,
    )
    return json_response({})
